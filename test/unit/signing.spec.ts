import { describe, expect, it } from '@jest/globals';
import {
  compatSign,
  randomSecret,
  SECRET_ALPHABET,
  sign,
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
