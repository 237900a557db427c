import type { DeliveryEvent } from '../delivery/request.js';
import type { RecipientQuery } from '../subscriptions/recipient.resolver.js';
import { resolveDeliverySettings, type DeliveryOverrides, type DeliverySettings } from '../thorn-options.js';
import type { EventMeta, EventRecord } from './ledger.types.js';

/** A recorded event as the relay and the deliverer use it: who receives it and what each request carries. */
export interface LedgerEvent {
  record: EventRecord;
  query: RecipientQuery;
  delivery: DeliveryEvent;
  /** The `send` span's W3C `traceparent` (stored in `meta`), the parent of the attempts' spans. */
  traceparent?: string;
}

/** What `record()` is given: an event as `send()` built it (an `EventEnvelope` is one). */
export interface EventToRecord {
  name: string;
  body: unknown;
  sender?: string | null;
  ownerlessOnly?: boolean;
  context: Record<string, unknown>;
  headers: Record<string, string>;
  settings: DeliverySettings;
  overrides?: DeliveryOverrides;
  keepAlive: boolean;
}

/** The row for an event, and the event as the relay uses it (so the recording process needs no read back). */
export function toLedgerEvent(id: string, e: EventToRecord, now: number, traceparent?: string): LedgerEvent {
  const meta: EventMeta = {};
  if (Object.keys(e.context).length) meta.context = e.context;
  if (Object.keys(e.headers).length) meta.headers = e.headers;
  if (e.overrides && Object.keys(e.overrides).length) meta.overrides = e.overrides;
  if (!e.keepAlive) meta.keepAlive = false;
  if (e.ownerlessOnly) meta.ownerlessOnly = true;
  if (traceparent) meta.traceparent = traceparent;
  const record: EventRecord = {
    id,
    name: e.name,
    payload: JSON.stringify(e.body) ?? 'null',
    sender: e.sender ?? null,
    meta: Object.keys(meta).length ? JSON.stringify(meta) : null,
    createdAt: now,
  };
  return {
    record,
    query: { name: e.name, sender: e.sender ?? null, ownerlessOnly: e.ownerlessOnly, context: e.context },
    delivery: {
      name: e.name,
      body: e.body,
      headers: e.headers,
      settings: e.settings,
      keepAlive: e.keepAlive,
    },
    traceparent,
  };
}

/** An event read back from `thorn_event` (another process recorded it, or this one before a restart). */
export function fromRecord(record: EventRecord, module: DeliverySettings): LedgerEvent {
  const meta: EventMeta = record.meta ? JSON.parse(record.meta) : {};
  const context = meta.context ?? {};
  return {
    record,
    query: { name: record.name, sender: record.sender, ownerlessOnly: meta.ownerlessOnly, context },
    delivery: {
      name: record.name,
      body: JSON.parse(record.payload),
      headers: meta.headers ?? {},
      settings: resolveDeliverySettings(module, meta.overrides as DeliveryOverrides | undefined),
      keepAlive: meta.keepAlive ?? true,
    },
    traceparent: meta.traceparent,
  };
}
