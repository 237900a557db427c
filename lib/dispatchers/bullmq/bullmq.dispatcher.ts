// Loaded only by `dispatcher: 'bullmq'` (dynamic import from dispatcher.factory.ts): with bullmq.connection.ts, the only
// modules that need `bullmq`. The dispatcher's behaviour is shared with bull (../queue/); this file adapts BullMQ's API.
import type { ModuleRef } from '@nestjs/core';
import { Worker, type Job, type JobsOptions, type Queue, type WorkerOptions } from 'bullmq';
import type { DeliveryService } from '../../delivery/delivery.service.js';
import type { ThornLedger } from '../../ledger/ledger.js';
import type { RecipientResolver } from '../../subscriptions/recipient.resolver.js';
import type { ResolvedThornOptions } from '../../thorn-options.js';
import type { JobToAdd, QueueAdapter, WorkerHooks } from '../queue/queue.adapter.js';
import { QueueDispatcher } from '../queue/queue.dispatcher.js';
import type { ThornQueueStats } from '../queue/queue.types.js';
import { createThornQueue } from './bullmq.connection.js';
import type { ThornBullMQOptions } from './bullmq.types.js';

interface RawClient {
  status: string;
  disconnect(): void;
}

/** The part of BullMQ's Redis backend used here: its connection's events and client. */
interface Backend {
  client: Promise<RawClient>;
  blockingClient?: Promise<RawClient>;
  on(event: 'ready' | 'close', listener: () => void): unknown;
  off(event: 'ready' | 'close', listener: () => void): unknown;
}

/** BullMQ's API as the shared queue dispatcher needs it: a `Queue` to add to, and a `Worker` with `worker: true`. */
class BullMQAdapter implements QueueAdapter {
  readonly kind = 'bullmq';
  readonly library = 'BullMQ';
  worker?: Worker;
  private readonly backend: Backend;
  /** The producer connection's client once BullMQ has set it up (a version check runs after it connects). */
  private client?: { status: string };
  private readonly errorListeners: ((err: Error) => void)[] = [];
  /** Jobs this worker took whose outcome is not written yet. */
  private readonly running = new Set<string | undefined>();
  private idle?: () => void;

  constructor(
    private readonly queue: Queue,
    private readonly workerOptions: WorkerOptions,
  ) {
    this.backend = queue.getBackend() as unknown as Backend;
    this.backend.client.then(
      (c) => (this.client = c),
      // reported through the queue's 'error' event
      () => undefined,
    );
  }

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
    return this.client?.status === 'ready';
  }

  whenReady(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        this.backend.off('ready', done);
        resolve();
      };
      this.backend.on('ready', done);
      // the first 'ready' may have fired while BullMQ still checked the server version
      this.backend.client.then(
        (c) => c.status === 'ready' && done(),
        () => undefined,
      );
    });
  }

  status(): string {
    return this.client?.status ?? 'connecting';
  }

  onError(listener: (err: Error) => void): void {
    this.errorListeners.push(listener);
    this.queue.on('error', listener);
    this.worker?.on('error', listener);
  }

  startWorker(concurrency: number, hooks: WorkerHooks): void {
    const worker = new Worker(
      this.queue.name,
      (job: Job) => {
        this.running.add(job.id);
        return hooks.run({ id: job.id, name: job.name, data: job.data });
      },
      { ...this.workerOptions, concurrency, autorun: true },
    );
    for (const listener of this.errorListeners) worker.on('error', listener);
    worker.on('stalled', (jobId: string) => hooks.stalled(jobId));
    // a job is done for this worker once BullMQ has written its outcome to Redis
    worker.on('completed', (job: Job) => this.done(job));
    worker.on('failed', (job: Job | undefined, err: Error) => {
      if (job) this.done(job);
      hooks.failed(job?.id, job?.name, job?.attemptsMade ?? 0, job?.opts.attempts ?? 1, err);
    });
    this.worker = worker;
  }

  async counts(): Promise<ThornQueueStats> {
    const c = await this.queue.getJobCounts(
      'waiting',
      'prioritized',
      'active',
      'delayed',
      'failed',
      'completed',
    );
    return {
      // BullMQ keeps the jobs of a paused queue in its wait list
      waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      delayed: c.delayed ?? 0,
      failed: c.failed ?? 0,
      completed: c.completed ?? 0,
    };
  }

  /**
   * Stops fetching, then waits for this worker's jobs to run and have their outcome written. (`Worker.pause()` would
   * wait for its connection first, forever while Redis is unreachable.)
   */
  async drain(): Promise<void> {
    if (!this.worker) return;
    await this.worker.pause(true);
    if (this.running.size) await new Promise<void>((resolve) => (this.idle = resolve));
  }

  /** Closes the worker without waiting any longer (`drain()` did), then the queue. */
  async close(): Promise<void> {
    await this.worker?.close(true);
    await this.queue.close();
  }

  disconnect(): void {
    // the clients of connections that were ever ready (the others are cut by close())
    for (const backend of [this.backend, this.worker?.getBackend() as unknown as Backend | undefined]) {
      for (const client of [backend?.client, backend?.blockingClient]) {
        client?.then(
          (c) => c.disconnect(),
          () => undefined,
        );
      }
    }
  }

  private done(job: Job): void {
    this.running.delete(job.id);
    if (!this.running.size) this.idle?.();
  }
}

function options(job: JobToAdd): JobsOptions | undefined {
  if (job.jobId === undefined && job.delay === undefined) return undefined;
  return {
    ...(job.jobId !== undefined ? { jobId: job.jobId } : {}),
    ...(job.delay ? { delay: job.delay } : {}),
  };
}

/**
 * `dispatcher: 'bullmq'`: the shared queue dispatcher (see `QueueDispatcher`) on a BullMQ queue named `thorn`.
 */
export class BullMQDispatcher extends QueueDispatcher {
  private readonly mq: BullMQAdapter;

  constructor(
    /** The `thorn` queue (exposed for monitoring tools such as bull-board). */
    readonly queue: Queue,
    workerOptions: WorkerOptions,
    options: ResolvedThornOptions,
    delivery: DeliveryService,
    recipients: RecipientResolver,
  ) {
    const adapter = new BullMQAdapter(queue, workerOptions);
    super(adapter, options, delivery, recipients);
    this.mq = adapter;
  }

  /** This app's BullMQ worker (`worker: true`), else undefined. */
  get worker(): Worker | undefined {
    return this.mq.worker;
  }

  /** Connects the queue and, unless `worker: false`, starts a BullMQ worker (`concurrency` requests in flight). */
  static async create(
    options: ResolvedThornOptions,
    delivery: DeliveryService,
    recipients: RecipientResolver,
    moduleRef: ModuleRef,
    ledger?: ThornLedger,
  ): Promise<BullMQDispatcher> {
    const { queue, workerOptions } = await createThornQueue(
      options.bullmq as string | ThornBullMQOptions | undefined,
      moduleRef,
    );
    const dispatcher = new BullMQDispatcher(queue, workerOptions, options, delivery, recipients);
    dispatcher.useLedger(ledger);
    if (options.worker) dispatcher.startWorker();
    return dispatcher;
  }
}
