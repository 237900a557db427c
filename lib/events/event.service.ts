import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { DeliveryService } from '../delivery/delivery.service.js';
import { Dispatcher } from '../dispatchers/dispatcher.js';
import type { ThornQueueStats } from '../dispatchers/queue/queue.types.js';
import type { Recipient, SubscriberSpec, SubscribersOption } from '../subscriptions/recipient.js';
import { RecipientResolver } from '../subscriptions/recipient.resolver.js';
import { hasUnsignedStatic } from '../subscriptions/static-subscribers.js';
import { InjectThornOptions } from '../thorn.decorators.js';
import { ThornResources } from '../thorn.resources.js';
import { traceSend } from '../telemetry/telemetry.js';
import { messages } from '../messages.js';
import {
  deliveryOverrides,
  resolveDeliverySettings,
  type DeliverySettings,
  type ResolvedThornOptions,
} from '../thorn-options.js';
import type { EventEnvelope, SendResult } from './envelope.js';
import { Event, type EventOptions, type SendOptions } from './event.js';
import { bufferStorage, EventBuffer, type BufferOptions, type HeldEvent } from './event-buffer.js';
import { toJsonSafe } from './payload.js';
import { activateEventService, deactivateEventService } from './runtime.js';
import { logError } from '../telemetry/log-fields.js';

/** Sends events: `send()`, `event()`, `subscribersFor()`, `bufferEvents()`. Injectable anywhere. */
@Injectable()
export class EventService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Thorn');
  /** The module's delivery settings: what every event without overrides carries (never changed once built). */
  private moduleSettings?: DeliverySettings;

  constructor(
    @InjectThornOptions() readonly options: ResolvedThornOptions,
    readonly delivery: DeliveryService,
    @Inject(RecipientResolver) readonly recipients: RecipientResolver,
    @Inject(Dispatcher) readonly dispatcher: Dispatcher,
    @Inject(ThornResources) private readonly resources: ThornResources,
  ) {}

  onModuleInit(): void {
    activateEventService(this);
    if (hasUnsignedStatic(this.options.subscribers) && !this.options.defaultHmacSecret) {
      this.logger.warn(messages.unsignedStatic());
    }
  }

  // the dispatchers and the transport are closed by ThornResources, which created them
  onApplicationShutdown(): void {
    deactivateEventService(this);
  }

  /** An `Event` bound to this service. */
  event(name: string, options?: EventOptions): Event {
    return new Event(name, options, this);
  }

  /** Sends `data` as event `name` (same as `new Event(name).send(data, options)`). */
  send(name: string, data: unknown, options?: SendOptions & { event?: EventOptions }): Promise<SendResult> {
    return this.sendEvent(new Event(name, options?.event, this), data, options);
  }

  /** Sends a plain event: the body is `data` with the event's `requestData` merged in. */
  async sendEvent(event: Event, data: unknown, options: SendOptions = {}): Promise<SendResult> {
    let body = toJsonSafe(data);
    if (event.options.requestData) {
      body = {
        ...(body && typeof body === 'object' && !Array.isArray(body) ? body : { data: body }),
        ...(toJsonSafe(event.options.requestData, 'requestData') as object),
      };
    }
    return this.sendBody(event.name, body, event.options, options);
  }

  /**
   * Sends an already-built, JSON-safe body (model events use this for their message; `ownerlessOnly`: see
   * `EventEnvelope`).
   */
  async sendBody(
    name: string,
    body: unknown,
    eventOptions: EventOptions,
    options: SendOptions & { ownerlessOnly?: boolean } = {},
  ): Promise<SendResult> {
    const envelope = this.envelope(name, body, eventOptions, options);
    const dispatcher =
      eventOptions.dispatcher === undefined
        ? this.dispatcher
        : await this.resources.getDispatcher(eventOptions.dispatcher, this.delivery, this.recipients);
    const buffer = bufferStorage.getStore();
    // an event recorded through the caller's transaction is written now, in it: a buffer can't hold it past that
    if (
      buffer &&
      buffer.owner === this &&
      !buffer.closed &&
      !(options.manager && this.recordsInLedger(eventOptions))
    ) {
      buffer.hold({ envelope, dispatcher });
      return { event: name, deliveries: [], buffered: true };
    }
    return traceSend(name, () => dispatcher.dispatch(envelope));
  }

  /**
   * Whether events sent with these options are recorded in the delivery ledger: the ledger is on and the event uses the
   * module's dispatcher (an Event with its own `dispatcher` bypasses the ledger; 'disabled' sends and records nothing).
   */
  recordsInLedger(eventOptions: EventOptions): boolean {
    return (
      !!this.options.ledger && eventOptions.dispatcher === undefined && this.options.dispatcher !== 'disabled'
    );
  }

  /**
   * Job counts of the dispatcher's queue (waiting / active / delayed / failed / completed) with the bull and bullmq dispatchers;
   * null for dispatchers without a queue.
   */
  async queueStats(): Promise<ThornQueueStats | null> {
    const d = this.dispatcher as Dispatcher & { queueStats?: () => Promise<ThornQueueStats> };
    return typeof d.queueStats === 'function' ? d.queueStats() : null;
  }

  /** Who would receive event `name` sent by `sender`: static, then stored, then none of any event's own. */
  subscribersFor(name: string, sender?: unknown): Promise<Recipient[]> {
    return this.recipients.resolve({ name, sender: senderId(sender), context: {} });
  }

  /**
   * Holds every event sent inside `fn`'s async context and dispatches them when it returns (or throws), or on
   * `buffer.flush()` / `buffer.maybeFlush()`. Nested calls join the outermost buffer.
   */
  async bufferEvents<T>(fn: (buffer: EventBuffer) => T | Promise<T>, options?: BufferOptions): Promise<T> {
    const existing = bufferStorage.getStore();
    if (existing && existing.owner === this && !existing.closed) return fn(existing);
    const buffer = new EventBuffer(this, (items) => this.dispatchHeld(items), options);
    let result: T;
    try {
      result = await bufferStorage.run(buffer, () => fn(buffer));
    } catch (err) {
      await buffer.close().catch((e) => this.logger.error(`Flushing buffered events failed: ${logError(e)}`));
      throw err;
    }
    await buffer.close();
    return result;
  }

  private async dispatchHeld(items: HeldEvent[]): Promise<SendResult[]> {
    // keep send order within each dispatcher; different dispatchers run side by side
    const groups = new Map<Dispatcher, HeldEvent[]>();
    for (const item of items) groups.set(item.dispatcher, [...(groups.get(item.dispatcher) ?? []), item]);
    const results = await Promise.all(
      [...groups].map(([d, group]) => {
        const envs = group.map((g) => g.envelope);
        return d.dispatchMany ? d.dispatchMany(envs) : Promise.all(envs.map((e) => d.dispatch(e)));
      }),
    );
    return results.flat();
  }

  private envelope(
    name: string,
    body: unknown,
    ev: EventOptions,
    opts: SendOptions & { ownerlessOnly?: boolean },
  ): EventEnvelope {
    const overrides = deliveryOverrides(name, opts, ev);
    // one shape for every envelope (absent options are undefined, not missing): this runs for every event sent
    return {
      name,
      body,
      sender: senderId(opts.sender),
      ownerlessOnly: opts.ownerlessOnly ? true : undefined,
      context: opts.context ? { ...opts.context } : {},
      headers: opts.headers ? { ...opts.headers } : {},
      // the module's settings, resolved once, unless this send or its Event overrides one
      settings: isEmpty(overrides)
        ? (this.moduleSettings ??= Object.freeze(resolveDeliverySettings(this.options)))
        : resolveDeliverySettings(this.options, overrides),
      overrides,
      keepAlive: ev.allowKeepalive ?? true,
      validators: ev.recipientValidators,
      subscribers: ev.subscribers === undefined ? undefined : eventSubscribers(name, ev.subscribers),
      callbacks:
        opts.onSuccess || opts.onError || opts.onTimeout
          ? { onSuccess: opts.onSuccess, onError: opts.onError, onTimeout: opts.onTimeout }
          : undefined,
      manager: opts.manager,
    };
  }
}

/** The id used for ownership: an object's `id`, or the value itself; null when absent. */
export function senderId(sender: unknown): string | null {
  if (sender === undefined || sender === null) return null;
  if (typeof sender === 'object') {
    const id = (sender as { id?: unknown }).id;
    return id === undefined || id === null ? null : String(id);
  }
  return String(sender);
}

/** An event's `subscribers` option as a pattern map: a plain object without `url` already is one. */
function eventSubscribers(name: string, spec: SubscriberSpec | SubscribersOption): SubscribersOption {
  const isPatternMap =
    typeof spec === 'object' &&
    spec !== null &&
    Object.getPrototypeOf(spec) === Object.prototype &&
    !('url' in spec);
  return isPatternMap ? (spec as SubscribersOption) : { [name]: spec as SubscriberSpec };
}

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}
