// Public types of the bull dispatcher (its queue stats: ../queue/queue.types.ts). This file must not import `bull` or
// `@nestjs/bull`: the package root re-exports these types, and an app that never uses the bull dispatcher must not need
// those packages.

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
