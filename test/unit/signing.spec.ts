import { describe, expect, it } from '@jest/globals';
import {
  compatSign,
  randomSecret,
  SECRET_ALPHABET,
  sign,
  standardWebhooksSignature,
  toDigest,
  verify,
} from '../../lib/delivery/signing.js';

describe('signing (SPEC §5 vectors)', () => {
  it.each([
    ['sha256', 'NoW4PnbIMVpqi579pkYHK2uiHnILE/kWwJ6U+89ZOxg='],
    ['sha1', 'haEJJ0FMFRHvcVq0UJK23ldBf6Q='],
    ['sha512', 'eittahN1HeCt4GT5C/Er8xu13Z6dnWv6o33UBX7WSwtmhLi1E99IdngJKO1m2Ft9Xnp43WjzvhQzrN5sX3+S6g=='],
  ] as const)('sign(%s, KEY, MSG)', (digest, expected) => {
    expect(sign(digest, 'KEY', 'MSG')).toBe(expected);
    expect(sign(digest, 'KEY', Buffer.from('MSG'))).toBe(expected);
    expect(verify(expected, digest, 'KEY', 'MSG')).toBe(true);
  });

  it.each([
    ['sha256', '_EfR1r6r1FlS2Rwz2JmDzChcVAXVbiaGiqZUokPnmoE'],
    ['sha1', 'EiGzZKN8ng4L5yrRoCa7PDzSJ28'],
  ] as const)('compatSign(%s, KEY, MSG)', (digest, expected) => {
    expect(compatSign(digest, 'KEY', 'MSG')).toBe(expected);
  });

  it('verify rejects a wrong signature, secret, message, digest or empty header', () => {
    const sig = sign('sha256', 'KEY', 'MSG');
    expect(verify(sig, 'sha256', 'KEY2', 'MSG')).toBe(false);
    expect(verify(sig, 'sha256', 'KEY', 'MSG ')).toBe(false);
    expect(verify(sig, 'sha512', 'KEY', 'MSG')).toBe(false);
    expect(verify(sig.slice(0, -2), 'sha256', 'KEY', 'MSG')).toBe(false);
    expect(verify('', 'sha256', 'KEY', 'MSG')).toBe(false);
  });

  it('verify accepts only the exact canonical signature: any other spelling of it is false, never a throw', () => {
    const sig = sign('sha256', 'KEY', 'MSG'); // NoW4PnbIMVpqi579pkYHK2uiHnILE/kWwJ6U+89ZOxg=
    const sha512 = sign('sha512', 'KEY', 'MSG'); // ends in ==
    const urlSafe = sig.replaceAll('+', '-').replaceAll('/', '_');
    expect(urlSafe).not.toBe(sig);
    // the last character carries 2 unused bits: a different one decodes to the same bytes
    const lastBits = `${sig.slice(0, -2)}${String.fromCharCode(sig.charCodeAt(42) + 1)}=`;
    expect(Buffer.from(lastBits, 'base64')).toEqual(Buffer.from(sig, 'base64'));
    const forms: [string, string][] = [
      ['trailing garbage', `${sig}AAAA`],
      ['trailing garbage after padding', `${sig}=AAAA`],
      ['a trailing newline', `${sig}\n`],
      ['a leading space', ` ${sig}`],
      ['spaces inside', `${sig.slice(0, 10)} ${sig.slice(10)}`],
      ['a line break inside', `${sig.slice(0, 10)}\r\n${sig.slice(10)}`],
      ['the base64url alphabet', urlSafe],
      ['missing padding', sig.slice(0, -1)],
      ['missing padding (==)', sha512.slice(0, -2)],
      ['extra padding', `${sig}=`],
      ['the signature twice', `${sig}${sig}`],
      ['two signatures, comma-separated', `${sig},${sig}`],
      ['non-zero unused bits', lastBits],
      ['lower case', sig.toLowerCase()],
    ];
    for (const [label, form] of forms)
      expect([label, verify(form, 'sha256', 'KEY', 'MSG')]).toEqual([label, false]);
    expect(verify(`${sha512}AA==`, 'sha512', 'KEY', 'MSG')).toBe(false);
    for (const digest of ['md5', 'sha384', '', 'SHA-256']) {
      expect(() => verify(sig, digest, 'KEY', 'MSG')).not.toThrow();
      expect(verify(sig, digest, 'KEY', 'MSG')).toBe(false);
    }
    expect(verify(undefined as unknown as string, 'sha256', 'KEY', 'MSG')).toBe(false);
    // the canonical one still verifies, with the digest in any case
    expect(verify(sig, 'SHA256', 'KEY', 'MSG')).toBe(true);
    expect(verify(sha512, 'sha512', 'KEY', Buffer.from('MSG'))).toBe(true);
  });

  it('toDigest is case-insensitive and names the accepted digests on error', () => {
    expect(toDigest('SHA256')).toBe('sha256');
    expect(() => toDigest('md5')).toThrow(/'sha1', 'sha256', 'sha512'/);
  });

  it('randomSecret draws from the alphabet without quotes, at the asked length, never repeating', () => {
    const a = randomSecret(64);
    const b = randomSecret(64);
    expect(a).toHaveLength(64);
    expect(a).not.toBe(b);
    expect([...a].every((c) => SECRET_ALPHABET.includes(c))).toBe(true);
    expect(SECRET_ALPHABET).not.toMatch(/["']/);
    expect(randomSecret(10)).toHaveLength(10);
  });
});

describe('standardWebhooksSignature', () => {
  it('is v1, + Base64 HMAC-SHA256 of "id.timestamp.body" (vector from openssl dgst)', () => {
    const expected = 'v1,Tkh0E8lODZahIEv4rKxbtNs85WlSICuzz5IebtVbKcE=';
    expect(standardWebhooksSignature('msg_1', '1700000000', 'KEY', '{"a":1}')).toBe(expected);
    expect(standardWebhooksSignature('msg_1', '1700000000', 'KEY', Buffer.from('{"a":1}'))).toBe(expected);
  });
});
