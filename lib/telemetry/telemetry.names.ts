/**
 * Names of the OpenTelemetry metrics and attributes nestjs-thorn emits (instrumentation scope `nestjs-thorn`), for
 * dashboards and alerts. The README's Operations section lists what each one means.
 */
export const THORN_TELEMETRY = {
  metrics: {
    /** Counter `{event}`: events sent (attribute `thorn.event.name`). */
    events: 'thorn.events',
    /** Counter `{delivery}`: deliveries by final outcome (`thorn.event.name`, `thorn.outcome`). */
    deliveries: 'thorn.deliveries',
    /** Histogram `s`: one attempt's duration (`thorn.event.name`, `thorn.outcome`, `http.response.status_code`, `error.type`). */
    attemptDuration: 'thorn.delivery.attempt.duration',
    /** Observable gauge `{job}`: bull or bullmq queue jobs by state (`thorn.queue.state`). */
    queueJobs: 'thorn.queue.jobs',
    /** Observable gauge `ms`: age of the most overdue pending delivery in the ledger (0: none is overdue). */
    ledgerBacklogAge: 'thorn.ledger.backlog.age',
    /** Observable gauge `{delivery}`: due deliveries in the ledger, counted up to 10000 (`LEDGER_BACKLOG_COUNT_CAP`). */
    ledgerBacklogDue: 'thorn.ledger.backlog.due',
  },
  attributes: {
    event: 'thorn.event.name',
    delivery: 'thorn.delivery.id',
    subscription: 'thorn.subscription.id',
    outcome: 'thorn.outcome',
    deliveryCount: 'thorn.deliveries',
    failedCount: 'thorn.deliveries.failed',
    queued: 'thorn.queued',
    buffered: 'thorn.buffered',
    queueState: 'thorn.queue.state',
  },
} as const;

/** `thorn.ledger.backlog.due` counts at most this many rows per collection (a bounded index scan): more reads as this. */
export const LEDGER_BACKLOG_COUNT_CAP = 10_000;
