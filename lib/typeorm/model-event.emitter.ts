import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import type { DataSource, QueryRunner } from 'typeorm';
import { EventService } from '../events/event.service.js';
import { sharedState } from '../shared-state.js';
import { THORN_DATA_SOURCE } from '../thorn.constants.js';
import { ModelEventBuilder, type PreparedModelEvent } from './model-event.builder.js';
import { TransactionFrames } from './transaction-frames.js';

// The emitter of the running app, for `getModelEvents()` called outside DI. One pointer (like `Event`'s), not a registry,
// in the state the ESM and CommonJS builds share.

/** The emitter of the running ThornModule, if any. */
export function activeModelEventEmitter(): ModelEventEmitter | undefined {
  return sharedState.modelEventEmitter;
}

function activate(emitter: ModelEventEmitter): void {
  sharedState.modelEventEmitter = emitter;
}

function deactivate(emitter: ModelEventEmitter): void {
  if (sharedState.modelEventEmitter === emitter) sharedState.modelEventEmitter = undefined;
}

/**
 * Decides when model events go out: held per transaction until the outermost commit
 * (`signalHonorsTransaction`), or dispatched at once. HTTP is never awaited inside a TypeORM hook, except for events
 * with `propagateErrors`, whose dispatch errors must reach the caller.
 */
@Injectable()
export class ModelEventEmitter implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('Thorn');
  readonly frames = new TransactionFrames<PreparedModelEvent>();
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
    activate(this);
  }

  /** Lets background dispatches started before shutdown hand their events over (bounded by the request timeout). */
  async beforeApplicationShutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((r) => (timer = setTimeout(r, this.events.options.timeout + 1000)));
    await Promise.race([this.idle(), limit]);
    clearTimeout(timer);
  }

  onApplicationShutdown(): void {
    deactivate(this);
  }

  /** Resolves once no model-event dispatch runs in the background (first attempts done, or handed to a queue). */
  async idle(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  /**
   * Raises events from a TypeORM hook. A slot is reserved in the transaction frame right away (so events keep the order
   * in which the hooks ran) and filled once `build` resolves. Returns what the hook must await: the build (it may query
   * through the hook's QueryRunner), plus the dispatch of events that propagate errors and are sent now.
   */
  raise(qr: QueryRunner | undefined, build: () => Promise<PreparedModelEvent[]>): Promise<void> {
    const slot = this.frames.isHolding(qr) ? this.frames.reserve(qr) : undefined;
    return build().then(
      async (events) => {
        const now = slot ? events.filter((e) => !e.honors) : events;
        if (slot) slot.items = events.filter((e) => e.honors);
        if (!now.length) return;
        const sending = this.dispatchInOrder(now);
        if (now.some((e) => e.propagate)) await sending;
        else this.background(sending);
      },
      (err) => {
        if (slot) slot.items = [];
        throw err;
      },
    );
  }

  /** After the outermost commit: sends the held events in order; awaited only when one of them propagates errors. */
  committed(qr: QueryRunner): Promise<void> | undefined {
    const events = this.frames.committed(qr);
    if (!events?.length) return undefined;
    const sending = this.dispatchInOrder(events);
    if (events.some((e) => e.propagate)) return sending;
    this.background(sending);
    return undefined;
  }

  private background(sending: Promise<void>): void {
    // never rejects: only events that propagate errors make dispatchInOrder throw, and those are awaited instead
    const tracked = sending.catch(() => undefined).finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
  }

  /** Hands events to the dispatcher one after another; rejects with the first error of an event that propagates. */
  async dispatchInOrder(events: PreparedModelEvent[]): Promise<void> {
    let failure: unknown;
    for (const e of events) {
      try {
        await this.events.sendBody(e.name, e.body, e.eventOptions, e.sendOptions);
      } catch (err) {
        if (e.propagate) failure ??= err;
        else this.logger.error(`Model event "${e.name}" could not be dispatched: ${(err as Error).message}`);
      }
    }
    if (failure !== undefined) throw failure;
  }
}
