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
