import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { redactUrl } from '../delivery/io.js';
import type { Recipient } from '../delivery/request.js';
import type { RecipientResolver } from '../subscriptions/recipient.resolver.js';
import { logError, logLine, type LogIds } from '../telemetry/log-fields.js';
import type { DeliverySettings } from '../thorn-options.js';
import { fromRecord, type LedgerEvent } from './ledger.event.js';
import type { Claim, FanOutPlan, LedgerStore } from './ledger.store.js';
import type { ClaimedDelivery, NewDelivery, ResolvedLedgerOptions } from './ledger.types.js';

/** A claimed delivery handed to a sink, with its event and recipient when the fanning-out process has them. */
export interface LedgerWork {
  row: ClaimedDelivery;
  known?: { event: LedgerEvent; recipient: Recipient };
}

/** Where claimed deliveries go: the in-process deliverer (direct) or a queue (bull, bullmq). */
export interface LedgerSink {
  /** How many more claimed deliveries it takes now (0: the relay claims none until it has room again). */
  spare(): number;
  /** Takes deliveries claimed with `claim`; must not throw. */
  take(work: LedgerWork[], claim: Claim): void;
}

// pruning runs at most this often
const PRUNE_EVERY = 60_000;
// prune rounds (of batchSize rows each) per run, so one run stays short
const PRUNE_ROUNDS = 20;

/**
 * The relay: turns recorded events into deliveries and hands due deliveries to the sink.
 * - Right after a commit, `wake()` fans the events this process recorded out at once (no polling delay).
 * - Every `pollInterval` it also fans out events a dead process left, claims due deliveries (retries, deliveries a
 *   dead process held past their lease, ones that did not fit the sink at fan-out) and, once a minute, prunes.
 * Work is read in batches of `batchSize`, and deliveries are claimed only while the sink has room, so memory stays
 * flat however large the backlog. Every database error is logged and retried on the next round: a committed event
 * waits, it is never dropped.
 */
export class LedgerRelay {
  private readonly logger = new Logger('Thorn');
  private readonly woken: LedgerEvent[] = [];
  /** Ids of the events in `woken` or being fanned out: an event is queued at most once (wake-up and poll may both find it). */
  private readonly queued = new Set<string>();
  /** The poll asked for a look at events left behind (done inside the pump, one look at a time). */
  private lookBack = false;
  private sink?: LedgerSink;
  private running = false;
  private again = false;
  /** Due deliveries may be waiting in the table. */
  private maybeDue = true;
  private poller?: NodeJS.Timeout;
  private dueTimer?: { at: number; handle: NodeJS.Timeout };
  private lastPrune = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private lastError = 0;

  constructor(
    private readonly options: ResolvedLedgerOptions,
    private readonly store: LedgerStore,
    private readonly recipients: RecipientResolver,
    private readonly settings: DeliverySettings,
  ) {}

  /** Starts relaying into `sink` (polling included). */
  start(sink: LedgerSink): void {
    this.sink = sink;
    // not unref()'d: like any scheduler, the relay keeps a process that has nothing else to do (a relay-only process)
    // running until the app closes
    this.poller = setInterval(() => this.poll(), this.options.pollInterval);
    this.kick();
  }

  /** Stops polling and fanning out; events recorded afterwards wait for the next process. */
  async stop(): Promise<void> {
    this.closed = true;
    clearInterval(this.poller);
    if (this.dueTimer) clearTimeout(this.dueTimer.handle);
    if (this.running) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  /** Events this process recorded are committed: fan them out now. */
  wake(events: LedgerEvent[]): void {
    if (this.closed) return;
    let added = false;
    for (const e of events) {
      if (this.queued.has(e.record.id)) continue;
      this.queued.add(e.record.id);
      this.woken.push(e);
      added = true;
    }
    if (added) this.kick();
  }

  /** A retry is due at `at`: claim it then (or at the next poll, whichever comes first). */
  dueAt(at: number): void {
    if (this.closed) return;
    if (this.dueTimer && this.dueTimer.at <= at) return;
    if (this.dueTimer) clearTimeout(this.dueTimer.handle);
    const handle = setTimeout(
      () => {
        this.dueTimer = undefined;
        this.maybeDue = true;
        this.kick();
      },
      Math.max(0, Math.min(at - Date.now(), this.options.pollInterval)),
    );
    handle.unref();
    this.dueTimer = { at, handle };
  }

  /** The sink has room again (or more work may be due): claim more now. */
  kick(): void {
    if (this.closed || !this.sink) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    setImmediate(() => void this.pump());
  }

  /** Resolves once the relay is idle: nothing woken is waiting to be fanned out (tests, shutdown). */
  whenIdle(): Promise<void> {
    if (!this.running && !this.woken.length) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private poll(): void {
    this.maybeDue = true;
    this.lookBack = true;
    this.kick();
  }

  private async pump(): Promise<void> {
    try {
      do {
        this.again = false;
        if (this.lookBack) {
          this.lookBack = false;
          await this.leftovers();
        }
        while (this.woken.length && !this.closed) {
          const batch = this.woken.splice(0, this.options.batchSize);
          try {
            await this.fanOut(batch);
          } finally {
            for (const e of batch) this.queued.delete(e.record.id);
          }
        }
        await this.claimDue();
        await this.pruneIfDue();
      } while (this.again && !this.closed);
    } catch (err) {
      this.failed('The delivery ledger relay', err);
      this.maybeDue = true;
    } finally {
      this.running = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Claims due deliveries while the sink has room. */
  private async claimDue(): Promise<void> {
    const sink = this.sink!;
    while (this.maybeDue && !this.closed) {
      const room = Math.min(sink.spare(), this.options.batchSize);
      if (room <= 0) return;
      const claim = this.newClaim();
      const rows = await this.store.claimDue(Date.now(), room, claim);
      if (rows.length < room) this.maybeDue = false;
      if (!rows.length) return;
      sink.take(
        rows.map((row) => ({ row })),
        claim,
      );
    }
  }

  /**
   * Fans events out: each gets one delivery per recipient, inserted with the event's "fanned out" mark in one
   * statement, only if no other process fanned it out first. The deliveries that fit the sink are claimed and handed
   * to it at once; the rest wait in the table for `claimDue`.
   */
  private async fanOut(batch: LedgerEvent[]): Promise<void> {
    // the same event twice in one batch (woken at commit, then found by a poll while it waited) would get its
    // deliveries twice from one statement: keep one
    const events = [...new Map(batch.map((e) => [e.record.id, e])).values()];
    const resolved = await Promise.all(
      events.map(async (event) => {
        try {
          return { event, recipients: await this.recipients.recipientsOf(event.query) };
        } catch (err) {
          // the subscription store is unreachable: the event stays recorded, the poll fans it out later
          this.failed('Resolving the recipients of an event', err, {
            event: event.record.name,
            eventId: event.record.id,
          });
          return undefined;
        }
      }),
    );
    let room = this.sink!.spare();
    const claim = this.newClaim();
    const plans: FanOutPlan[] = [];
    const work = new Map<string, LedgerWork[]>();
    for (const r of resolved) {
      if (!r) continue;
      const id = r.event.record.id;
      const deliveries: NewDelivery[] = [];
      const handed: LedgerWork[] = [];
      for (const recipient of r.recipients) {
        const claimed = room-- > 0;
        const d: NewDelivery = {
          id: randomUUID(),
          eventId: id,
          event: r.event.record.name,
          subscriptionId: recipient.id,
          source: recipient.source,
          url: redactUrl(recipient.url),
          claimed,
        };
        deliveries.push(d);
        if (claimed) handed.push({ row: { ...d, attempts: 0 }, known: { event: r.event, recipient } });
        else this.maybeDue = true;
      }
      plans.push({ eventId: id, deliveries });
      work.set(id, handed);
    }
    if (!plans.length) return;
    const mine = await this.store.fanOut(plans, Date.now(), claim);
    const handed = [...mine].flatMap((id) => work.get(id) ?? []);
    if (handed.length) this.sink!.take(handed, claim);
  }

  /** Events recorded more than a poll ago that nobody fanned out (their process died, or the store was down). */
  private async leftovers(): Promise<void> {
    if (this.closed) return;
    try {
      const rows = await this.store.unfanned(Date.now() - this.options.pollInterval, this.options.batchSize);
      if (!rows.length) return;
      const events: LedgerEvent[] = [];
      for (const row of rows) {
        try {
          events.push(fromRecord(row, this.settings));
        } catch (err) {
          this.failed('Reading an event back', err, { event: row.name, eventId: row.id });
        }
      }
      this.wake(events);
    } catch (err) {
      this.failed('Looking for events left behind', err);
    }
  }

  private async pruneIfDue(): Promise<void> {
    if (!this.options.retention || Date.now() - this.lastPrune < PRUNE_EVERY) return;
    await this.prune();
  }

  /**
   * One retention pass (the relay runs one a minute): deletes finished deliveries, their attempts and events older than
   * `retention`, `batchSize` rows per statement, at most PRUNE_ROUNDS statements; pending deliveries are never
   * deleted. Returns the rows deleted.
   */
  async prune(): Promise<number> {
    const { retention, batchSize } = this.options;
    const now = Date.now();
    this.lastPrune = now;
    let total = 0;
    if (!retention) return total;
    for (let round = 0; round < PRUNE_ROUNDS && !this.closed; round++) {
      const deleted = await this.store.prune(now - retention, batchSize);
      total += deleted;
      if (deleted < batchSize) break;
    }
    return total;
  }

  private newClaim(): Claim {
    return { token: randomUUID(), until: Date.now() + this.options.lease };
  }

  /** Logs a failure; the same kind of failure at most once every 10 s (a database outage must not flood the log). */
  private failed(what: string, err: unknown, ids: LogIds = {}): void {
    const now = Date.now();
    if (now - this.lastError < 10_000) return;
    this.lastError = now;
    this.logger.error(
      logLine(`${what} failed (retried every ${this.options.pollInterval} ms): ${logError(err)}`, ids),
    );
  }
}
