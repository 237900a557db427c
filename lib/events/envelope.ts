import type { EntityManager } from 'typeorm';
import type { DeliveryOverrides, DeliverySettings } from '../thorn-options.js';
import type { DeliveryRequest } from '../delivery/request.js';
import type { RecipientValidator } from '../delivery/validators.js';
import type { SubscriberContext, SubscribersOption } from '../subscriptions/recipient.js';

// defined in delivery/ (the bottom layer, which builds it); exported from here as before
export type { DeliveryRequest };

/** Per-delivery callbacks of `send()`; each runs once, on the delivery's final outcome. */
export interface DeliveryCallbacks {
  onSuccess?: (request: DeliveryRequest) => void | Promise<void>;
  onError?: (request: DeliveryRequest, error: Error) => void | Promise<void>;
  /** Timeouts go here when given, else to `onError`. */
  onTimeout?: (request: DeliveryRequest, error: Error) => void | Promise<void>;
}

/** One event on its way to dispatch: the encoded-ready body and everything needed to deliver it. */
export interface EventEnvelope {
  name: string;
  /** JSON-safe body (data + requestData, or the model-event message). */
  body: unknown;
  sender?: string | null;
  /**
   * Stored subscriptions owned by nobody only: a model event whose `senderField` gave no sender (it must not reach
   * every user's subscriptions). Static and per-event subscribers are not filtered.
   */
  ownerlessOnly?: boolean;
  /** Passed to callback subscribers (with `sender`). */
  context: SubscriberContext;
  headers: Record<string, string>;
  settings: DeliverySettings;
  /** The settings of `settings` that `send()` / the `Event` set (not the module's): what a queued job carries. */
  overrides?: DeliveryOverrides;
  keepAlive: boolean;
  validators?: RecipientValidator[];
  /** The event's own subscribers (never filtered by sender). */
  subscribers?: SubscribersOption;
  callbacks?: DeliveryCallbacks;
  /** With the ledger: the EntityManager to record the event through (the caller's transaction). */
  manager?: EntityManager;
}

/** Outcome of one delivery's first attempt (direct dispatcher). */
export interface DeliveryResult {
  subscription: string;
  url: string;
  deliveryId: string;
  ok: boolean;
  status?: number;
  error?: string;
  /** A retry is scheduled. */
  retrying: boolean;
}

/** What `send()` resolves to. */
export interface SendResult {
  event: string;
  /** Per-delivery results (direct dispatcher); empty when queued, buffered or disabled. */
  deliveries: DeliveryResult[];
  /** The event was handed to a queue (bull). */
  queued?: boolean;
  /** The event is held by `bufferEvents` until the buffer flushes. */
  buffered?: boolean;
  /**
   * With the ledger: the event is recorded (in the caller's transaction when `send()` was given its manager); false when
   * no subscriber can receive it (nothing is recorded then, and nothing would have been delivered).
   */
  recorded?: boolean;
  /** With the ledger: the `thorn_event` id of the recorded event. */
  eventId?: string;
}
