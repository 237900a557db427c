// Public types of the bull dispatcher. This file must not import `bull` or `@nestjs/bull`: the package root
// re-exports these types, and an app that never uses the bull dispatcher must not need those packages.

/** Job counts of the `thorn` queue, from `eventService.queueStats()`. */
export interface ThornQueueStats {
  /** Jobs waiting for a worker (paused jobs included). */
  waiting: number;
  /** Jobs a worker is running now. */
  active: number;
  /** Jobs scheduled for later: retries waiting for their delay. */
  delayed: number;
  /** Jobs that threw after all their attempts (e.g. the database was down); deliveries that failed are not jobs that failed. */
  failed: number;
  /** Finished jobs still kept in Redis (the most recent 1,000 by default). */
  completed: number;
}

/**
 * The `bull` option as an object: Bull queue options (`redis`, `prefix`, `settings`, `limiter`, `defaultJobOptions`,
 * `createClient`, …) plus an optional Redis `url`, the same shape as `BullModule.forRoot()` takes.
 */
export interface ThornBullOptions {
  /** Redis connection string, e.g. `redis://127.0.0.1:6379/0`. */
  url?: string;
  /** Prefix of every Redis key (Bull's default: `bull`). */
  prefix?: string;
  [option: string]: unknown;
}
