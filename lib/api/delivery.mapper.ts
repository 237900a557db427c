import type { DeliveryLogDetails, DeliveryLogEntry } from '../ledger/delivery-log.service.js';
import { requestUrl } from './subscription.mapper.js';

/** A delivery as `GET /hooks/:id/deliveries` shows it (SPEC §10; snake_case like the subscriptions). */
export interface DeliveryJson {
  /** The `Hook-Delivery` header, the same on every attempt. */
  id: string;
  event: string;
  event_id: string;
  status: string;
  attempts: number;
  /** Of the last attempt. */
  response_status: number | null;
  /** Of the last attempt. */
  error: string | null;
  next_attempt_at: string | null;
  created_at: string;
  updated_at: string;
  /** Absolute URL of `GET /hooks/:id/deliveries/:deliveryId`. */
  delivery: string;
}

/** One attempt in `attempt_log`. */
export interface AttemptJson {
  number: number;
  started_at: string;
  duration_ms: number;
  response_status: number | null;
  error: string | null;
  response_body: string | null;
}

/** `GET /hooks/:id/deliveries/:deliveryId`: the delivery, its attempts (oldest first) and the body as sent. */
export interface DeliveryDetailJson extends DeliveryJson {
  attempt_log: AttemptJson[];
  payload: string | null;
}

export function toDeliveryJson(d: DeliveryLogEntry, url: string): DeliveryJson {
  return {
    id: d.id,
    event: d.event,
    event_id: d.eventId,
    status: d.status,
    attempts: d.attempts,
    response_status: d.responseStatus,
    error: d.error,
    next_attempt_at: d.nextAttemptAt ? d.nextAttemptAt.toISOString() : null,
    created_at: d.createdAt.toISOString(),
    updated_at: d.updatedAt.toISOString(),
    delivery: url,
  };
}

export function toDeliveryDetailJson(d: DeliveryLogDetails, url: string): DeliveryDetailJson {
  return {
    ...toDeliveryJson(d, url),
    attempt_log: d.attemptLog.map((a) => ({
      number: a.number,
      started_at: a.startedAt.toISOString(),
      duration_ms: a.durationMs,
      response_status: a.responseStatus,
      error: a.error,
      response_body: a.responseBody,
    })),
    payload: d.payload,
  };
}

/** Sets `Link: <this URL with the query and cursor>; rel="next"` when there is a next page. */
export function setNextLink(
  req: any,
  res: any,
  next: string | null,
  keep: Record<string, string | undefined>,
): void {
  if (!next) return;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(keep)) if (v !== undefined) params.set(k, v);
  params.set('cursor', next);
  res.setHeader('Link', `<${requestUrl(req)}?${params.toString()}>; rel="next"`);
}
