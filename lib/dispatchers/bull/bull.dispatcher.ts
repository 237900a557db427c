// Loaded only by `dispatcher: 'bull'` (dynamic import from dispatcher.factory.ts): the one module that needs `bull`.
// The dispatcher's behaviour is shared with bullmq (../queue/); this file only adapts Bull's API to it.
import type { ModuleRef } from '@nestjs/core';
import type Bull from 'bull';
import type { DeliveryService } from '../../delivery/delivery.service.js';
import type { ThornLedger } from '../../ledger/ledger.js';
import type { RecipientResolver } from '../../subscriptions/recipient.resolver.js';
import type { ResolvedThornOptions } from '../../thorn-options.js';
import type { JobToAdd, QueueAdapter, WorkerHooks } from '../queue/queue.adapter.js';
import { QueueDispatcher } from '../queue/queue.dispatcher.js';
import type { ThornQueueStats } from '../queue/queue.types.js';
import { createThornQueue } from './bull.connection.js';
import type { ThornBullOptions } from './bull.types.js';

/** Bull's API as the shared queue dispatcher needs it. */
class BullAdapter implements QueueAdapter {
  readonly kind = 'bull';
  readonly library = 'Bull';
  /** Resolves when the queue's Redis client is ready (while it is not). */
  private ready?: Promise<void>;

  constructor(private readonly queue: Bull.Queue) {}

  get queueName(): string {
    return this.queue.name;
  }

  add(job: JobToAdd): Promise<unknown> {
    return this.queue.add(job.name, job.data, options(job));
  }

  addBulk(jobs: JobToAdd[]): Promise<unknown> {
    return this.queue.addBulk(jobs.map((j) => ({ name: j.name, data: j.data, opts: options(j) })));
  }

  isReady(): boolean {
    return this.queue.client.status === 'ready';
  }

  whenReady(): Promise<void> {
    this.ready ??= new Promise<void>((resolve) =>
      this.queue.client.once('ready', () => {
        this.ready = undefined;
        resolve();
      }),
    );
    return this.ready;
  }

  status(): string {
    return this.queue.client.status;
  }

  onError(listener: (err: Error) => void): void {
    this.queue.on('error', listener);
  }

  startWorker(concurrency: number, hooks: WorkerHooks): void {
    this.queue.on('stalled', (job: Bull.Job) => hooks.stalled(String(job.id), job.name));
    this.queue.on('failed', (job: Bull.Job, err: Error) =>
      hooks.failed(String(job.id), job.name, job.attemptsMade, job.opts.attempts ?? 1, err),
    );
    // resolves only when the queue closes
    this.queue
      .process('*', concurrency, (job: Bull.Job) =>
        hooks.run({ id: String(job.id), name: job.name, data: job.data }),
      )
      .catch((err: unknown) => hooks.stopped(err));
  }

  async counts(): Promise<ThornQueueStats> {
    const c = (await this.queue.getJobCounts()) as Bull.JobCounts & { paused?: number };
    return {
      waiting: (c.waiting ?? 0) + (c.paused ?? 0),
      active: c.active ?? 0,
      delayed: c.delayed ?? 0,
      failed: c.failed ?? 0,
      completed: c.completed ?? 0,
    };
  }

  drain(): Promise<void> {
    // local pause: this worker takes no new job; resolves once its active jobs have finished
    return this.queue.pause(true, false);
  }

  close(force: boolean): Promise<void> {
    return this.queue.close(force);
  }

  disconnect(): void {
    for (const client of this.queue.clients) client.disconnect();
  }
}

function options(job: JobToAdd): Bull.JobOptions | undefined {
  if (job.jobId === undefined && job.delay === undefined) return undefined;
  return {
    ...(job.jobId !== undefined ? { jobId: job.jobId } : {}),
    ...(job.delay ? { delay: job.delay } : {}),
  };
}

/**
 * `dispatcher: 'bull'`: the shared queue dispatcher (see `QueueDispatcher`) on a Bull queue named `thorn`.
 */
export class BullDispatcher extends QueueDispatcher {
  constructor(
    /** The `thorn` queue (exposed for monitoring tools such as bull-board). */
    readonly queue: Bull.Queue,
    options: ResolvedThornOptions,
    delivery: DeliveryService,
    recipients: RecipientResolver,
  ) {
    super(new BullAdapter(queue), options, delivery, recipients);
  }

  /** Connects the queue and, unless `worker: false`, starts processing jobs (`concurrency` requests in flight). */
  static async create(
    options: ResolvedThornOptions,
    delivery: DeliveryService,
    recipients: RecipientResolver,
    moduleRef: ModuleRef,
    ledger?: ThornLedger,
  ): Promise<BullDispatcher> {
    const queue = await createThornQueue(options.bull as string | ThornBullOptions | undefined, moduleRef);
    const dispatcher = new BullDispatcher(queue, options, delivery, recipients);
    dispatcher.useLedger(ledger);
    if (options.worker) dispatcher.startWorker();
    return dispatcher;
  }
}
