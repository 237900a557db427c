import type { Subscriber } from '../subscriptions/subscriber.entity.js';

/** A subscription as the `/hooks` API shows it to its owner (snake_case, as in Thorn). */
export interface SubscriptionJson {
  id: string;
  event: string;
  url: string;
  content_type: string;
  user: string | null;
  /**
   * Only in the answers of `POST /hooks`, `GET /hooks/:id` and `POST /hooks/:id/rotate-secret` (never in a list or an
   * update's answer; the previous secret never).
   */
  hmac_secret?: string;
  hmac_digest: string;
  /** false: it receives nothing (disabled after a 410 or a failure streak, or paused); PATCH `{"active": true}`. */
  active: boolean;
  disabled_at: string | null;
  /** `'gone'` (the receiver answered 410), `'failing'` (autoDisable), `'paused'` (PATCH `{"active": false}`). */
  disabled_reason: string | null;
  /** Deliveries that failed in a row (after their last retry); a success resets it. */
  consecutive_failures: number;
  /** When the current failure streak began. */
  failing_since: string | null;
  created_at: string | null;
  updated_at: string | null;
  /** Absolute URL of `GET /hooks/:id`. */
  subscription: string;
}

/**
 * Maps a stored subscription to its JSON form; `detailUrl` is the absolute URL of its `GET /hooks/:id`. The secret is
 * shown only with `withSecret` (the create and detail answers), so a list never carries every secret of a user.
 */
export function toSubscriptionJson(s: Subscriber, detailUrl: string, withSecret = false): SubscriptionJson {
  return {
    id: s.id,
    event: s.event,
    url: s.url,
    content_type: s.contentType,
    user: s.user ?? null,
    ...(withSecret ? { hmac_secret: s.hmacSecret } : {}),
    hmac_digest: s.hmacDigest,
    active: s.active !== false && (s.active as unknown) !== 0,
    disabled_at: isoDate(s.disabledAt),
    disabled_reason: s.disabledReason ?? null,
    consecutive_failures: Number(s.consecutiveFailures ?? 0),
    failing_since: isoDate(s.failingSince),
    created_at: isoDate(s.createdAt),
    updated_at: isoDate(s.updatedAt),
    subscription: detailUrl,
  };
}

function isoDate(d: Date | string | null | undefined): string | null {
  if (d === null || d === undefined) return null;
  const date = d instanceof Date ? d : new Date(d);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/**
 * The absolute URL of the hooks collection this request went to (`https://api.example.com/v1/hooks`), built from the
 * request: protocol and host (Express honours `X-Forwarded-*` when the app sets `trust proxy`), and the path it was
 * routed on, so a global prefix or URI versioning is kept. `withId`: the request path ends in `/:id`.
 */
export function collectionUrl(req: any, withId: boolean): string {
  return requestUrl(req, withId ? 1 : 0);
}

/** The absolute URL of the request (as `collectionUrl`), without its query and its last `drop` path segments. */
export function requestUrl(req: any, drop = 0): string {
  const protocol = typeof req.protocol === 'string' && req.protocol ? req.protocol : 'http';
  const host = (typeof req.host === 'string' && req.host) || req.headers?.host || 'localhost';
  let path = String(req.originalUrl ?? req.url ?? '/')
    .split(/[?#]/)[0]
    .replace(/\/+$/, '');
  for (let i = 0; i < drop; i++) path = path.slice(0, path.lastIndexOf('/'));
  return `${protocol}://${host}${path}`;
}

/** `collectionUrl` + `/<id>`. */
export function detailUrl(collection: string, id: string): string {
  return `${collection}/${encodeURIComponent(id)}`;
}
