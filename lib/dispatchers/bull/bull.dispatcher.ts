// Loaded only by `dispatcher: 'bull'` (dynamic import from dispatcher.factory.ts): the one module that needs `bull`.
import { redactUrl } from '../../delivery/io.js';
import { ConcurrencyLimit } from '../concurrency-limit.js';
import { Logger } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import type Bull from 'bull';
import { randomUUID } from 'node:crypto';
import type { AttemptOutcome, DeliveryService } from '../../delivery/delivery.service.js';
import { nextRetry } from '../../delivery/retry.js';
import type { EventEnvelope, SendResult } from '../../events/envelope.js';
import { PayloadError, toJsonSafe } from '../../events/payload.js';
import { messages } from '../../messages.js';
import type { RecipientResolver } from '../../subscriptions/recipient.resolver.js';
import { resolveDeliverySettings, type ResolvedThornOptions } from '../../thorn-options.js';
import type { Dispatcher } from '../dispatcher.js';
import { createThornQueue } from './bull.connection.js';
import {
  byOrigin,
  chunked,
  fromWire,
  JOB,
  stableIds,
  toWire,
  type EventJobData,
  type QueuedEvent,
  type QueuedRequest,
  type RequestsJobData,
} from './bull.jobs.js';
import type { ThornBullOptions, ThornQueueStats } from './bull.types.js';

/** What a job reports when it completes (kept as the job's return value). */
export interface ThornJobResult {
  /** Requests prepared (event jobs) or attempted (chunk / retry jobs). */
  requests: number;
  /** Chunk jobs an event job fanned out into (0: it delivered its requests itself). */
  chunks: number;
  ok: number;
  retrying: number;
  failed: number;
}

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
 * `dispatcher: 'bull'`: `send()` enqueues one `event` job on the `thorn` queue; workers (this app with `worker: true`,
 * and/or other processes of it) resolve recipients, sign one request per recipient, order them by origin and deliver
 * them in chunks of `chunkSize`. A failed request becomes its own delayed `retry` job.
 */
export class BullDispatcher implements Dispatcher {
  private readonly logger = new Logger('Thorn');
  private readonly limit: ConcurrencyLimit;
  private closing?: Promise<void>;
  private processing = false;
  private readonly pending = new Set<PendingEnqueue>();
  /** Resolves when the queue's Redis client is ready (while it is not). */
  private ready?: Promise<void>;
  private lastRedisError?: string;

  constructor(
    /** The `thorn` queue (exposed for monitoring tools such as bull-board). */
    readonly queue: Bull.Queue,
    private readonly options: ResolvedThornOptions,
    private readonly delivery: DeliveryService,
    private readonly recipients: RecipientResolver,
  ) {
    this.limit = new ConcurrencyLimit(options.concurrency);
    queue.on('error', (err: Error) => {
      this.lastRedisError = redactCredentials(err.message);
      this.logger.error(`Bull queue "${queue.name}": ${this.lastRedisError}`);
    });
  }

  /** Connects the queue and, unless `worker: false`, starts processing jobs (`concurrency` requests in flight). */
  static async create(
    options: ResolvedThornOptions,
    delivery: DeliveryService,
    recipients: RecipientResolver,
    moduleRef: ModuleRef,
  ): Promise<BullDispatcher> {
    const queue = await createThornQueue(options.bull as string | ThornBullOptions | undefined, moduleRef);
    const dispatcher = new BullDispatcher(queue, options, delivery, recipients);
    if (options.worker) dispatcher.startWorker();
    return dispatcher;
  }

  async dispatch(envelope: EventEnvelope): Promise<SendResult> {
    const data: EventJobData = { events: [await this.toQueued(envelope)] };
    await this.enqueue([envelope.name], () => this.queue.add(JOB.event, data));
    return { event: envelope.name, deliveries: [], queued: true };
  }

  /** A buffer flush: the events go in `event` jobs of up to `chunkSize` events each, added atomically. */
  async dispatchMany(envelopes: EventEnvelope[]): Promise<SendResult[]> {
    const settled = await Promise.allSettled(envelopes.map((e) => this.toQueued(e)));
    const queued = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    if (queued.length) {
      await this.enqueue(
        queued.map((e) => e.name),
        () =>
          this.queue.addBulk(
            chunked(queued, this.options.chunkSize).map((events) => ({
              name: JOB.event,
              data: { events } satisfies EventJobData,
            })),
          ),
      );
    }
    // like the direct dispatcher: the valid events are sent, the first invalid one is reported
    const rejected = settled.find((s) => s.status === 'rejected');
    if (rejected) throw (rejected as PromiseRejectedResult).reason;
    return envelopes.map((e) => ({ event: e.name, deliveries: [], queued: true }));
  }

  /** Events handed to `send()` that Redis has not accepted yet (waiting for a connection or an answer). */
  get pendingEvents(): number {
    let n = 0;
    for (const p of this.pending) n += p.names.length;
    return n;
  }

  /** Job counts of the `thorn` queue. */
  async queueStats(): Promise<ThornQueueStats> {
    const c = (await this.queue.getJobCounts()) as Bull.JobCounts & { paused?: number };
    return {
      waiting: (c.waiting ?? 0) + (c.paused ?? 0),
      active: c.active ?? 0,
      delayed: c.delayed ?? 0,
      failed: c.failed ?? 0,
      completed: c.completed ?? 0,
    };
  }

  /**
   * Drops (and logs) the events still waiting for a Redis connection, lets adds Redis is answering finish (each within
   * `enqueueTimeout`), stops taking jobs, waits for the active ones to finish (up to max(10 s, 3 × timeout)), then
   * disconnects (within `enqueueTimeout`, else the connections are cut). Jobs still running after that keep their Redis
   * lock until it expires, and Bull's stalled-job check hands them to another worker: nothing is lost, some requests
   * may be sent twice (same `Hook-Delivery`).
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.dropPending();
    let finished = true;
    if (this.processing) {
      const limit = Math.max(10_000, 3 * this.options.timeout);
      let timer: NodeJS.Timeout | undefined;
      finished = await Promise.race([
        this.queue.pause(true, false).then(
          () => true,
          () => true,
        ),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), limit))),
      ]);
      clearTimeout(timer);
      if (!finished) {
        this.logger.warn(
          `Bull worker shut down with jobs still running after ${limit} ms: they return to the queue once their lock expires`,
        );
      }
    }
    const closed = await withinMs(this.queue.close(!finished), this.options.enqueueTimeout);
    if (!closed) {
      this.logger.warn(
        `Bull queue "${this.queue.name}" did not close within ${this.options.enqueueTimeout} ms (Redis unreachable?): its connections were cut`,
      );
      for (const client of this.queue.clients) client.disconnect();
    }
  }

  /**
   * Adds to Redis once the queue is connected, all within `enqueueTimeout`: rejects with an error naming the events
   * instead of waiting for Redis forever (Bull would hold the command until Redis comes back).
   */
  private async enqueue<T>(names: string[], add: () => Promise<T>): Promise<T> {
    const label = eventLabel(names);
    if (this.closing) throw new Error(messages.bullClosed(label));
    const ms = this.options.enqueueTimeout;
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
        reject(new Error(messages.bullEnqueueTimeout(label, ms, why)));
      }, ms);
    });
    this.pending.add(entry);
    try {
      await Promise.race([this.connected(), deadline]);
      // dropped at shutdown just as the connection came: never add it then
      if (aborted) await deadline;
      entry.connecting = false;
      const adding = add();
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

  /** Resolves once the queue's Redis client is ready to take commands. */
  private connected(): Promise<void> {
    const client = this.queue.client;
    if (client.status === 'ready') return Promise.resolve();
    this.ready ??= new Promise<void>((resolve) =>
      client.once('ready', () => {
        this.ready = undefined;
        resolve();
      }),
    );
    return this.ready;
  }

  /** The connection's state for error messages (no URL, so no credentials). */
  private connectionState(): string {
    const status = this.queue.client.status;
    return this.lastRedisError ? `${status}; last error: ${this.lastRedisError}` : status;
  }

  /**
   * At shutdown: events still waiting for a connection are dropped now (their `send()` rejects); adds Redis is
   * answering may finish. Whatever was not queued is logged, with the event names.
   */
  private async dropPending(): Promise<void> {
    if (!this.pending.size) return;
    const entries = [...this.pending];
    for (const e of entries) {
      if (e.connecting) e.abort(new Error(messages.bullClosed(eventLabel(e.names))));
    }
    const outcomes = await Promise.all(entries.map((e) => e.done));
    const dropped = entries.filter((_, i) => !outcomes[i]).flatMap((e) => e.names);
    if (dropped.length) this.logger.warn(messages.bullDropped(dropped.length, nameList(dropped)));
  }

  private startWorker(): void {
    this.processing = true;
    this.queue.on('stalled', (job: Bull.Job) =>
      this.logger.warn(`Job ${job.id} (${job.name}) stalled (its worker died or blocked) and is run again`),
    );
    this.queue.on('failed', (job: Bull.Job, err: Error) =>
      this.logger.error(
        `Job ${job.id} (${job.name}) failed (attempt ${job.attemptsMade} of ${job.opts.attempts ?? 1}): ${err.message}`,
      ),
    );
    // resolves only when the queue closes
    this.queue
      .process('*', this.options.concurrency, (job: Bull.Job) => this.run(job))
      .catch((err: unknown) => {
        // closing while Bull still connects rejects with whatever the connection threw: expected then
        if (!this.closing)
          this.logger.error(`Bull worker stopped: ${(err as Error | undefined)?.message ?? err}`);
      });
  }

  private async run(job: Bull.Job): Promise<ThornJobResult> {
    switch (job.name) {
      case JOB.event:
        return this.runEvents(job as Bull.Job<EventJobData>);
      case JOB.chunk:
      case JOB.retry:
        return this.runRequests(fromWire((job as Bull.Job<RequestsJobData>).data, this.options), 0);
      default:
        throw new Error(`Unknown job "${job.name}" on the "${this.queue.name}" queue: it is not a Thorn job`);
    }
  }

  /**
   * Checks an envelope can cross the queue and makes it JSON: only what a worker cannot know itself (see
   * `QueuedEvent`). The event's own subscribers are resolved and signed now, so their secrets stay in this process.
   */
  private async toQueued(env: EventEnvelope): Promise<QueuedEvent> {
    if (env.callbacks) throw new Error(messages.bullCallbacks(env.name));
    if (env.validators) throw new Error(messages.bullValidators(env.name));
    const context = toJsonSafe(env.context, 'context') as Record<string, unknown>;
    const json = this.options.codecs['application/json'];
    if (json) {
      // the worker encodes per content type; fail send() now for a body that can never be sent
      const size = Buffer.byteLength(json(env.body));
      if (size > this.options.maxPayloadSize) {
        throw new PayloadError(messages.payloadTooLarge(env.name, size, this.options.maxPayloadSize));
      }
    }
    // as with the direct dispatcher, a broken per-event subscriber loses only itself
    const recipients = env.subscribers ? await this.recipients.own(env) : undefined;
    const id = randomUUID();
    const overrides = env.overrides && Object.keys(env.overrides).length ? env.overrides : undefined;
    let requests: RequestsJobData | undefined;
    if (recipients?.length) {
      const prepared: QueuedRequest[] = this.delivery.prepare(env, recipients, { idFor: stableIds(id) });
      for (const req of prepared) req.overrides = overrides;
      requests = toWire(prepared);
    }
    return {
      id,
      name: env.name,
      body: env.body,
      sender: env.sender ?? null,
      ...(env.ownerlessOnly ? { ownerlessOnly: true as const } : {}),
      context,
      headers: env.headers,
      ...(overrides ? { overrides } : {}),
      keepAlive: env.keepAlive,
      ...(requests ? { requests } : {}),
    };
  }

  /**
   * An event job: recipients with this worker's database, one signed request each (stable ids), ordered by origin.
   * Up to `chunkSize` requests are delivered right here; more are fanned out as `chunk` jobs, added atomically with
   * ids derived from the event, so a rerun after a crash adds no second copy of a chunk still in Redis.
   */
  private async runEvents(job: Bull.Job<EventJobData>): Promise<ThornJobResult> {
    const requests: QueuedRequest[] = [];
    for (const ev of job.data.events) {
      // static and stored subscribers per this worker's options and database; the event's own came signed
      const recipients = await this.recipients.resolve({
        name: ev.name,
        sender: ev.sender,
        ownerlessOnly: ev.ownerlessOnly,
        context: ev.context,
      });
      const own = ev.requests ? fromWire(ev.requests, this.options) : [];
      if (!recipients.length && !own.length) continue;
      const envelope: EventEnvelope = {
        name: ev.name,
        body: ev.body,
        sender: ev.sender,
        context: ev.context,
        headers: ev.headers,
        settings: resolveDeliverySettings(this.options, ev.overrides),
        overrides: ev.overrides,
        keepAlive: ev.keepAlive,
      };
      // never throws: a recipient whose request cannot be built fails alone
      const prepared: QueuedRequest[] = this.delivery.prepare(envelope, recipients, {
        idFor: stableIds(ev.id),
      });
      for (const req of prepared) req.overrides = ev.overrides;
      requests.push(...prepared, ...own);
    }
    const ordered = byOrigin(requests);
    if (ordered.length <= this.options.chunkSize) return this.runRequests(ordered, 0);
    const chunks = chunked(ordered, this.options.chunkSize);
    const seed = job.data.events[0].id;
    await this.queue.addBulk(
      chunks.map((c, i) => ({ name: JOB.chunk, data: toWire(c), opts: { jobId: `${seed}:${i}` } })),
    );
    return { requests: ordered.length, chunks: chunks.length, ok: 0, retrying: 0, failed: 0 };
  }

  /** Delivers requests side by side (at most `concurrency` in flight per worker); failures become retry jobs. */
  private async runRequests(requests: QueuedRequest[], chunks: number): Promise<ThornJobResult> {
    const result: ThornJobResult = { requests: requests.length, chunks, ok: 0, retrying: 0, failed: 0 };
    await Promise.all(
      requests.map(async (req) => {
        const outcome = await this.limit.run(() => this.delivery.attempt(req));
        result[await this.settle(req, outcome)]++;
      }),
    );
    return result;
  }

  /** Enqueues a delayed retry (same id, headers and body) or logs the final failure. */
  private async settle(req: QueuedRequest, outcome: AttemptOutcome): Promise<'ok' | 'retrying' | 'failed'> {
    if (outcome.verdict.ok) return 'ok';
    const delay = nextRetry(req, outcome.verdict);
    if (delay !== undefined) {
      // the job id makes a rerun of this chunk (after a crash) find the retry already scheduled
      await this.queue.add(JOB.retry, toWire([req]), { jobId: `${req.id}:${req.attempts}`, delay });
      return 'retrying';
    }
    this.logger.warn(
      `Delivery ${req.id} of ${req.event} to ${redactUrl(req.url)} failed after ${req.attempts} attempt(s): ${outcome.error?.message}`,
    );
    return 'failed';
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
function redactCredentials(text: string): string {
  return text.replace(/(\/\/)[^/\s@]*@/g, '$1***@');
}

/** Whether `p` settles within `ms` (its outcome is ignored: used for best-effort shutdown steps). */
async function withinMs(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = p.then(
    () => true,
    () => true,
  );
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}
