import type { DeliverySettings } from '../thorn-options.js';
import type { TransportResponse } from './transport.js';

/** What one attempt's outcome means for the delivery. */
export interface AttemptVerdict {
  ok: boolean;
  /** Worth another attempt (if retries remain). */
  retryable: boolean;
  /** 410 Gone: the receiver unsubscribed. */
  gone: boolean;
  /** Delay asked for by `Retry-After` on 429/503, in ms. */
  retryAfter?: number;
}

/** Classifies an answer: 2xx is success; 410 is final; everything else (3xx included) is retryable. */
export function judgeResponse(res: TransportResponse, now = Date.now()): AttemptVerdict {
  if (res.status >= 200 && res.status < 300) return { ok: true, retryable: false, gone: false };
  if (res.status === 410) return { ok: false, retryable: false, gone: true };
  const verdict: AttemptVerdict = { ok: false, retryable: true, gone: false };
  if (res.status === 429 || res.status === 503) {
    const ra = parseRetryAfter(res.headers['retry-after'], now);
    if (ra !== undefined) verdict.retryAfter = ra;
  }
  return verdict;
}

/** Classifies a thrown error: blocked targets and unencodable requests are final, network errors retryable. */
export function judgeError(err: unknown): AttemptVerdict {
  const name = (err as Error | undefined)?.name;
  const final =
    name === 'SecurityError' || name === 'PayloadError' || name === 'InvalidUrlError' || name === 'TypeError';
  return { ok: false, retryable: !final, gone: false };
}

/** `Retry-After` as delay-seconds or an HTTP date → ms from now; undefined when absent or unparseable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Delay before retry number `n` (1-based): `retryDelay`, or `retryDelay · 2^(n-1)` ±20 % jitter for exponential
 * backoff; a server's `Retry-After` replaces it. Always capped at `retryDelayMax`.
 */
export function retryDelayFor(
  settings: DeliverySettings,
  n: number,
  retryAfter?: number,
  random = Math.random,
): number {
  let delay: number;
  if (retryAfter !== undefined) delay = retryAfter;
  else if (settings.retryBackoff === 'exponential') {
    delay = settings.retryDelay * 2 ** (n - 1) * (0.8 + 0.4 * random());
  } else delay = settings.retryDelay;
  return Math.round(Math.min(Math.max(0, delay), settings.retryDelayMax));
}
