import type { EntityManager } from 'typeorm';
import type { RecipientValidator } from '../delivery/validators.js';
import type { SubscriberSpec, SubscribersOption } from '../subscriptions/recipient.js';
import type { DeliveryOverrides, DispatcherOption } from '../thorn-options.js';
import type { DeliveryCallbacks, SendResult } from './envelope.js';
import type { EventService } from './event.service.js';
import { activeEventService } from './runtime.js';

/** Options of `new Event(name, options)`; delivery settings override the module's. */
export interface EventOptions extends DeliveryOverrides {
  /** Replace the module's validators for this event. */
  recipientValidators?: RecipientValidator[];
  /** Extra subscribers of this event (any subscriber form, or an object keyed by pattern). */
  subscribers?: SubscriberSpec | SubscribersOption;
  /** Merged into every payload at top level. */
  requestData?: Record<string, unknown>;
  /** Reuse connections (default true). */
  allowKeepalive?: boolean;
  /** Use another dispatcher for this event. */
  dispatcher?: DispatcherOption;
}

/** Options of `send()`; delivery settings override the event's and the module's. */
export interface SendOptions extends DeliveryOverrides, DeliveryCallbacks {
  /** Who caused the event: only subscriptions owned by it (or by nobody) receive it. */
  sender?: unknown;
  /** Passed to callback subscribers. */
  context?: Record<string, unknown>;
  /** Extra request headers (they can't override `Hook-*`). */
  headers?: Record<string, string>;
  /**
   * With the ledger: record the event through this TypeORM EntityManager, i.e. inside its transaction (the event exists
   * if and only if the transaction commits). Ignored without the ledger.
   */
  manager?: EntityManager;
}

/** A named webhook event. Created at module scope, it binds to the running ThornModule when first sent. */
export class Event {
  constructor(
    readonly name: string,
    readonly options: EventOptions = {},
    private service?: EventService,
  ) {
    if (typeof name !== 'string' || !name) throw new TypeError('Event name must be a non-empty string');
  }

  /** Sends `data` (plus `requestData`) to every matching subscriber. */
  async send(data: unknown, options?: SendOptions): Promise<SendResult> {
    return (this.service ?? activeEventService(this.name)).sendEvent(this, data, options);
  }

  /** Binds this event to a specific service (what `eventService.event()` does). */
  bind(service: EventService): this {
    this.service = service;
    return this;
  }
}
