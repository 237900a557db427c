import { describe, expect, it } from '@jest/globals';
import {
  judgeError,
  judgeResponse,
  nextRetry,
  parseRetryAfter,
  retryDelayFor,
} from '../../lib/delivery/retry.js';
import { DeliveryTimeoutError } from '../../lib/delivery/transport.js';
import { SecurityError } from '../../lib/delivery/security-error.js';
import { InvalidUrlError } from '../../lib/delivery/validators.js';
import { PayloadError } from '../../lib/events/payload.js';
import type { DeliverySettings } from '../../lib/thorn-options.js';

const res = (status: number, headers: Record<string, string> = {}) => ({ status, headers, body: '' });
const settings = (o: Partial<DeliverySettings> = {}): DeliverySettings => ({
  timeout: 3000,
  retry: true,
  retryMax: 10,
  retryDelay: 1000,
  retryBackoff: 'fixed',
  retryDelayMax: 3_600_000,
  ...o,
});

describe('judgeResponse', () => {
  it.each([200, 201, 202, 204, 299])('%i is success', (s) => {
    expect(judgeResponse(res(s))).toEqual({ ok: true, retryable: false, gone: false });
  });

  it.each([
    100, 199, 300, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 504, 599,
  ])('%i is a retryable failure', (s) => {
    expect(judgeResponse(res(s))).toMatchObject({ ok: false, retryable: true, gone: false });
  });

  it('410 is final: the receiver unsubscribed', () => {
    expect(judgeResponse(res(410))).toEqual({ ok: false, retryable: false, gone: true });
  });

  it('reads Retry-After on 429 and 503 only', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(judgeResponse(res(429, { 'retry-after': '5' }), now).retryAfter).toBe(5000);
    expect(judgeResponse(res(503, { 'retry-after': 'Thu, 01 Jan 2026 00:00:30 GMT' }), now).retryAfter).toBe(
      30_000,
    );
    expect(judgeResponse(res(500, { 'retry-after': '5' }), now).retryAfter).toBeUndefined();
    expect(judgeResponse(res(301, { 'retry-after': '5' }), now).retryAfter).toBeUndefined();
    expect(judgeResponse(res(429), now).retryAfter).toBeUndefined();
  });
});

describe('judgeError', () => {
  it('never retries what a retry cannot fix', () => {
    for (const err of [
      new SecurityError('blocked'),
      new PayloadError('too big'),
      new InvalidUrlError('nope'),
      new TypeError('Invalid URL'),
      Object.assign(new Error('bad header'), { name: 'InvalidArgumentError' }),
    ]) {
      expect([err.name, judgeError(err)]).toEqual([err.name, { ok: false, retryable: false, gone: false }]);
    }
  });

  it('retries timeouts and network errors', () => {
    for (const err of [
      new DeliveryTimeoutError('http://x', 1),
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND' }),
      'a string',
      undefined,
    ]) {
      expect(judgeError(err)).toEqual({ ok: false, retryable: true, gone: false });
    }
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it.each([
    ['0', 0],
    ['1', 1000],
    [' 120 ', 120_000],
    [['7', '9'], 7000],
    ['Thu, 01 Jan 2026 00:01:00 GMT', 60_000],
    ['Wed, 31 Dec 2025 23:00:00 GMT', 0], // in the past
    ['Thursday, 01-Jan-26 00:00:10 GMT', 10_000],
    ['Thu Jan  1 00:00:20 2026', 20_000],
  ] as const)('%j → %i ms', (value, ms) => {
    expect(parseRetryAfter(value as string | string[], now)).toBe(ms);
  });

  it.each([undefined, '', '-5', '1.5', 'soon', 'abc 12', '2026-01-01T00:01:00Z', 'Thu, 01 Jan 2026'])(
    '%j → undefined',
    (value) => {
      expect(parseRetryAfter(value, now)).toBeUndefined();
    },
  );
});

describe('retryDelayFor', () => {
  const lowest = () => 0; // jitter factor 0.8
  const highest = () => 0.999999; // jitter factor ~1.2
  const middle = () => 0.5; // jitter factor 1.0

  it('fixed: retryDelay every time, no jitter', () => {
    const s = settings({ retryDelay: 60_000 });
    expect([1, 2, 5, 10].map((n) => retryDelayFor(s, n, undefined, highest))).toEqual([
      60_000, 60_000, 60_000, 60_000,
    ]);
  });

  it('exponential: retryDelay · 2^(n-1) with ±20 % jitter', () => {
    const s = settings({ retryBackoff: 'exponential', retryDelay: 1000 });
    expect([1, 2, 3, 4].map((n) => retryDelayFor(s, n, undefined, middle))).toEqual([1000, 2000, 4000, 8000]);
    expect([1, 2, 3].map((n) => retryDelayFor(s, n, undefined, lowest))).toEqual([800, 1600, 3200]);
    expect([1, 2, 3].map((n) => retryDelayFor(s, n, undefined, highest))).toEqual([1200, 2400, 4800]);
  });

  it('exponential: jitter stays within ±20 % over many draws', () => {
    const s = settings({ retryBackoff: 'exponential', retryDelay: 1000 });
    const draws = Array.from({ length: 500 }, () => retryDelayFor(s, 3));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(3200);
    expect(Math.max(...draws)).toBeLessThanOrEqual(4800);
    expect(new Set(draws).size).toBeGreaterThan(50); // actually jittered
  });

  it('exponential: capped at retryDelayMax, still jittered below the cap, never overflowing', () => {
    const s = settings({ retryBackoff: 'exponential', retryDelay: 1000, retryDelayMax: 10_000 });
    expect(retryDelayFor(s, 5, undefined, middle)).toBe(10_000); // 16 000 capped
    expect(retryDelayFor(s, 5, undefined, highest)).toBe(10_000);
    expect(retryDelayFor(s, 5, undefined, lowest)).toBe(8000);
    expect(retryDelayFor(s, 2000, undefined, middle)).toBe(10_000); // 2^1999 is Infinity
  });

  it('Retry-After: waits at least that long, at most retryDelayMax', () => {
    const s = settings({ retryDelay: 1000, retryDelayMax: 60_000 });
    expect(retryDelayFor(s, 1, 30_000)).toBe(30_000);
    expect(retryDelayFor(s, 1, 0)).toBe(1000); // never sooner than the backoff
    expect(retryDelayFor(s, 1, 3_600_000)).toBe(60_000); // bounded
    const exp = settings({ retryBackoff: 'exponential', retryDelay: 1000, retryDelayMax: 60_000 });
    expect(retryDelayFor(exp, 4, 2000, middle)).toBe(8000); // the backoff asks for more
  });

  it('retryDelay 0 retries at once', () => {
    expect(retryDelayFor(settings({ retryDelay: 0 }), 3)).toBe(0);
    expect(retryDelayFor(settings({ retryDelay: 0, retryBackoff: 'exponential' }), 3)).toBe(0);
  });
});

describe("nextRetry (what both dispatchers' settle() ask)", () => {
  const failed = { ok: false, retryable: true, gone: false };

  it('retries a retryable failure while retries remain, with the retryDelayFor delay of that retry', () => {
    const s = settings({ retryMax: 2, retryDelay: 100, retryBackoff: 'fixed' });
    expect(nextRetry({ attempts: 1, settings: s }, failed)).toBe(100);
    expect(nextRetry({ attempts: 2, settings: s }, failed)).toBe(100);
    // two retries done (three attempts): none left
    expect(nextRetry({ attempts: 3, settings: s }, failed)).toBeUndefined();
    const exp = settings({ retryDelay: 100, retryBackoff: 'exponential', retryDelayMax: 100 });
    // retry number 3 is capped at retryDelayMax, and the jitter stays below the cap
    const d = nextRetry({ attempts: 3, settings: exp }, failed)!;
    expect(d).toBeGreaterThanOrEqual(80);
    expect(d).toBeLessThanOrEqual(100);
  });

  it('never retries a success, a final failure, a 410 or when retry is off', () => {
    const s = settings();
    expect(
      nextRetry({ attempts: 1, settings: s }, { ok: true, retryable: false, gone: false }),
    ).toBeUndefined();
    expect(
      nextRetry({ attempts: 1, settings: s }, { ok: false, retryable: false, gone: false }),
    ).toBeUndefined();
    expect(
      nextRetry({ attempts: 1, settings: s }, { ok: false, retryable: false, gone: true }),
    ).toBeUndefined();
    expect(nextRetry({ attempts: 1, settings: settings({ retry: false }) }, failed)).toBeUndefined();
    expect(nextRetry({ attempts: 1, settings: settings({ retryMax: 0 }) }, failed)).toBeUndefined();
  });

  it('honours Retry-After (at least that long, at most retryDelayMax)', () => {
    const s = settings({ retryDelay: 10, retryDelayMax: 5000 });
    expect(nextRetry({ attempts: 1, settings: s }, { ...failed, retryAfter: 2000 })).toBe(2000);
    expect(nextRetry({ attempts: 1, settings: s }, { ...failed, retryAfter: 60_000 })).toBe(5000);
  });
});
