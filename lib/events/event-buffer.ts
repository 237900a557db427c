import { sharedState } from '../shared-state.js';
import type { Dispatcher } from '../dispatchers/dispatcher.js';
import type { EventEnvelope, SendResult } from './envelope.js';

/** When `maybeFlush()` flushes: every `flushFreq` calls and/or once `flushTimeout` ms passed since the last flush. */
export interface BufferOptions {
  flushFreq?: number;
  flushTimeout?: number;
}

/** An event held by a buffer, with the dispatcher it will go to. */
export interface HeldEvent {
  envelope: EventEnvelope;
  dispatcher: Dispatcher;
}

/** Events held by `eventService.bufferEvents()`; dispatched on `flush()`, `maybeFlush()` or when the callback returns. */
export class EventBuffer {
  private held: HeldEvent[] = [];
  private calls = 0;
  private lastFlush = Date.now();
  /** Set once `bufferEvents` has returned: later sends from work it started go straight out, never into this buffer. */
  closed = false;

  constructor(
    /** The service that owns this buffer (a buffer never crosses apps). */
    readonly owner: object,
    private readonly dispatchHeld: (items: HeldEvent[]) => Promise<SendResult[]>,
    private readonly options: BufferOptions = {},
  ) {}

  /** Number of events waiting. */
  get size(): number {
    return this.held.length;
  }

  /** Holds an event until the next flush. */
  hold(item: HeldEvent): void {
    this.held.push(item);
  }

  /** Dispatches every held event now, in the order sent. */
  async flush(): Promise<SendResult[]> {
    const items = this.held;
    this.held = [];
    this.lastFlush = Date.now();
    return items.length ? this.dispatchHeld(items) : [];
  }

  /** Final flush: from now on sends from this context are not held (nobody would flush them again). */
  close(): Promise<SendResult[]> {
    this.closed = true;
    return this.flush();
  }

  /** Flushes when `flushFreq` calls were made or `flushTimeout` ms passed; resolves to null when it did not. */
  async maybeFlush(): Promise<SendResult[] | null> {
    this.calls++;
    const { flushFreq, flushTimeout } = this.options;
    const byCount = !!flushFreq && this.calls % flushFreq === 0;
    const byTime = flushTimeout !== undefined && Date.now() - this.lastFlush >= flushTimeout;
    return byCount || byTime ? this.flush() : null;
  }
}

/** The buffer of the current async context, if any: concurrent requests never share one (one per process: shared state). */
export const bufferStorage = sharedState.bufferStorage;
