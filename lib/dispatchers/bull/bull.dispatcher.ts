// Loaded only by `dispatcher: 'bull'` (dynamic import from dispatcher.factory.ts): the one module that needs `bull`.
import { redactUrl } from '../../delivery/io.js';
import { ConcurrencyLimit } from '../concurrency-limit.js';
import { Logger } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import type Bull from 'bull';
import { randomUUID } from 'node:crypto';
import type { AttemptOutcome, DeliveryService } from '../../delivery/delivery.service.js';
import { retryDelayFor } from '../../delivery/retry.js';
import type { DeliveryRequest, EventEnvelope, SendResult } from '../../events/envelope.js';
import { PayloadError, toJsonSafe } from '../../events/payload.js';
import { messages } from '../../messages.js';
import { resolveSubscribers } from '../../subscriptions/static-subscribers.js';
import type { ResolvedThornOptions } from '../../thorn-options.js';
import type { Dispatcher } from '../dispatcher.js';
import { createThornQueue } from './bull.connection.js';
import {
  byOrigin,
  chunked,
  fromWire,
  JOB,
  toWire,
  useStableIds,
  type EventJobData,
  type QueuedEvent,
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

  constructor(
    /** The `thorn` queue (exposed for monitoring tools such as bull-board). */
    readonly queue: Bull.Queue,
    private readonly options: ResolvedThornOptions,
    private readonly delivery: DeliveryService,
  ) {
    this.limit = new ConcurrencyLimit(options.concurrency);
    queue.on('error', (err: Error) => this.logger.error(`Bull queue "${queue.name}": ${err.message}`));
  }

  /** Connects the queue and, unless `worker: false`, starts processing jobs (`concurrency` requests in flight). */
  static async create(
    options: ResolvedThornOptions,
    delivery: DeliveryService,
    moduleRef: ModuleRef,
  ): Promise<BullDispatcher> {
    const queue = await createThornQueue(options.bull as string | ThornBullOptions | undefined, moduleRef);
    const dispatcher = new BullDispatcher(queue, options, delivery);
    if (options.worker) dispatcher.startWorker();
    return dispatcher;
  }

  async dispatch(envelope: EventEnvelope): Promise<SendResult> {
    const data: EventJobData = { events: [await this.toQueued(envelope)] };
    await this.queue.add(JOB.event, data);
    return { event: envelope.name, deliveries: [], queued: true };
  }

  /** A buffer flush: the events go in `event` jobs of up to `chunkSize` events each, added atomically. */
  async dispatchMany(envelopes: EventEnvelope[]): Promise<SendResult[]> {
    const settled = await Promise.allSettled(envelopes.map((e) => this.toQueued(e)));
    const queued = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    if (queued.length) {
      await this.queue.addBulk(
        chunked(queued, this.options.chunkSize).map((events) => ({
          name: JOB.event,
          data: { events } satisfies EventJobData,
        })),
      );
    }
    // like the direct dispatcher: the valid events are sent, the first invalid one is reported
    const rejected = settled.find((s) => s.status === 'rejected');
    if (rejected) throw (rejected as PromiseRejectedResult).reason;
    return envelopes.map((e) => ({ event: e.name, deliveries: [], queued: true }));
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
   * Stops taking jobs, waits for the active ones to finish (up to max(10 s, 3 × timeout)), then disconnects. Jobs
   * still running after that keep their Redis lock until it expires, and Bull's stalled-job check hands them to
   * another worker: nothing is lost, some requests may be sent twice (same `Hook-Delivery`).
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
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
    await this.queue.close(!finished);
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
        return this.runRequests(fromWire((job as Bull.Job<RequestsJobData>).data), 0);
      default:
        throw new Error(`Unknown job "${job.name}" on the "${this.queue.name}" queue: it is not a Thorn job`);
    }
  }

  /** Checks an envelope can cross the queue and makes it JSON; resolves the event's own subscribers now. */
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
    const recipients = env.subscribers
      ? await resolveSubscribers(
          env.subscribers,
          env.name,
          { ...env.context, sender: env.sender ?? undefined },
          {
            defaultHmacSecret: this.options.defaultHmacSecret,
            source: 'event',
            // as with the direct dispatcher, a broken per-event subscriber loses only itself
            onError: (pattern, err) =>
              this.logger.error(
                `Subscriber for "${pattern}" skipped for ${env.name}: ${(err as Error)?.message ?? err}`,
              ),
          },
        )
      : undefined;
    return {
      id: randomUUID(),
      name: env.name,
      body: env.body,
      sender: env.sender ?? null,
      ...(env.ownerlessOnly ? { ownerlessOnly: true as const } : {}),
      context,
      headers: env.headers,
      settings: env.settings,
      keepAlive: env.keepAlive,
      ...(recipients?.length ? { recipients } : {}),
    };
  }

  /**
   * An event job: recipients with this worker's database, one signed request each (stable ids), ordered by origin.
   * Up to `chunkSize` requests are delivered right here; more are fanned out as `chunk` jobs, added atomically with
   * ids derived from the event, so a rerun after a crash adds no second copy of a chunk still in Redis.
   */
  private async runEvents(job: Bull.Job<EventJobData>): Promise<ThornJobResult> {
    const requests: DeliveryRequest[] = [];
    for (const ev of job.data.events) {
      const recipients = [
        ...(await this.delivery.recipients({
          name: ev.name,
          sender: ev.sender,
          ownerlessOnly: ev.ownerlessOnly,
          context: ev.context,
        })),
        ...(ev.recipients ?? []),
      ];
      if (!recipients.length) continue;
      const envelope: EventEnvelope = {
        name: ev.name,
        body: ev.body,
        sender: ev.sender,
        context: ev.context,
        headers: ev.headers,
        settings: ev.settings,
        keepAlive: ev.keepAlive,
      };
      let prepared: DeliveryRequest[];
      try {
        prepared = this.delivery.prepare(envelope, recipients);
      } catch (err) {
        if (!(err instanceof PayloadError)) throw err;
        this.logger.error(`Event ${ev.name} (${ev.id}) dropped: ${err.message}`);
        continue;
      }
      useStableIds(ev.id, prepared, recipients);
      requests.push(...prepared);
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
  private async runRequests(requests: DeliveryRequest[], chunks: number): Promise<ThornJobResult> {
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
  private async settle(req: DeliveryRequest, outcome: AttemptOutcome): Promise<'ok' | 'retrying' | 'failed'> {
    const { verdict } = outcome;
    if (verdict.ok) return 'ok';
    const retriesDone = req.attempts - 1;
    if (verdict.retryable && req.settings.retry && retriesDone < req.settings.retryMax) {
      const delay = retryDelayFor(req.settings, retriesDone + 1, verdict.retryAfter);
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
