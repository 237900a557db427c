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

// Failures that no retry can fix: a blocked target, a body that cannot be encoded, a malformed URL or request.
const FINAL_ERRORS = new Set([
  'SecurityError',
  'PayloadError',
  'InvalidUrlError',
  'InvalidArgumentError',
  'TypeError',
]);

/** Classifies a thrown error: blocked targets and unencodable requests are final, network errors and timeouts retryable. */
export function judgeError(err: unknown): AttemptVerdict {
  const name = (err as Error | undefined)?.name;
  return { ok: false, retryable: !(name && FINAL_ERRORS.has(name)), gone: false };
}

// IMF-fixdate, and the obsolete RFC 850 and asctime forms (RFC 9110 §5.6.7).
const HTTP_DATE = [
  /^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/,
  /^[A-Za-z]{6,9}, \d{2}-[A-Za-z]{3}-\d{2} \d{2}:\d{2}:\d{2} GMT$/,
  /^[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/,
];

/** `Retry-After` as delay-seconds or an HTTP date → ms from now; undefined when absent or unparseable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  // Only HTTP-dates: Date.parse alone accepts almost anything ("-5", "1.5") as some date in the past.
  if (!HTTP_DATE.some((re) => re.test(v.trim()))) return undefined;
  // asctime dates carry no zone but are GMT
  const at = Date.parse(v.trim().endsWith('GMT') ? v : `${v.trim()} GMT`);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The delay in ms before the next attempt of a request that just failed with `verdict`, or undefined when it gets
 * none: only a retryable failure is retried, when its settings allow retries and fewer than `retryMax` were made
 * (`attempts` counts the one just made). The delay follows `retryDelayFor`, honouring `Retry-After`.
 */
export function nextRetry(
  req: { attempts: number; settings: DeliverySettings },
  verdict: AttemptVerdict,
): number | undefined {
  const retriesDone = req.attempts - 1;
  if (!verdict.ok && verdict.retryable && req.settings.retry && retriesDone < req.settings.retryMax) {
    return retryDelayFor(req.settings, retriesDone + 1, verdict.retryAfter);
  }
  return undefined;
}

/**
 * Delay in ms before retry number `n` (1-based).
 * - `fixed`: `retryDelay` every time.
 * - `exponential`: `retryDelay · 2^(n-1)`, capped at `retryDelayMax`, then ±20 % jitter (never above the cap, so
 *   deliveries that reached the cap still spread out).
 * - `retryAfter` (a 429/503 answer's `Retry-After`): the retry waits at least that long, but never longer than
 *   `retryDelayMax`; the backoff still applies when it asks for more.
 */
export function retryDelayFor(
  settings: DeliverySettings,
  n: number,
  retryAfter?: number,
  random = Math.random,
): number {
  const cap = Math.max(0, settings.retryDelayMax);
  let delay: number;
  if (settings.retryBackoff === 'exponential') {
    const base = Math.min(settings.retryDelay * 2 ** Math.max(0, n - 1), cap);
    delay = Math.min(base * (0.8 + 0.4 * random()), cap);
  } else {
    delay = settings.retryDelay;
  }
  if (retryAfter !== undefined && Number.isFinite(retryAfter)) {
    delay = Math.max(delay, Math.min(Math.max(0, retryAfter), cap));
  }
  return Math.round(Math.max(0, delay));
}
