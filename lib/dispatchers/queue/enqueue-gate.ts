// Bounded adds to Redis for the queue dispatchers: every add waits for a connection and an answer within
// `enqueueTimeout`, and what is still waiting at shutdown is dropped and logged (issue 11, item 2).
import type { Logger } from '@nestjs/common';
import { messages } from '../../messages.js';
import type { QueueAdapter } from './queue.adapter.js';
import { scrub } from '../../telemetry/telemetry.js';

/** An add to Redis in progress: the events it carries, and whether it still waits for a connection. */
interface PendingEnqueue {
  names: string[];
  connecting: boolean;
  /** Settles (true: queued) when the add does. */
  done: Promise<boolean>;
  abort(err: Error): void;
}

/** At most this many event names in one log line about dropped events. */
const MAX_NAMES = 20;

/**
 * An add to Redis that failed (refused, timed out, or dropped at shutdown), naming the events it carried. `for()` gives
 * the same failure naming only some of them: each `send()` of a coalesced add rejects naming its own event.
 */
export class EnqueueError extends Error {
  constructor(
    names: string[],
    private readonly reason: (events: string) => string,
    options?: ErrorOptions,
  ) {
    super(reason(eventLabel(names)), options);
  }

  /** The same failure, naming `names` only. */
  for(names: string[]): EnqueueError {
    return new EnqueueError(names, this.reason, this.cause === undefined ? undefined : { cause: this.cause });
  }
}

export class EnqueueGate {
  private readonly pending = new Set<PendingEnqueue>();
  private closed = false;
  /** Resolves when the adapter's connection is ready (while it is not). */
  private ready?: Promise<void>;
  private lastRedisError?: string;

  constructor(
    private readonly adapter: QueueAdapter,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {
    adapter.onError((err) => {
      this.lastRedisError = scrub(redactCredentials(err.message));
      this.logger.error(`${adapter.library} queue "${adapter.queueName}": ${this.lastRedisError}`);
    });
  }

  /** Events handed to `send()` that Redis has not accepted yet (waiting for a connection or an answer). */
  get pendingEvents(): number {
    let n = 0;
    for (const p of this.pending) n += p.names.length;
    return n;
  }

  /**
   * Adds to Redis once the queue is connected, all within `enqueueTimeout`: rejects with an `EnqueueError` naming the
   * events instead of waiting for Redis forever (the queue library would hold the command until Redis comes back).
   * With the connection ready, `add` starts synchronously (so a `close()` right after lets it finish).
   */
  async enqueue<T>(names: string[], add: () => Promise<T>): Promise<T> {
    if (this.closed) {
      throw new EnqueueError(names, (events) => messages.queueClosed(this.adapter.kind, events));
    }
    const ms = this.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    let settle!: (ok: boolean) => void;
    let aborted = false;
    const entry: PendingEnqueue = {
      names,
      connecting: true,
      done: new Promise<boolean>((resolve) => (settle = resolve)),
      abort: () => undefined,
    };
    const deadline = new Promise<never>((_, reject) => {
      entry.abort = (err) => {
        aborted = true;
        reject(err);
      };
      timer = setTimeout(() => {
        const why = entry.connecting
          ? `not connected (${this.connectionState()}); the event was not queued`
          : 'no answer to the add command; the job may still be added if Redis answers later';
        reject(new EnqueueError(names, (events) => messages.enqueueTimeout(events, ms, why)));
      }, ms);
    });
    this.pending.add(entry);
    try {
      if (!this.adapter.isReady()) {
        await Promise.race([this.connected(), deadline]);
        // dropped at shutdown just as the connection came: never add it then
        if (aborted) await deadline;
      }
      entry.connecting = false;
      const adding = add().catch((err: unknown) => {
        // Redis (or the library) refused the add: name the events, never the connection URL
        const detail = scrub(redactCredentials(err instanceof Error ? err.message : String(err)));
        throw new EnqueueError(names, (events) => messages.enqueueFailed(events, detail), { cause: err });
      });
      // when the deadline wins, the add may still fail later (e.g. "Connection is closed."): never unhandled
      adding.catch(() => undefined);
      const result = await Promise.race([adding, deadline]);
      settle(true);
      return result;
    } catch (err) {
      settle(false);
      throw err;
    } finally {
      clearTimeout(timer);
      this.pending.delete(entry);
    }
  }

  /**
   * At shutdown: refuses new adds; events still waiting for a connection are dropped now (their `send()` rejects);
   * adds Redis is answering may finish. Whatever was not queued is logged, with the event names.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (!this.pending.size) return;
    const entries = [...this.pending];
    for (const e of entries) {
      if (e.connecting) {
        e.abort(new EnqueueError(e.names, (events) => messages.queueClosed(this.adapter.kind, events)));
      }
    }
    const outcomes = await Promise.all(entries.map((e) => e.done));
    const dropped = entries.filter((_, i) => !outcomes[i]).flatMap((e) => e.names);
    if (dropped.length) this.logger.warn(messages.queueDropped(dropped.length, nameList(dropped)));
  }

  /** Resolves once the queue's Redis connection is ready to take commands. */
  private connected(): Promise<void> {
    if (this.adapter.isReady()) return Promise.resolve();
    this.ready ??= this.adapter.whenReady().finally(() => (this.ready = undefined));
    return this.ready;
  }

  /** The connection's state for error messages (no URL, so no credentials). */
  private connectionState(): string {
    const status = this.adapter.status();
    return this.lastRedisError ? `${status}; last error: ${this.lastRedisError}` : status;
  }
}

/** `"a.b"`, or `3 events (a.b, c.d, …)`: which events an add carried. */
function eventLabel(names: string[]): string {
  return names.length === 1 ? `"${names[0]}"` : `${names.length} events (${nameList(names)})`;
}

/** Distinct names with their counts, at most MAX_NAMES of them: `a.b ×2, c.d`. */
function nameList(names: string[]): string {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  const parts = [...counts].map(([n, c]) => (c > 1 ? `${n} ×${c}` : n));
  const more = parts.length - MAX_NAMES;
  return parts.slice(0, MAX_NAMES).join(', ') + (more > 0 ? `, and ${more} more` : '');
}

/** Removes `user:password@` from any URL in a message (a Redis error could quote its connection URL). */
export function redactCredentials(text: string): string {
  return text.replace(/(\/\/)[^/\s@]*@/g, '$1***@');
}
