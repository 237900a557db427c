// The `send()`s of one event-loop turn, enqueued together (issue 18, point 4): one add to Redis for all of them instead
// of one each. The queue library's cost is mostly per command (a Lua script call, a round trip, the job's bookkeeping),
// so N events in ceil(N / chunkSize) jobs added at once cost far less than N adds.
// node:timers' own functions, not the globals: a test suite's fake timers (jest.useFakeTimers() replaces the global
// setImmediate) would otherwise hold every send() until it advances time
import { clearImmediate, setImmediate } from 'node:timers';
import { EnqueueError, type EnqueueGate } from './enqueue-gate.js';
import type { QueuedEvent } from './queue.jobs.js';

interface Waiting {
  event: QueuedEvent;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Collects events until the end of the current event-loop turn, then adds them through the `EnqueueGate` in one go
 * (`addEvents`: `event` jobs of up to `chunkSize` events, one `addBulk`). Each `enqueue()` settles with the outcome of
 * that add: resolved once Redis has the job holding its event, or rejected with the add's error naming only its event.
 *
 * Why `setImmediate` (the check phase of this turn): it runs after every microtask and every I/O callback of the current
 * turn, so it gathers the events of all requests and saves that completed in this turn — whatever chain of awaits led
 * each of them here (a model save's commit, a per-event subscriber lookup) — and it adds no timer: an event waits at most
 * for the rest of the turn it was sent in. A microtask would flush after the first promise chain reached it and miss
 * the rest of the turn; a timer (even 0 ms) would add up to a millisecond to every `send()`.
 */
export class EnqueueCoalescer {
  private waiting: Waiting[] = [];
  private flushing?: NodeJS.Immediate;

  constructor(
    private readonly gate: EnqueueGate,
    private readonly addEvents: (events: QueuedEvent[]) => Promise<unknown>,
  ) {}

  /** Events waiting for the end of this turn (not yet handed to the gate). */
  get size(): number {
    return this.waiting.length;
  }

  /** Resolves once Redis has the job holding `event`; rejects with the add's error, naming `event` only. */
  enqueue(event: QueuedEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ event, resolve, reject });
      this.flushing ??= setImmediate(() => this.flush());
    });
  }

  /** Hands the waiting events to the gate now (the end of the turn, or shutdown: the gate then drops and logs them). */
  flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    const batch = this.waiting;
    if (!batch.length) return;
    this.waiting = [];
    const events = batch.map((w) => w.event);
    this.gate
      .enqueue(
        events.map((e) => e.name),
        () => this.addEvents(events),
      )
      .then(
        () => {
          for (const w of batch) w.resolve();
        },
        (err: unknown) => {
          for (const w of batch) {
            w.reject(batch.length > 1 && err instanceof EnqueueError ? err.for([w.event.name]) : err);
          }
        },
      );
  }
}
