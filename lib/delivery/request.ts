import type { DeliverySettings } from '../thorn-options.js';
import type { HmacDigest } from './signing.js';
import type { RecipientValidator } from './validators.js';

/** One resolved destination of an event: a stored, static or per-event subscriber. */
export interface Recipient {
  /** Subscription id, sent as `Hook-Subscription` (stable for static subscribers). */
  id: string;
  url: string;
  /** The pattern it subscribed with. */
  event: string;
  contentType: string;
  /** null/undefined: the request is sent unsigned. */
  hmacSecret?: string | null;
  hmacDigest: HmacDigest;
  /** Owner id, for stored subscriptions. */
  user?: string | null;
  source: 'static' | 'stored' | 'event';
  /**
   * Stored subscriptions: the secret replaced by the last rotation, accepted (and sent in `webhook-signature`) until
   * `previousHmacSecretExpiresAt`; never used for `Hook-HMAC`.
   */
  previousHmacSecret?: string | null;
  previousHmacSecretExpiresAt?: Date | null;
  /** Stored subscriptions: whether it had a failure streak when it was read (a success then clears it). */
  failing?: boolean;
}

/**
 * The secrets a request is signed with, held in memory only while it is being delivered: never put on a queue, in a
 * log, an error or telemetry. Read again at attempt time when the request has none (a queued retry).
 */
export interface SigningKeys {
  /** The current secret: `Hook-HMAC` and the first `webhook-signature`. */
  secret: string;
  digest: HmacDigest;
  /** A rotated-out secret, also in `webhook-signature` until `previousExpiresAt` (never once that has passed). */
  previous?: string | null;
  previousExpiresAt?: Date | null;
}

/** What `DeliveryService.prepare()` reads of an event (an `EventEnvelope` is one). */
export interface DeliveryEvent {
  name: string;
  /** JSON-safe body, encoded per content type. */
  body: unknown;
  /** Custom headers sent with every request of the event. */
  headers: Record<string, string>;
  settings: DeliverySettings;
  keepAlive: boolean;
  /** Validators of the event, when it overrides the module's. */
  validators?: RecipientValidator[];
}

/** A delivery as callbacks see it: the exact request, and its outcome so far. */
export interface DeliveryRequest {
  /** `Hook-Delivery`: a UUID, the same on every retry. */
  id: string;
  event: string;
  /** `Hook-Subscription`. */
  subscription: string;
  url: string;
  contentType: string;
  headers: Record<string, string>;
  /** The exact bytes sent (and signed). */
  body: string | Buffer;
  settings: DeliverySettings;
  keepAlive: boolean;
  /** Attempts made so far. */
  attempts: number;
  /** Status of the last answer, if any. */
  status?: number;
  source: Recipient['source'];
  /** Validators of the event, when it overrides the module's. */
  validators?: RecipientValidator[];
  /**
   * The subscription's secrets, in memory only: a non-enumerable property (so a logged or serialised request never
   * shows it), set by `prepare()`; `null` = sent unsigned; absent = unknown here (a request rebuilt from a queue job):
   * `DeliveryService.attempt()` asks its `signingKeys` hook.
   */
  keys?: SigningKeys | null;
  /** Stored subscriptions: whether it had a failure streak when it was read (see `Recipient.failing`). */
  failing?: boolean;
  /**
   * Set when this recipient's request could not be built (unknown content type or digest, a signer that threw): the
   * delivery fails with it, without a request, and the event's other recipients are still served.
   */
  failure?: Error;
}
