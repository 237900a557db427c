// The receiver-side helpers: Standard Webhooks verification (tolerance, several secrets, whsec_ and raw secrets) and
// Hook-HMAC verification, against signatures computed here by hand.
import { describe, expect, it } from '@jest/globals';
import { createHmac, randomBytes } from 'node:crypto';
import {
  randomStandardWebhooksSecret,
  sign,
  verifyHookHmac,
  verifyStandardWebhook,
  WebhookVerificationError,
} from '../../lib/index.js';

const body = '{"event":"a.b","n":1}';
const NOW = 1_700_000_000_000;
const ts = String(NOW / 1000);
const swSign = (key: Buffer | string, id = 'msg_1', t = ts, b = body) =>
  `v1,${createHmac('sha256', key).update(`${id}.${t}.${b}`).digest('base64')}`;
const whsec = (key: Buffer) => `whsec_${key.toString('base64')}`;

describe('verifyStandardWebhook', () => {
  const key = randomBytes(32);
  const headers = (signature: string, t = ts) => ({
    'webhook-id': 'msg_1',
    'webhook-timestamp': t,
    'webhook-signature': signature,
  });

  it('accepts a whsec_ secret (decoded bytes) and a raw secret (UTF-8 bytes), returning id and timestamp', () => {
    expect(verifyStandardWebhook(body, headers(swSign(key)), { secrets: whsec(key), now: NOW })).toEqual({
      id: 'msg_1',
      timestamp: new Date(NOW),
    });
    expect(() =>
      verifyStandardWebhook(Buffer.from(body), headers(swSign('raw-secret-ünï')), {
        secrets: 'raw-secret-ünï',
        now: NOW,
      }),
    ).not.toThrow();
    // a whsec_ secret is never used as its string
    expect(() =>
      verifyStandardWebhook(body, headers(swSign(whsec(key))), { secrets: whsec(key), now: NOW }),
    ).toThrow(WebhookVerificationError);
  });

  it('accepts any of several secrets and any of several signatures (rotation)', () => {
    const other = randomBytes(32);
    const both = `${swSign(other)} ${swSign(key)}`;
    expect(() =>
      verifyStandardWebhook(body, headers(both), { secrets: [whsec(key)], now: NOW }),
    ).not.toThrow();
    expect(() =>
      verifyStandardWebhook(body, headers(swSign(key)), {
        secrets: ['nope-nope-nope', whsec(key)],
        now: NOW,
      }),
    ).not.toThrow();
    expect(() =>
      verifyStandardWebhook(body, headers(swSign(other)), { secrets: whsec(key), now: NOW }),
    ).toThrow(/No matching signature/);
  });

  it('refuses a changed body, id or timestamp, and a timestamp outside the tolerance (default 5 min)', () => {
    const sig = swSign(key);
    const opts = { secrets: whsec(key), now: NOW };
    expect(() => verifyStandardWebhook(body + ' ', headers(sig), opts)).toThrow(/No matching/);
    expect(() => verifyStandardWebhook(body, { ...headers(sig), 'webhook-id': 'msg_2' }, opts)).toThrow(
      /No matching/,
    );
    expect(() => verifyStandardWebhook(body, headers(sig, String(NOW / 1000 + 1)), opts)).toThrow(
      /No matching/,
    );
    expect(() => verifyStandardWebhook(body, headers(sig), { ...opts, now: NOW + 300_000 })).not.toThrow();
    expect(() => verifyStandardWebhook(body, headers(sig), { ...opts, now: NOW + 301_000 })).toThrow(
      /too old/,
    );
    expect(() => verifyStandardWebhook(body, headers(sig), { ...opts, now: NOW - 301_000 })).toThrow(
      /future/,
    );
    expect(() =>
      verifyStandardWebhook(body, headers(sig), { ...opts, now: NOW + 60_000, tolerance: 30 }),
    ).toThrow(/too old/);
    expect(() => verifyStandardWebhook(body, headers(sig, 'x'), opts)).toThrow(/Invalid webhook-timestamp/);
    expect(() => verifyStandardWebhook(body, {}, opts)).toThrow(/Missing webhook-id/);
  });

  it('reads headers case-insensitively, from arrays and from a Fetch Headers object', () => {
    const sig = swSign(key);
    const opts = { secrets: whsec(key), now: NOW };
    const upper = { 'Webhook-Id': 'msg_1', 'Webhook-Timestamp': [ts], 'Webhook-Signature': sig };
    expect(() => verifyStandardWebhook(body, upper, opts)).not.toThrow();
    expect(() => verifyStandardWebhook(body, new Headers(headers(sig)), opts)).not.toThrow();
  });

  it('wants the raw body and at least one secret', () => {
    const sig = swSign(key);
    expect(() =>
      verifyStandardWebhook(JSON.parse(body), headers(sig), { secrets: whsec(key), now: NOW }),
    ).toThrow(/raw request body/);
    expect(() => verifyStandardWebhook(body, headers(sig), { secrets: [], now: NOW })).toThrow(/secrets/);
  });

  it('generates whsec_ secrets of 32 random bytes that it verifies with', () => {
    const secret = randomStandardWebhooksSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(randomStandardWebhooksSecret()).not.toBe(secret);
    const bytes = Buffer.from(secret.slice(6), 'base64');
    expect(() =>
      verifyStandardWebhook(body, headers(swSign(bytes)), { secrets: secret, now: NOW }),
    ).not.toThrow();
  });
});

describe('verifyHookHmac', () => {
  it('verifies Hook-HMAC with the secret string as given, any of several, per digest', () => {
    const secret = 'whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=';
    const h = { 'hook-hmac': sign('sha256', secret, body) };
    expect(verifyHookHmac(body, h, { secrets: secret })).toBe(true);
    expect(
      verifyHookHmac(Buffer.from(body), { 'Hook-HMAC': h['hook-hmac'] }, { secrets: ['x', secret] }),
    ).toBe(true);
    expect(verifyHookHmac(body, h, { secrets: 'other-secret' })).toBe(false);
    expect(verifyHookHmac(body + 'x', h, { secrets: secret })).toBe(false);
    expect(verifyHookHmac(body, h, { secrets: secret, digest: 'sha512' })).toBe(false);
    expect(
      verifyHookHmac(
        body,
        { 'hook-hmac': sign('sha512', secret, body) },
        { secrets: secret, digest: 'sha512' },
      ),
    ).toBe(true);
    expect(verifyHookHmac(body, {}, { secrets: secret })).toBe(false);
  });
});
