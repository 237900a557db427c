// What the shared queue dispatcher needs from a queue library: one small adapter per library (bull/, bullmq/), each in
// its own lazily imported folder. Types only: nothing here loads a queue library.
import type {
  DeliveriesJobData,
  EventJobData,
  JobName,
  RequestsJobData,
  ThornJobResult,
} from './queue.jobs.js';
import type { ThornQueueStats } from './queue.types.js';

/** A job to add to the `thorn` queue. */
export interface JobToAdd {
  name: JobName;
  data: EventJobData | RequestsJobData | DeliveriesJobData;
  /** Set for chunk and retry jobs: a job id already in Redis is not added again. */
  jobId?: string;
  /** Milliseconds before a worker may take it (retries). */
  delay?: number;
}

/** A job as the worker hands it to the dispatcher. */
export interface TakenJob {
  id: string | undefined;
  name: string;
  data: unknown;
}

/** How the adapter reports what its worker sees. */
export interface WorkerHooks {
  /** Runs one job; its result becomes the job's return value. */
  run(job: TakenJob): Promise<ThornJobResult>;
  /** A job whose worker died or blocked was handed back to the queue. */
  stalled(jobId: string, name?: string): void;
  /** A job threw (attempt `attempt` of `max`). */
  failed(jobId: string | undefined, name: string | undefined, attempt: number, max: number, err: Error): void;
  /** The worker stopped on an error it cannot recover from. */
  stopped(err: unknown): void;
}

export interface QueueAdapter {
  /** The dispatcher's name in errors and logs: `bull`, `bullmq`. */
  readonly kind: string;
  /** The queue library's name in logs: `Bull`, `BullMQ`. */
  readonly library: string;
  /** The queue's name (`thorn`). */
  readonly queueName: string;
  add(job: JobToAdd): Promise<unknown>;
  /** Adds jobs atomically. */
  addBulk(jobs: JobToAdd[]): Promise<unknown>;
  /** Whether the producer connection takes commands now. */
  isReady(): boolean;
  /** Resolves the next time the producer connection becomes ready. */
  whenReady(): Promise<void>;
  /** The producer connection's state for messages (`connecting`, `reconnecting`, …; never a URL). */
  status(): string;
  /** Connection and queue errors (the adapter registers its listeners once). */
  onError(listener: (err: Error) => void): void;
  /** Starts taking jobs, `concurrency` at a time. */
  startWorker(concurrency: number, hooks: WorkerHooks): void;
  counts(): Promise<ThornQueueStats>;
  /** Stops taking jobs; resolves when the running ones have finished (the caller bounds the wait). */
  drain(): Promise<void>;
  /** Closes the worker and the connections; `force`: without waiting for running jobs. */
  close(force: boolean): Promise<void>;
  /** Cuts every connection now. */
  disconnect(): void;
}
