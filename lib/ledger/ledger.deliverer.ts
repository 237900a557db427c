import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { ConcurrencyLimit } from '../delivery/concurrency-limit.js';
import { deliveryFailedLog, type DeliveryService } from '../delivery/delivery.service.js';
import { redactUrl } from '../delivery/io.js';
import type { DeliveryRequest, Recipient } from '../delivery/request.js';
import { nextRetry } from '../delivery/retry.js';
import type { RecipientResolver } from '../subscriptions/recipient.resolver.js';
import type { SubscriptionStore } from '../subscriptions/subscription.store.js';
import { logError, logLine, type LogIds } from '../telemetry/log-fields.js';
import { underTraceparent } from '../telemetry/telemetry.js';
import type { ResolvedThornOptions } from '../thorn-options.js';
import { fromRecord, type LedgerEvent } from './ledger.event.js';
import type { LedgerRelay, LedgerSink, LedgerWork } from './ledger.relay.js';
import { cutBody, type Claim, type LedgerStore } from './ledger.store.js';
import type { AttemptRecord, ClaimedDelivery, ResolvedLedgerOptions } from './ledger.types.js';

/** How the deliverer's attempts of one batch ended. */
export interface DeliveredCounts {
  ok: number;
  retrying: number;
  failed: number;
}

/** A delivery ready to attempt, or why it can't be (its subscription or event is gone). */
type Ready =
  | { row: ClaimedDelivery; request: DeliveryRequest; traceparent?: string }
  | { row: ClaimedDelivery; cancelled: string };

// a claim this close to its end is left to expire (another process takes it) rather than attempted
const CLAIM_MARGIN = 1000;

/**
 * Attempts claimed deliveries in this process, at most `concurrency` requests at a time, and writes each attempt
 * and the delivery's new state to the ledger (batched: one statement per batch). A delivery's request is built from
 * the ledger: the event's body and headers, and the subscription's CURRENT URL and secret (static subscribers:
 * the module's `subscribers` option), signed under the delivery id, so `Hook-Delivery` is the same on every attempt,
 * from any process, after any crash. The direct dispatcher uses it as the relay's sink; queue workers run their
 * jobs' deliveries through it.
 */
export class LedgerDeliverer implements LedgerSink {
  private readonly logger = new Logger('Thorn');
  private readonly limit: ConcurrencyLimit;
  private readonly options: ResolvedLedgerOptions;
  /** Taken deliveries not yet attempted and written. */
  private inflight = 0;
  private readonly capacity: number;
  private readonly kickEvery: number;
  private readonly running = new Set<Promise<unknown>>();
  private pending: AttemptRecord[] = [];
  private flushing?: Promise<void>;
  private flushScheduled = false;
  private retryTimer?: NodeJS.Timeout;
  private closed = false;
  private lastError = 0;

  constructor(
    private readonly thorn: ResolvedThornOptions & { ledger: ResolvedLedgerOptions },
    private readonly store: LedgerStore,
    private readonly relay: LedgerRelay,
    private readonly delivery: DeliveryService,
    private readonly recipients: RecipientResolver,
    private readonly subscriptions: SubscriptionStore | null,
  ) {
    this.options = thorn.ledger;
    this.limit = new ConcurrencyLimit(thorn.concurrency);
    this.capacity = Math.max(4 * this.options.batchSize, 2 * thorn.concurrency);
    this.kickEvery = Math.max(1, Math.floor(this.capacity / 4));
  }

  spare(): number {
    return this.closed ? 0 : this.capacity - this.inflight;
  }

  take(work: LedgerWork[], claim: Claim): void {
    this.track(this.deliver(work, claim));
  }

  /**
   * A queue job: takes over, under a claim of its own, the deliveries the job's claim still holds (those another claim
   * took since, or a earlier run of this job, are skipped) and attempts them.
   */
  async runClaimed(ids: string[], jobToken: string): Promise<DeliveredCounts> {
    if (this.closed) throw new Error('The delivery ledger is shutting down: the job runs again later');
    const claim = { token: randomUUID(), until: Date.now() + this.options.lease };
    const rows = await this.store.renew(ids, jobToken, claim);
    const run = this.deliver(
      rows.map((row) => ({ row })),
      claim,
    );
    this.track(run);
    return run;
  }

  /**
   * Shutdown: taken deliveries not yet started are not started (their claims are dropped, so the next process takes
   * them at once); waits (at most `ms`) for the attempts under way, then writes what they recorded.
   */
  async close(ms: number): Promise<void> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, ms)));
    await Promise.race([Promise.allSettled([...this.running]), late]);
    clearTimeout(timer);
    await this.flush();
  }

  /** Resolves once every taken delivery has been attempted and written (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running]);
    await this.flush();
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch(() => undefined).finally(() => this.running.delete(tracked));
    this.running.add(tracked);
  }

  private async deliver(work: LedgerWork[], claim: Claim): Promise<DeliveredCounts> {
    const counts: DeliveredCounts = { ok: 0, retrying: 0, failed: 0 };
    if (!work.length) return counts;
    this.inflight += work.length;
    let ready: Ready[];
    try {
      ready = await this.prepare(work);
    } catch (err) {
      // the store is unreachable: the claims expire and the deliveries are taken again
      this.inflight -= work.length;
      this.failed('Reading claimed deliveries', err, {
        event: work.map((w) => w.row.event),
        delivery: work.map((w) => w.row.id),
      });
      this.relay.kick();
      throw err;
    }
    const unstarted: string[] = [];
    await Promise.all(
      ready.map(async (item) => {
        try {
          if ('cancelled' in item) {
            this.cancel(item.row, item.cancelled, claim);
            counts.failed++;
            return;
          }
          const outcome = await this.limit.run(async () => {
            if (this.closed) {
              unstarted.push(item.row.id);
              return undefined;
            }
            // a claim about to expire is left to whoever takes it next (a second sender could overlap otherwise)
            if (Date.now() + this.attemptSpan(item.request) > claim.until) return undefined;
            return this.attemptOne(item, claim);
          });
          if (outcome) counts[outcome]++;
        } finally {
          this.inflight--;
          // room for a quarter more: the relay claims a batch (not one query per finished delivery)
          if (this.inflight % this.kickEvery === 0) this.relay.kick();
        }
      }),
    );
    if (unstarted.length) {
      await this.store
        .release(unstarted, claim.token)
        .catch((err) => this.failed('Releasing deliveries at shutdown', err, { delivery: unstarted }));
    }
    return counts;
  }

  /** The longest one attempt of `request` can take (every redirect hop has its own timeout), plus a margin. */
  private attemptSpan(request: DeliveryRequest): number {
    const hops = this.thorn.allowRedirects ? this.thorn.maxRedirects + 1 : 1;
    return hops * request.settings.timeout + CLAIM_MARGIN;
  }

  /** One attempt; its record goes to the write buffer. */
  private async attemptOne(
    { row, request, traceparent }: { row: ClaimedDelivery; request: DeliveryRequest; traceparent?: string },
    claim: Claim,
  ) {
    const startedAt = Date.now();
    request.attempts = row.attempts;
    // a child of the event's send span, whichever process sends and however much later
    const outcome = await underTraceparent(traceparent, () => this.delivery.attempt(request));
    const now = Date.now();
    const delay = nextRetry(request, outcome.verdict);
    const status = outcome.verdict.ok
      ? 'succeeded'
      : outcome.verdict.gone
        ? 'gone'
        : delay !== undefined
          ? 'pending'
          : 'failed';
    this.write({
      deliveryId: row.id,
      claim: claim.token,
      attempted: true,
      number: request.attempts,
      startedAt,
      durationMs: now - startedAt,
      responseStatus: outcome.response?.status ?? null,
      error: outcome.error?.message ?? null,
      responseBody: cutBody(outcome.response?.body, this.options.maxResponseBody),
      status,
      nextAttemptAt: delay !== undefined ? now + delay : null,
      url: redactUrl(request.url),
    });
    if (status === 'failed') this.logger.warn(deliveryFailedLog(request, outcome));
    // health tracking (streaks, auto-disable, 410 → disabled) once the delivery has ended
    if (status !== 'pending') await this.delivery.finished(request, outcome);
    return status === 'succeeded' ? 'ok' : status === 'pending' ? 'retrying' : 'failed';
  }

  /**
   * The requests of claimed deliveries. What the fan-out knew is used as it is; the rest is read: the events (one
   * query), the stored subscriptions (one query), the static subscribers (from the module options, per event).
   */
  private async prepare(work: LedgerWork[]): Promise<Ready[]> {
    const unknown = work.filter((w) => !w.known).map((w) => w.row);
    const events = new Map<string, LedgerEvent>();
    for (const w of work) if (w.known) events.set(w.row.eventId, w.known.event);
    const missingEvents = [...new Set(unknown.map((r) => r.eventId))].filter((id) => !events.has(id));
    for (const record of await this.store.events(missingEvents)) {
      events.set(record.id, fromRecord(record, this.thorn));
    }
    const storedIds = unknown.filter((r) => r.source === 'stored').map((r) => r.subscriptionId);
    const stored =
      this.subscriptions && storedIds.length ? await this.subscriptions.byIds(storedIds) : new Map();
    const statics = new Map<string, Recipient[]>();

    // one prepare() per event, so its body is encoded once per content type
    const groups = new Map<
      string,
      { event: LedgerEvent; rows: ClaimedDelivery[]; recipients: Recipient[] }
    >();
    const ready: Ready[] = [];
    for (const w of work) {
      const event = events.get(w.row.eventId);
      if (!event) {
        ready.push({ row: w.row, cancelled: `its event ${w.row.eventId} is no longer in the ledger` });
        continue;
      }
      let recipient = w.known?.recipient;
      if (!recipient && w.row.source === 'stored') recipient = stored.get(w.row.subscriptionId);
      if (!recipient && w.row.source === 'static') {
        let list = statics.get(event.record.id);
        if (!list) {
          list = await this.recipients.statics(event.query);
          statics.set(event.record.id, list);
        }
        recipient = list.find((r) => r.id === w.row.subscriptionId);
      }
      if (!recipient) {
        ready.push({ row: w.row, cancelled: cancelReason(w.row) });
        continue;
      }
      let group = groups.get(event.record.id);
      if (!group) groups.set(event.record.id, (group = { event, rows: [], recipients: [] }));
      group.rows.push(w.row);
      group.recipients.push(recipient);
    }
    for (const { event, rows, recipients } of groups.values()) {
      const requests = this.delivery.prepare(event.delivery, recipients, { idFor: (_, i) => rows[i].id });
      requests.forEach((request, i) => ready.push({ row: rows[i], request, traceparent: event.traceparent }));
    }
    return ready;
  }

  private cancel(row: ClaimedDelivery, why: string, claim: Claim): void {
    this.logger.warn(
      logLine(`Delivery cancelled: ${why}`, {
        event: row.event,
        eventId: row.eventId,
        delivery: row.id,
        subscription: row.subscriptionId,
      }),
    );
    const now = Date.now();
    this.write({
      deliveryId: row.id,
      claim: claim.token,
      attempted: false,
      number: row.attempts,
      startedAt: now,
      durationMs: 0,
      responseStatus: null,
      error: `cancelled: ${why}`,
      responseBody: null,
      status: 'cancelled',
      nextAttemptAt: null,
      url: row.url,
    });
  }

  /** Buffers a record; the buffer is written once per turn of the event loop, or at once when a batch is full. */
  private write(record: AttemptRecord): void {
    this.pending.push(record);
    if (this.pending.length >= this.options.batchSize) void this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        void this.flush();
      });
    }
  }

  /** Writes the buffered records (one batch after another); a failed batch is kept and written with the next. */
  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    // nothing to write: with an empty buffer the function below would finish (and clear `flushing`) before `flushing`
    // is assigned, leaving a settled promise there that every later flush() would return without writing anything
    if (!this.pending.length) return Promise.resolve();
    this.flushing = (async () => {
      try {
        while (this.pending.length) {
          const batch = this.pending.splice(0, this.options.batchSize);
          try {
            await this.store.record(batch, Date.now());
          } catch (err) {
            // the database is down: keep the records (bounded) and try again in a second; until they are written,
            // their deliveries stay claimed, and once a claim expires its delivery is attempted again (a record
            // written after that changes nothing: its claim no longer holds)
            this.failed('Writing delivery attempts', err, { delivery: batch.map((r) => r.deliveryId) });
            const room = 10 * this.options.batchSize - this.pending.length;
            const kept = batch.slice(0, Math.max(0, room));
            if (kept.length < batch.length) {
              this.logger.error(
                `${batch.length - kept.length} delivery attempt records dropped (the database is unreachable and ${10 * this.options.batchSize} wait already): those deliveries are attempted again once their claims expire`,
              );
            }
            this.pending.unshift(...kept);
            if (!this.retryTimer) {
              this.retryTimer = setTimeout(() => {
                this.retryTimer = undefined;
                void this.flush();
              }, 1000);
              this.retryTimer.unref();
            }
            return;
          }
          for (const r of batch) if (r.nextAttemptAt !== null) this.relay.dueAt(r.nextAttemptAt);
        }
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  /** Logs a database failure (the deliveries it concerns are retried); at most once every 10 s. */
  private failed(what: string, err: unknown, ids: LogIds): void {
    const now = Date.now();
    if (now - this.lastError < 10_000) return;
    this.lastError = now;
    this.logger.error(logLine(`${what} failed (retried once their claim expires): ${logError(err)}`, ids));
  }
}

function cancelReason(row: ClaimedDelivery): string {
  switch (row.source) {
    case 'stored':
      return `subscription ${row.subscriptionId} no longer exists or is disabled`;
    case 'static':
      return `static subscriber ${row.subscriptionId} is no longer in the module's subscribers option`;
    default:
      return `the event's own subscriber ${row.subscriptionId} is known only to the process that sent it`;
  }
}
