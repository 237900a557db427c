// Public types of the bullmq dispatcher. This file must not import `bullmq` or `@nestjs/bullmq`: the package root
// re-exports these types, and an app that never uses the bullmq dispatcher must not need those packages.

/**
 * The `bullmq` option as an object: BullMQ queue options (`connection`, `prefix`, `defaultJobOptions`, `streams`, …),
 * the same shape as `BullModule.forRoot()` of `@nestjs/bullmq` takes, plus an optional Redis `url` and the options of
 * this app's worker.
 */
export interface ThornBullMQOptions {
  /** Redis connection string, e.g. `redis://127.0.0.1:6379/0` (shorthand for `connection: { url }`). */
  url?: string;
  /** ioredis options (`host`, `port`, `password`, `tls`, `url`, …) or an ioredis instance to share. */
  connection?: Record<string, unknown>;
  /** Prefix of every Redis key (BullMQ's default: `bull`). */
  prefix?: string;
  /**
   * Options of the BullMQ `Worker` this app runs with `worker: true` (`lockDuration`, `stalledInterval`,
   * `maxStalledCount`, …). Its `concurrency` is the module's `concurrency` option.
   */
  workerOptions?: Record<string, unknown>;
  [option: string]: unknown;
}
