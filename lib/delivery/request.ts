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
   * Set when this recipient's request could not be built (unknown content type or digest, a signer that threw): the
   * delivery fails with it, without a request, and the event's other recipients are still served.
   */
  failure?: Error;
}
