// The queue dispatchers' shared behaviour (bull/, bullmq/): what an event becomes in Redis, what a worker does with a
// job, bounded enqueue and a bounded shutdown. The queue library hides behind a `QueueAdapter`; nothing here imports one.
import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import {
  deliveryFailedLog,
  type AttemptOutcome,
  type DeliveryService,
} from '../../delivery/delivery.service.js';
import { nextRetry } from '../../delivery/retry.js';
import type { EventEnvelope, SendResult } from '../../events/envelope.js';
import type { ThornLedger } from '../../ledger/ledger.js';
import type { LedgerWork } from '../../ledger/ledger.relay.js';
import type { Claim } from '../../ledger/ledger.store.js';
import { PayloadError, toJsonSafe } from '../../events/payload.js';
import { messages } from '../../messages.js';
import type { Recipient } from '../../subscriptions/recipient.js';
import type { RecipientResolver } from '../../subscriptions/recipient.resolver.js';
import { resolveDeliverySettings, type ResolvedThornOptions } from '../../thorn-options.js';
import { ConcurrencyLimit } from '../../delivery/concurrency-limit.js';
import { logError, logLine } from '../../telemetry/log-fields.js';
import { activeTraceparent, underTraceparent } from '../../telemetry/telemetry.js';
import type { Dispatcher } from '../dispatcher.js';
import { EnqueueCoalescer } from './enqueue-coalescer.js';
import { EnqueueGate } from './enqueue-gate.js';
import type { QueueAdapter, TakenJob } from './queue.adapter.js';
import {
  byOrigin,
  chunked,
  chunkJobId,
  fromWire,
  JOB,
  retryJobId,
  stableIds,
  toWire,
  type DeliveriesJobData,
  type EventJobData,
  type QueuedEvent,
  type QueuedRequest,
  type RequestsJobData,
  type ThornJobResult,
} from './queue.jobs.js';
import type { ThornQueueStats } from './queue.types.js';

/**
 * A dispatcher over a Redis queue: `send()` enqueues its event on the `thorn` queue (the events sent in one event-loop
 * turn together: `event` jobs of up to `chunkSize` events, one add); workers (this app with
 * `worker: true`, and/or other processes of it) resolve recipients, sign one request per recipient, order them by
 * origin and deliver them in chunks of `chunkSize`. A failed request becomes its own delayed `retry` job.
 */
export class QueueDispatcher implements Dispatcher {
  protected readonly logger = new Logger('Thorn');
  private readonly limit: ConcurrencyLimit;
  private readonly gate: EnqueueGate;
  private readonly coalescer: EnqueueCoalescer;
  private closing?: Promise<void>;
  private processing = false;
  /** With the ledger: it relays into this queue, and `deliveries` jobs run through its deliverer. */
  private ledger?: ThornLedger;
  /** Claimed deliveries believed waiting in Redis (ledger), refreshed from the queue's counts. */
  private queued = 0;
  private queuedCheckedAt = 0;
  /** Delay before claimed deliveries Redis refused are claimed again (doubles while Redis stays away). */
  private enqueueBackoff = 0;

  constructor(
    private readonly adapter: QueueAdapter,
    private readonly options: ResolvedThornOptions,
    private readonly delivery: DeliveryService,
    private readonly recipients: RecipientResolver,
  ) {
    this.limit = new ConcurrencyLimit(options.concurrency);
    this.gate = new EnqueueGate(adapter, options.enqueueTimeout, this.logger);
    this.coalescer = new EnqueueCoalescer(this.gate, (events) => this.addEvents(events));
  }

  /**
   * Checks and converts the event now (an invalid one rejects alone, in the caller's trace context), then enqueues it
   * with the other events sent in this event-loop turn (`EnqueueCoalescer`): resolves once Redis has its job.
   */
  async dispatch(envelope: EventEnvelope): Promise<SendResult> {
    await this.coalescer.enqueue(await this.toQueued(envelope));
    return { event: envelope.name, deliveries: [], queued: true };
  }

  /** A buffer flush: the events go in `event` jobs of up to `chunkSize` events each, added atomically. */
  async dispatchMany(envelopes: EventEnvelope[]): Promise<SendResult[]> {
    const settled = await Promise.allSettled(envelopes.map((e) => this.toQueued(e)));
    const queued = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    if (queued.length) {
      await this.gate.enqueue(
        queued.map((e) => e.name),
        () => this.addEvents(queued),
      );
    }
    // like the direct dispatcher: the valid events are sent, the first invalid one is reported
    const rejected = settled.find((s) => s.status === 'rejected');
    if (rejected) throw (rejected as PromiseRejectedResult).reason;
    return envelopes.map((e) => ({ event: e.name, deliveries: [], queued: true }));
  }

  /** Events handed to `send()` that Redis has not accepted yet (waiting for this turn to end, a connection or an answer). */
  get pendingEvents(): number {
    return this.coalescer.size + this.gate.pendingEvents;
  }

  /** Job counts of the `thorn` queue. */
  queueStats(): Promise<ThornQueueStats> {
    return this.adapter.counts();
  }

  /**
   * Drops (and logs) the events still waiting for a Redis connection, lets adds Redis is answering finish (each within
   * `enqueueTimeout`), stops taking jobs, waits for the active ones to finish (up to max(10 s, 3 × timeout)), then
   * disconnects (within `enqueueTimeout`, else the connections are cut). Jobs still running after that keep their Redis
   * lock until it expires, and the stalled-job check hands them to another worker: nothing is lost, some requests
   * may be sent twice (same `Hook-Delivery`).
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /**
   * Ledger mode: the ledger's relay hands claimed deliveries to this queue as `deliveries` jobs (ids only), at most
   * 4 × `ledger.batchSize` deliveries waiting in Redis at a time; workers attempt them through the ledger.
   */
  protected useLedger(ledger: ThornLedger | undefined): void {
    if (!ledger) return;
    this.ledger = ledger;
    ledger.start({
      spare: () => this.ledgerRoom(ledger),
      take: (work, claim) => this.enqueueClaimed(ledger, work, claim),
    });
  }

  /**
   * How many more claimed deliveries may go to Redis now: at most 4 × batchSize waiting. This process's worker lowers
   * the estimate as it finishes jobs; the queue's counts (other processes' workers) correct it every 200 ms at most,
   * and wake the relay when room appears.
   */
  private ledgerRoom(ledger: ThornLedger): number {
    const limit = 4 * ledger.options.ledger.batchSize;
    const now = Date.now();
    if (now - this.queuedCheckedAt >= Math.min(200, ledger.options.ledger.pollInterval)) {
      this.queuedCheckedAt = now;
      this.adapter.counts().then(
        (c) => {
          const before = this.queued;
          this.queued = (c.waiting + c.active) * this.options.chunkSize;
          if (before >= limit && this.queued < limit) ledger.relay.kick();
        },
        () => undefined,
      );
    }
    return this.closing || this.enqueueBackoff ? 0 : Math.max(0, limit - this.queued);
  }

  /** Enqueues claimed deliveries, chunkSize ids a job; when Redis refuses, they are claimed again after a backoff. */
  private enqueueClaimed(ledger: ThornLedger, work: LedgerWork[], claim: Claim): void {
    const ids = work.map((w) => w.row.id);
    this.queued += ids.length;
    const jobs = chunked(ids, this.options.chunkSize).map((chunk) => ({
      name: JOB.deliveries,
      data: { ids: chunk, claim: claim.token } satisfies DeliveriesJobData,
    }));
    const names = [...new Set(work.map((w) => w.row.event))];
    this.gate
      .enqueue(names, () => this.adapter.addBulk(jobs))
      .then(
        () => (this.enqueueBackoff = 0),
        async (err: unknown) => {
          this.queued -= ids.length;
          this.enqueueBackoff = Math.min(Math.max(2 * this.enqueueBackoff, 1000), 60_000);
          this.logger.warn(
            logLine(
              `${ids.length} deliveries wait in the ledger: ${logError(err)} (claimed again in ${this.enqueueBackoff} ms)`,
              { event: names, delivery: ids },
            ),
          );
          const backoff = this.enqueueBackoff;
          await ledger.store.release(ids, claim.token, Date.now() + backoff).catch(() => undefined);
          // try again after the backoff, or as soon as the connection is back, whichever comes first
          const retry = () => {
            clearTimeout(timer);
            if (this.enqueueBackoff !== backoff) return;
            this.enqueueBackoff = 0;
            void ledger.store
              .release(ids, claim.token)
              .catch(() => undefined)
              .then(() => ledger.relay.dueAt(Date.now()));
          };
          const timer = setTimeout(retry, backoff);
          timer.unref();
          if (!this.adapter.isReady()) void this.adapter.whenReady().then(retry, () => undefined);
        },
      );
  }

  /** Starts taking jobs, `concurrency` at a time (`worker: true`). */
  protected startWorker(): void {
    this.processing = true;
    const library = this.adapter.library;
    this.adapter.startWorker(this.options.concurrency, {
      run: (job) => this.run(job),
      stalled: (id, name) =>
        this.logger.warn(
          logLine(`A ${name ?? 'thorn'} job stalled (its worker died or blocked) and is run again`, {
            job: id,
          }),
        ),
      failed: (id, name, attempt, max, err) =>
        this.logger.error(
          logLine(`A ${name} job failed (attempt ${attempt} of ${max}): ${logError(err)}`, { job: id }),
        ),
      stopped: (err) => {
        // closing while the library still connects rejects with whatever the connection threw: expected then
        if (!this.closing) this.logger.error(`${library} worker stopped: ${logError(err)}`);
      },
    });
  }

  private async shutdown(): Promise<void> {
    // this turn's events go to Redis now (or, not connected, are dropped and logged by the gate with the others)
    this.coalescer.flush();
    await this.gate.close();
    let finished = true;
    if (this.processing) {
      const limit = Math.max(10_000, 3 * this.options.timeout);
      finished = await withinMs(this.adapter.drain(), limit);
      if (!finished) {
        this.logger.warn(
          `${this.adapter.library} worker shut down with jobs still running after ${limit} ms: they return to the queue once their lock expires`,
        );
      }
    }
    const closed = await withinMs(this.adapter.close(!finished), this.options.enqueueTimeout);
    if (!closed) {
      this.logger.warn(
        `${this.adapter.library} queue "${this.adapter.queueName}" did not close within ${this.options.enqueueTimeout} ms (Redis unreachable?): its connections were cut`,
      );
      this.adapter.disconnect();
    }
  }

  private async run(job: TakenJob): Promise<ThornJobResult> {
    switch (job.name) {
      case JOB.event:
        return this.runEvents(job.data as EventJobData);
      case JOB.chunk:
      case JOB.retry:
        return this.runRequests(fromWire(job.data as RequestsJobData, this.options), 0);
      case JOB.deliveries:
        return this.runDeliveries(job.data as DeliveriesJobData);
      default:
        throw new Error(
          `Unknown job "${job.name}" on the "${this.adapter.queueName}" queue: it is not a Thorn job`,
        );
    }
  }

  /** Events in `event` jobs of up to `chunkSize` events each, added atomically (one add for a single job). */
  private addEvents(events: QueuedEvent[]): Promise<unknown> {
    const jobs = chunked(events, this.options.chunkSize).map((chunk) => ({
      name: JOB.event,
      data: { events: chunk } satisfies EventJobData,
    }));
    return jobs.length === 1 ? this.adapter.add(jobs[0]) : this.adapter.addBulk(jobs);
  }

  /**
   * Checks an envelope can cross the queue and makes it JSON: only what a worker cannot know itself (see
   * `QueuedEvent`). The event's own subscribers are resolved and signed now, so their secrets stay in this process.
   */
  private async toQueued(env: EventEnvelope): Promise<QueuedEvent> {
    if (env.callbacks) throw new Error(messages.queueCallbacks(this.adapter.kind, env.name));
    if (env.validators) throw new Error(messages.queueValidators(this.adapter.kind, env.name));
    const context = toJsonSafe(env.context, 'context') as Record<string, unknown>;
    const json = this.options.codecs['application/json'];
    if (json) {
      // the worker encodes per content type; fail send() now for a body that can never be sent
      const size = Buffer.byteLength(json(env.body));
      if (size > this.options.maxPayloadSize) {
        throw new PayloadError(messages.payloadTooLarge(env.name, size, this.options.maxPayloadSize));
      }
    }
    const recipients = env.subscribers ? await this.ownRecipients(env) : undefined;
    const id = randomUUID();
    // the send span (the caller's context): the worker's attempts become its children
    const traceparent = activeTraceparent();
    const overrides = env.overrides && Object.keys(env.overrides).length ? env.overrides : undefined;
    let requests: RequestsJobData | undefined;
    if (recipients?.length) {
      const prepared: QueuedRequest[] = this.delivery.prepare(env, recipients, { idFor: stableIds(id) });
      for (const req of prepared) {
        req.overrides = overrides;
        req.traceparent = traceparent;
      }
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
      ...(traceparent ? { traceparent } : {}),
    };
  }

  /**
   * Recipients resolution, producer side: the event's own `subscribers` (only the producer knows them). As with the
   * direct dispatcher, a broken per-event subscriber loses only itself.
   */
  private ownRecipients(env: EventEnvelope): Promise<Recipient[]> {
    return this.recipients.own(env);
  }

  /** Recipients resolution, worker side: static and stored subscribers per this worker's options and database. */
  private async workerRecipients(ev: QueuedEvent): Promise<Recipient[]> {
    return this.recipients.recipientsOf({
      name: ev.name,
      sender: ev.sender,
      ownerlessOnly: ev.ownerlessOnly,
      context: ev.context,
    });
  }

  /**
   * An event job: recipients with this worker's database, one signed request each (stable ids), ordered by origin.
   * Up to `chunkSize` requests are delivered right here; more are fanned out as `chunk` jobs, added atomically with
   * ids derived from the event, so a rerun after a crash adds no second copy of a chunk still in Redis.
   */
  private async runEvents(data: EventJobData): Promise<ThornJobResult> {
    const requests: QueuedRequest[] = [];
    for (const ev of data.events) {
      // the event's own subscribers came signed
      const recipients = await this.workerRecipients(ev);
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
      for (const req of prepared) {
        req.overrides = ev.overrides;
        req.traceparent = ev.traceparent;
      }
      requests.push(...prepared, ...own);
    }
    const ordered = byOrigin(requests);
    if (ordered.length <= this.options.chunkSize) return this.runRequests(ordered, 0);
    const chunks = chunked(ordered, this.options.chunkSize);
    const seed = data.events[0].id;
    await this.adapter.addBulk(
      chunks.map((c, i) => ({ name: JOB.chunk, data: toWire(c), jobId: chunkJobId(seed, i) })),
    );
    return { requests: ordered.length, chunks: chunks.length, ok: 0, retrying: 0, failed: 0 };
  }

  /** A ledger `deliveries` job: attempted through the ledger's deliverer, which reads and writes the database. */
  private async runDeliveries(data: DeliveriesJobData): Promise<ThornJobResult> {
    if (!this.ledger) {
      throw new Error(
        `A "deliveries" job reached a worker without the ledger: turn the ledger on in every process of this app`,
      );
    }
    try {
      const counts = await this.ledger.deliverer.runClaimed(data.ids, data.claim);
      return { requests: data.ids.length, chunks: 0, ...counts };
    } finally {
      // room in Redis for more: the relay may claim again
      this.queued = Math.max(0, this.queued - data.ids.length);
      this.ledger.relay.kick();
    }
  }

  /** Delivers requests side by side (at most `concurrency` in flight per worker); failures become retry jobs. */
  private async runRequests(requests: QueuedRequest[], chunks: number): Promise<ThornJobResult> {
    const result: ThornJobResult = { requests: requests.length, chunks, ok: 0, retrying: 0, failed: 0 };
    await Promise.all(
      requests.map(async (req) => {
        // under the send's span (carried by the job), whatever context the queue library runs jobs in
        const outcome = await this.limit.run(() =>
          underTraceparent(req.traceparent, () => this.delivery.attempt(req)),
        );
        result[await this.settle(req, outcome)]++;
      }),
    );
    return result;
  }

  /**
   * Enqueues a delayed retry (same id and body; signed afresh when it runs), or ends the delivery
   * (`DeliveryService.finished()`) and logs a final failure.
   */
  private async settle(req: QueuedRequest, outcome: AttemptOutcome): Promise<'ok' | 'retrying' | 'failed'> {
    if (outcome.verdict.ok) {
      await this.delivery.finished(req, outcome);
      return 'ok';
    }
    const delay = nextRetry(req, outcome.verdict);
    if (delay !== undefined) {
      // the job id makes a rerun of this chunk (after a crash) find the retry already scheduled
      await this.adapter.add({ name: JOB.retry, data: toWire([req]), jobId: retryJobId(req), delay });
      return 'retrying';
    }
    this.logger.warn(deliveryFailedLog(req, outcome));
    await this.delivery.finished(req, outcome);
    return 'failed';
  }
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
