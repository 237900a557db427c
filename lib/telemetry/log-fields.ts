// The one shape of nestjs-thorn's warnings and errors: a sentence, then the ids it is about as `key=value` fields in a
// fixed order — `Delivery failed after 3 attempt(s): http://h/in answered 503 event=order.paid delivery=… subscription=…`
// — so a log search for `delivery=<Hook-Delivery>` finds every line about that delivery. Values are the ids only: never
// a secret, and URLs (in fields and in error texts) keep scheme, host and path (no credentials, query or fragment).
import { scrub, urlParts } from './telemetry.js';

/** What a log line is about (each field only where it exists). */
export interface LogIds {
  /** The event name (several: joined with commas). */
  event?: string | string[];
  /** The ledger's `thorn_event` id. */
  eventId?: string;
  /** The delivery id (`Hook-Delivery`); several: the first few, then `+N`. */
  delivery?: string | string[];
  subscription?: string;
  /** The receiver URL, logged without credentials, query or fragment. */
  url?: string;
  /** A queue job id. */
  job?: string;
}

const FIELDS: [keyof LogIds, string][] = [
  ['event', 'event'],
  ['eventId', 'event_id'],
  ['delivery', 'delivery'],
  ['subscription', 'subscription'],
  ['url', 'url'],
  ['job', 'job'],
];
// ids listed per field before `+N`
const MAX_LISTED = 5;

/** `event=… event_id=… delivery=… subscription=… url=… job=…` for the ids present ('' when none is). */
export function logIds(ids: LogIds): string {
  const parts: string[] = [];
  for (const [key, name] of FIELDS) {
    const raw = ids[key];
    if (raw === undefined || raw === null || raw === '') continue;
    let value: string;
    if (Array.isArray(raw)) {
      const unique = [...new Set(raw)];
      if (!unique.length) continue;
      value =
        unique.slice(0, MAX_LISTED).join(',') +
        (unique.length > MAX_LISTED ? `,+${unique.length - MAX_LISTED}` : '');
    } else value = key === 'url' ? urlParts(raw).full : String(raw);
    parts.push(`${name}=${/[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value}`);
  }
  return parts.join(' ');
}

/** The ids of one delivery request, for `logLine` (a structural type: this file sits below delivery/). */
export function deliveryIds(req: { event: string; id: string; subscription: string }): LogIds {
  return { event: req.event, delivery: req.id, subscription: req.subscription };
}

/** `message`, then the ids it is about. */
export function logLine(message: string, ids: LogIds): string {
  const fields = logIds(ids);
  return fields ? `${message} ${fields}` : message;
}

/** An error's text for a log line: its message with every URL in it cut to scheme, host and path. */
export function logError(err: unknown): string {
  const message =
    err && typeof (err as Error).message === 'string'
      ? (err as Error).message
      : String(err ?? 'unknown error');
  return scrub(message);
}
