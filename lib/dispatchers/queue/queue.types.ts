// Public types shared by the queue dispatchers (bull, bullmq). This file imports nothing: the package root re-exports
// these types, and an app that never uses a queue dispatcher must not need a queue library.

/** Job counts of the `thorn` queue, from `eventService.queueStats()`. */
export interface ThornQueueStats {
  /** Jobs waiting for a worker (paused and, with BullMQ, prioritized jobs included). */
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
