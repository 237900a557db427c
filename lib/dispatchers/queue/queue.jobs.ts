// What crosses the queue of the bull and bullmq dispatchers, and the pure helpers around it (no queue library import:
// unit-testable without Redis).
import { createHash } from 'node:crypto';
import type { DeliveryRequest } from '../../events/envelope.js';
import type { Recipient } from '../../subscriptions/recipient.js';
import {
  resolveDeliverySettings,
  type DeliveryOverrides,
  type DeliverySettings,
} from '../../thorn-options.js';

/** Job names on the `thorn` queue. */
export const JOB = {
  /** 1..chunkSize sent events: the worker resolves their recipients and signs their requests. */
  event: 'event',
  /** Up to chunkSize signed requests, fanned out by an event job. */
  chunk: 'chunk',
  /** One failed request, delayed per the retry policy. */
  retry: 'retry',
  /** With the ledger: up to chunkSize claimed delivery ids; the worker reads everything else from the database. */
  deliveries: 'deliveries',
} as const;
export type JobName = (typeof JOB)[keyof typeof JOB];

/**
 * One sent event as it crosses the queue: JSON only, no functions, and only what a worker cannot know itself. Never
 * module options or secrets: the worker has its own module options (static subscribers, `defaultHmacSecret`, codecs,
 * signer, …) and reads stored subscriptions (with their secrets) from its own database.
 */
export interface QueuedEvent {
  /** Assigned at send time; seeds the delivery ids so they are the same however often a worker prepares them. */
  id: string;
  name: string;
  /** JSON-safe body (data + requestData, or the model-event message). */
  body: unknown;
  sender: string | null;
  /** Stored subscriptions owned by nobody only (see `EventEnvelope`); absent when false. */
  ownerlessOnly?: true;
  /** JSON-safe context for callback subscribers (resolved by the worker). */
  context: Record<string, unknown>;
  headers: Record<string, string>;
  /** Delivery settings set on `send()` / the `Event` (absent: none); the worker applies them over its module's. */
  overrides?: DeliveryOverrides;
  keepAlive: boolean;
  /**
   * The event's own subscribers (they may be functions, and only the producer knows them), resolved and signed at send
   * time: signed requests, never the subscribers' secrets.
   */
  requests?: RequestsJobData;
  /**
   * The `send` span's W3C `traceparent` (ids and sampled flag only, never `tracestate` or baggage): the worker's attempt
   * spans become its children. Absent when the send had no span.
   */
  traceparent?: string;
}

/** What a job reports when it completes (kept as the job's return value). */
export interface ThornJobResult {
  /** Requests prepared (event jobs) or attempted (chunk / retry jobs). */
  requests: number;
  /** Chunk jobs an event job fanned out into (0: it delivered its requests itself). */
  chunks: number;
  ok: number;
  retrying: number;
  failed: number;
}

/** Data of an `event` job. */
export interface EventJobData {
  events: QueuedEvent[];
}

/** Exact body bytes: UTF-8 text when that round-trips byte for byte, else Base64. */
export interface WireBody {
  enc: 'utf8' | 'base64';
  data: string;
}

/**
 * A signed request as it crosses the queue (a chunk or a retry): never its secret; the worker reads the secret again
 * (`DeliveryHooks.signingKeys`) and signs each attempt afresh.
 */
export interface WireRequest {
  id: string;
  event: string;
  subscription: string;
  url: string;
  contentType: string;
  /** Every header sent, `Hook-*`, signature and custom ones included. */
  headers: Record<string, string>;
  /** The event's `send()` / `Event` delivery settings (absent: none); the worker applies them over its module's. */
  overrides?: DeliveryOverrides;
  keepAlive: boolean;
  /** Attempts already made. */
  attempts: number;
  source: DeliveryRequest['source'];
  /** Index into the job's `bodies`. */
  body: number;
  /** Why this request could not be built: it fails without being sent (see `DeliveryRequest.failure`). */
  failure?: string;
  /** The stored subscription had a failure streak when read (a success then clears it); absent: it had none. */
  failing?: true;
  /** The `send` span's W3C `traceparent` (see `QueuedEvent`), so a chunk's or a retry's attempts join its trace. */
  traceparent?: string;
}

/** A request of a queue dispatcher: it remembers its event's overrides, so its retry job can carry them again. */
export interface QueuedRequest extends DeliveryRequest {
  overrides?: DeliveryOverrides;
  /** The `send` span's W3C `traceparent`, carried by its chunk and retry jobs. */
  traceparent?: string;
}

/** Data of `chunk` and `retry` jobs: requests sharing a few bodies. */
/**
 * A `deliveries` job (ledger on): delivery ids and the claim they were enqueued under, nothing else (no body, no
 * URL, no secret). A worker attempts those the claim still holds: a job enqueued again after its claim expired finds
 * them taken by the newer claim and skips them.
 */
export interface DeliveriesJobData {
  ids: string[];
  claim: string;
}

export interface RequestsJobData {
  bodies: WireBody[];
  requests: WireRequest[];
}

/**
 * Job id of chunk `index` of an event job whose first event has id `seed`: a rerun of that event job (after a crash)
 * adds no second copy of a chunk still in Redis. No `:` (BullMQ refuses ids with one).
 */
export function chunkJobId(seed: string, index: number): string {
  return `${seed}-chunk-${index}`;
}

/** Job id of the retry of `req` after its attempt number `req.attempts`: a rerun of its job schedules it once. */
export function retryJobId(req: DeliveryRequest): string {
  return `${req.id}-retry-${req.attempts}`;
}

/** A UUID-shaped delivery id derived from the event id and the recipient: stable across re-preparation. */
export function stableDeliveryId(eventId: string, r: Recipient, occurrence: number): string {
  const h = createHash('sha1')
    .update(`thorn-delivery\n${eventId}\n${r.source}\n${r.id}\n${r.url}\n${occurrence}`)
    .digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * `prepare()`'s `idFor` for an event's recipients (in order): stable delivery ids, so a worker that prepares an event
 * again after a crash sends the same `Hook-Delivery` values (and Standard Webhooks signatures over them). The same
 * recipient twice gets two ids. One function per `prepare()` call: it counts the occurrences it has seen.
 */
export function stableIds(eventId: string): (recipient: Recipient) => string {
  const seen = new Map<string, number>();
  return (r) => {
    const key = `${r.source}\n${r.id}\n${r.url}`;
    const occurrence = seen.get(key) ?? 0;
    seen.set(key, occurrence + 1);
    return stableDeliveryId(eventId, r, occurrence);
  };
}

/** `scheme://host:port` with the default port filled in; '' for an unparseable URL. */
export function originOf(url: string): [string, string, number] {
  try {
    const u = new URL(url);
    const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : u.protocol === 'http:' ? 80 : 0;
    return [u.protocol.toLowerCase(), u.hostname.toLowerCase(), port];
  } catch {
    return ['', '', 0];
  }
}

/** Orders requests by (scheme, host, port), keeping the recipient order within an origin (stable sort). */
export function byOrigin<T extends { url: string }>(requests: T[]): T[] {
  const keyed = requests.map((r) => ({ r, o: originOf(r.url) }));
  keyed.sort((a, b) => a.o[0].localeCompare(b.o[0]) || a.o[1].localeCompare(b.o[1]) || a.o[2] - b.o[2]);
  return keyed.map((k) => k.r);
}

/** Splits `items` into arrays of at most `size`. */
export function chunked<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Requests → job data; a body shared by several requests (same event and content type) is stored once. */
export function toWire(requests: QueuedRequest[]): RequestsJobData {
  const bodies: WireBody[] = [];
  const index = new Map<string | Buffer, number>();
  const wire = requests.map((req) => {
    let i = index.get(req.body);
    if (i === undefined) {
      i = bodies.push(encodeBody(req.body)) - 1;
      index.set(req.body, i);
    }
    return {
      id: req.id,
      event: req.event,
      subscription: req.subscription,
      url: req.url,
      contentType: req.contentType,
      headers: req.headers,
      ...(req.overrides && Object.keys(req.overrides).length ? { overrides: req.overrides } : {}),
      keepAlive: req.keepAlive,
      attempts: req.attempts,
      source: req.source,
      body: i,
      ...(req.failure ? { failure: req.failure.message } : {}),
      ...(req.failing ? { failing: true as const } : {}),
      ...(req.traceparent ? { traceparent: req.traceparent } : {}),
    };
  });
  return { bodies, requests: wire };
}

/**
 * Job data → requests ready for `DeliveryService.attempt()` (the module's validators apply), their settings rebuilt
 * from this worker's module settings and the carried overrides.
 */
export function fromWire(data: RequestsJobData, module: DeliverySettings): QueuedRequest[] {
  const bodies = data.bodies.map((b) => Buffer.from(b.data, b.enc));
  return data.requests.map((w) => ({
    id: w.id,
    event: w.event,
    subscription: w.subscription,
    url: w.url,
    contentType: w.contentType,
    headers: { ...w.headers },
    body: bodies[w.body],
    settings: resolveDeliverySettings(module, w.overrides),
    ...(w.overrides ? { overrides: w.overrides } : {}),
    keepAlive: w.keepAlive,
    attempts: w.attempts,
    source: w.source,
    ...(w.source === 'stored' ? { failing: w.failing === true } : {}),
    ...(w.failure ? { failure: new Error(w.failure) } : {}),
    ...(w.traceparent ? { traceparent: w.traceparent } : {}),
  }));
}

function encodeBody(body: string | Buffer): WireBody {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  const text = buf.toString('utf8');
  return Buffer.from(text, 'utf8').equals(buf)
    ? { enc: 'utf8', data: text }
    : { enc: 'base64', data: buf.toString('base64') };
}
