import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import type { SendResult } from '../events/envelope.js';
import { EventService } from '../events/event.service.js';
import { sharedState } from '../shared-state.js';
import { THORN_DATA_SOURCE } from '../thorn.constants.js';
import { ModelEventBuilder, type PreparedModelEvent } from './model-event.builder.js';
import { ModelEventSubscriber } from './model-event.subscriber.js';
import { TransactionFrames, type HeldSlot } from './transaction-frames.js';
import { logError, logLine } from '../telemetry/log-fields.js';

declare const hookWait: unique symbol;

/**
 * What a TypeORM hook awaits from the emitter: building the messages (it may query through the hook's QueryRunner) and,
 * only for events with `propagateErrors`, their dispatch. Only the emitter makes one (see `release()`), so a hook that
 * raises events cannot make `save()` wait for HTTP by any other path.
 */
export type HookWait = Promise<void> & { readonly [hookWait]: true };

// The emitter of the running app, for `getModelEvents()` called outside DI. One pointer (like `Event`'s), not a registry,
// in the state the ESM and CommonJS builds share.

/** The emitter of the running ThornModule, if any. */
export function activeModelEventEmitter(): ModelEventEmitter | undefined {
  return sharedState.modelEventEmitter;
}

/**
 * Decides when model events go out: held per transaction until the outermost commit (`signalHonorsTransaction`), or
 * dispatched at once. TypeORM hooks (`raise()`) and manual sends (`send()`, from `getModelEvents()`) share one
 * hold-or-send decision; the subscriber reports transactions through `transactionStarted/Committed/RolledBack()`. HTTP is never awaited
 * inside a hook, except for events with `propagateErrors`, whose dispatch errors must reach the caller.
 */
@Injectable()
export class ModelEventEmitter implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('Thorn');
  private readonly frames = new TransactionFrames<PreparedModelEvent>();
  /** Dispatches running in the background (not awaited by any hook). */
  private readonly inflight = new Set<Promise<void>>();
  /** Builds the messages (loading the relations they read). */
  readonly builder: ModelEventBuilder;

  constructor(
    readonly events: EventService,
    @Optional() @Inject(THORN_DATA_SOURCE) readonly dataSource: DataSource | null = null,
  ) {
    this.builder = new ModelEventBuilder(events.options);
  }

  onModuleInit(): void {
    sharedState.modelEventEmitter = this;
  }

  /** Lets background dispatches started before shutdown hand their events over (bounded by the request timeout). */
  async beforeApplicationShutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((r) => (timer = setTimeout(r, this.events.options.timeout + 1000)));
    await Promise.race([this.idle(), limit]);
    clearTimeout(timer);
  }

  onApplicationShutdown(): void {
    if (sharedState.modelEventEmitter === this) sharedState.modelEventEmitter = undefined;
  }

  /** Resolves once no model-event dispatch runs in the background (first attempts done, or handed to a queue). */
  async idle(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  /** `afterTransactionStart` (savepoints included). */
  transactionStarted(qr: QueryRunner): void {
    this.frames.started(qr);
  }

  /** `afterTransactionCommit`: after the outermost commit, the held events go out, in the order raised. */
  transactionCommitted(qr: QueryRunner): HookWait | undefined {
    return this.release(this.frames.committed(qr) ?? []);
  }

  /** `afterTransactionRollback`: the events of the rolled-back level are dropped. */
  transactionRolledBack(qr: QueryRunner): void {
    this.frames.rolledBack(qr);
  }

  /**
   * Raises the events `build` makes, from a TypeORM hook on `qr`. Inside a transaction a slot is reserved in its frame
   * right away (so events keep the order in which the hooks ran) and filled once `build` resolves with the events that
   * honor the transaction; the others are sent now. Returns what the hook must await (see `HookWait`).
   */
  raise(qr: QueryRunner | undefined, build: () => Promise<PreparedModelEvent[]>): HookWait {
    const built = this.events.options.ledger ? () => this.recordFirst(qr, build) : build;
    return this.route<void>(qr, built, (now) => this.release(now)) as HookWait;
  }

  /**
   * With the ledger: records the built events it covers, through the hook's own connection, and returns the rest for
   * the hold-or-send decision. Inside a transaction an event that honors it is written in it (its row commits or rolls
   * back with the change; the ledger relays it after the commit) and one that does not is returned too: it is recorded
   * in the background after the hook, on another connection (awaiting a second pool connection inside a hook would
   * deadlock a full pool). Outside a transaction it is written at once on the same connection. A failed insert fails
   * the hook, so a change never commits without its events. Events with their own `dispatcher` are returned as well.
   */
  private async recordFirst(
    qr: QueryRunner | undefined,
    build: () => Promise<PreparedModelEvent[]>,
  ): Promise<PreparedModelEvent[]> {
    const others: PreparedModelEvent[] = [];
    const inTransaction = !!qr?.isTransactionActive;
    for (const e of await build()) {
      if (!this.events.recordsInLedger(e.eventOptions) || (inTransaction && !e.honors)) {
        others.push(e);
        continue;
      }
      await this.events.sendBody(e.name, e.body, e.eventOptions, { ...e.sendOptions, manager: qr?.manager });
    }
    return others;
  }

  /**
   * Raises one event sent by hand (`getModelEvents()`), with the same hold-or-send decision as `raise()` when `manager`
   * runs a transaction this emitter watches (its subscriber is registered on that DataSource, so it sees the commit).
   * Sent now, it is awaited and its result returned, as `Event.send()` does; held, the result says `buffered`.
   */
  send(manager: EntityManager | undefined, build: () => Promise<PreparedModelEvent>): Promise<SendResult> {
    if (this.events.options.ledger) {
      // recorded through `manager` (its transaction) when the event honors transactions; see recordFirst()
      return build().then((e) =>
        this.events.recordsInLedger(e.eventOptions)
          ? this.events.sendBody(e.name, e.body, e.eventOptions, {
              ...e.sendOptions,
              manager: e.honors ? manager : undefined,
            })
          : this.hold(manager, async () => e),
      );
    }
    return this.hold(manager, build);
  }

  /** `send()` without the ledger (or for an event that bypasses it): the same hold-or-send decision as `raise()`. */
  private hold(
    manager: EntityManager | undefined,
    build: () => Promise<PreparedModelEvent>,
  ): Promise<SendResult> {
    const qr = manager && this.watches(manager) ? manager.queryRunner : undefined;
    let name = '';
    return this.route<SendResult>(
      qr,
      async () => {
        const event = await build();
        name = event.name;
        return [event];
      },
      ([event]) =>
        event
          ? this.events.sendBody(event.name, event.body, event.eventOptions, event.sendOptions)
          : { event: name, deliveries: [], buffered: true },
    );
  }

  /**
   * The one hold-or-send decision: when `qr` is in a transaction, a slot reserved before `build` runs holds the built
   * events that honor transactions until the outermost commit; `now` gets the rest. A failed build leaves the slot empty.
   */
  private async route<R>(
    qr: QueryRunner | undefined,
    build: () => Promise<PreparedModelEvent[]>,
    now: (events: PreparedModelEvent[]) => R | PromiseLike<R>,
  ): Promise<R> {
    const slot: HeldSlot<PreparedModelEvent> | undefined = this.frames.isHolding(qr)
      ? this.frames.reserve(qr)
      : undefined;
    let events: PreparedModelEvent[];
    try {
      events = await build();
    } catch (err) {
      if (slot) slot.items = [];
      throw err;
    }
    if (!slot) return now(events);
    slot.items = events.filter((e) => e.honors);
    return now(events.filter((e) => !e.honors));
  }

  /**
   * The rule, written once: only events with `propagateErrors` make a hook wait for HTTP. Events go to the dispatcher
   * in order; when one of them propagates errors the dispatch is returned (the hook awaits it and its first such error
   * reaches `save()`), otherwise it runs in the background, tracked by `idle()`.
   */
  private release(events: readonly PreparedModelEvent[]): HookWait | undefined {
    if (!events.length) return undefined;
    const sending = this.dispatchInOrder(events);
    if (events.some((e) => e.propagate)) return sending as HookWait;
    // never rejects: only events that propagate errors make dispatchInOrder throw, and those are awaited instead
    const tracked = sending.catch(() => undefined).finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
    return undefined;
  }

  /** Hands events to the dispatcher one after another; rejects with the first error of an event that propagates. */
  private async dispatchInOrder(events: readonly PreparedModelEvent[]): Promise<void> {
    let failure: unknown;
    for (const e of events) {
      try {
        await this.events.sendBody(e.name, e.body, e.eventOptions, e.sendOptions);
      } catch (err) {
        if (e.propagate) failure ??= err;
        else
          this.logger.error(
            logLine(`A model event could not be dispatched: ${logError(err)}`, { event: e.name }),
          );
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** Whether this emitter's subscriber is registered on `manager`'s DataSource (so it sees its transactions end). */
  private watches(manager: EntityManager): boolean {
    return manager.connection.subscribers.some(
      (s) => s instanceof ModelEventSubscriber && s.emitter === this,
    );
  }
}
