import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type {
  DataSource,
  EntityManager,
  QueryRunner,
  TransactionCommitEvent,
  TransactionRollbackEvent,
} from 'typeorm';
import type { DeliveryService } from '../delivery/delivery.service.js';
import { PayloadError } from '../delivery/payload-error.js';
import { messages } from '../messages.js';
import type { RecipientResolver } from '../subscriptions/recipient.resolver.js';
import type { SubscriptionStore } from '../subscriptions/subscription.store.js';
import { logError } from '../telemetry/log-fields.js';
import { activeTraceparent } from '../telemetry/telemetry.js';
import type { ResolvedThornOptions } from '../thorn-options.js';
import { LedgerDeliverer } from './ledger.deliverer.js';
import { toLedgerEvent, type EventToRecord, type LedgerEvent } from './ledger.event.js';
import { LedgerRelay, type LedgerSink } from './ledger.relay.js';
import { ledgerTables } from './ledger.rows.js';
import { createLedgerStore, type LedgerStore } from './ledger.store.js';
import type { ResolvedLedgerOptions } from './ledger.types.js';

/** Module options with the ledger on. */
export type LedgerThornOptions = ResolvedThornOptions & { ledger: ResolvedLedgerOptions };

/**
 * The delivery ledger (SPEC §9): records events in the app's database (the outbox) and relays them. `record()`
 * writes through the caller's transaction when given one and wakes the relay when that transaction commits (nothing
 * when it rolls back); the relay fans events out to deliveries and hands them to the dispatcher's sink.
 */
export class ThornLedger {
  readonly store: LedgerStore;
  readonly relay: LedgerRelay;
  /** Attempts claimed deliveries in this process: the direct dispatcher's sink, and what queue workers run. */
  readonly deliverer: LedgerDeliverer;
  private readonly commits: CommitWatcher;
  private readonly logger = new Logger('Thorn');
  private started = false;

  constructor(
    readonly options: LedgerThornOptions,
    readonly dataSource: DataSource,
    readonly recipients: RecipientResolver,
    delivery: DeliveryService,
    subscriptions: SubscriptionStore | null,
  ) {
    this.store = createLedgerStore(dataSource);
    this.relay = new LedgerRelay(options.ledger, this.store, recipients, options);
    this.deliverer = new LedgerDeliverer(
      options,
      this.store,
      this.relay,
      delivery,
      recipients,
      subscriptions,
    );
    this.commits = new CommitWatcher((events) => this.relay.wake(events));
    dataSource.subscribers.push(this.commits);
  }

  /** Throws a clear error when the ledger's tables are missing (at start-up, rather than at the first event). */
  async checkTables(): Promise<void> {
    try {
      for (const table of Object.values(ledgerTables(this.dataSource)))
        await this.dataSource.query(`SELECT 1 FROM ${table} WHERE 1 = 0`);
    } catch (err) {
      throw new Error(messages.ledgerTables((err as Error).message), { cause: err });
    }
  }

  /** Starts relaying into `sink` (the dispatcher's). */
  start(sink: LedgerSink): void {
    if (this.started) return;
    this.started = true;
    this.relay.start(sink);
  }

  /**
   * Records events; the result is aligned with `events` (undefined: not recorded). With `manager` they are written
   * through it: inside its transaction they exist once it commits (and are relayed then), not at all if it rolls back.
   * Without, they are written now and relayed at once. An event no subscriber can receive (no static pattern matches,
   * and the subscription cache holds no stored pattern that could) is not recorded. An event over `maxPayloadSize` is
   * not recorded: the others are, then the first such error is thrown (its `recorded` holds the aligned result).
   */
  async record(events: EventToRecord[], manager?: EntityManager): Promise<(LedgerEvent | undefined)[]> {
    if (manager && manager.connection !== this.dataSource)
      throw new Error(messages.ledgerForeignManager(events[0]?.name ?? ''));
    const now = Date.now();
    // the send span (the caller's context), stored with each event so every later attempt joins its trace
    const traceparent = activeTraceparent();
    const all: (LedgerEvent | undefined)[] = [];
    const problems: Error[] = [];
    for (const e of events) {
      // an event nobody can receive is not recorded (it would get no delivery): no insert, no fan-out
      const wanted = this.recipients.mayHaveRecipients(e.name);
      if (!(wanted === true || (wanted !== false && (await wanted)))) {
        all.push(undefined);
        continue;
      }
      const event = toLedgerEvent(randomUUID(), e, now, traceparent);
      const problem = this.problem(event);
      if (problem) problems.push(problem);
      all.push(problem ? undefined : event);
    }
    const recorded = all.filter((e): e is LedgerEvent => e !== undefined);
    if (recorded.length) {
      await this.store.insertEvents(
        recorded.map((e) => e.record),
        manager,
      );
      const qr = manager?.queryRunner;
      if (qr?.isTransactionActive) this.commits.hold(qr, recorded);
      else this.relay.wake(recorded);
    }
    if (problems.length) throw Object.assign(problems[0], { recorded: all });
    return all;
  }

  /** Resolves once everything this process recorded so far has been fanned out and attempted (tests, benchmarks). */
  async idle(): Promise<void> {
    await this.relay.whenIdle();
    await this.deliverer.idle();
  }

  /** Why `event` can't be recorded (its JSON body is over `maxPayloadSize`), or undefined. */
  problem(event: LedgerEvent): Error | undefined {
    const size = Buffer.byteLength(event.record.payload);
    const max = this.options.maxPayloadSize;
    return size > max ? new PayloadError(messages.payloadTooLarge(event.record.name, size, max)) : undefined;
  }

  /**
   * At shutdown, before the DataSource closes: stops relaying, lets attempts under way finish (bounded by the request
   * timeout) and writes them. What is recorded and not yet sent waits in the tables for the next process (after the
   * lease, for deliveries this one had claimed).
   */
  async beforeApplicationShutdown(): Promise<void> {
    const i = this.dataSource.subscribers.indexOf(this.commits);
    if (i >= 0) this.dataSource.subscribers.splice(i, 1);
    try {
      await this.relay.stop();
      await this.deliverer.close(this.options.timeout + 1000);
    } catch (err) {
      this.logger.error(`Stopping the delivery ledger failed: ${logError(err)}`);
    }
  }
}

/**
 * Holds the events recorded in a transaction until its outermost commit, then wakes the relay with them; drops them
 * on the outermost rollback. A rolled-back savepoint needs no bookkeeping: its rows are gone, and the relay's claim
 * of an event that does not exist claims nothing.
 */
class CommitWatcher {
  private readonly held = new WeakMap<QueryRunner, LedgerEvent[]>();

  constructor(private readonly wake: (events: LedgerEvent[]) => void) {}

  hold(qr: QueryRunner, events: LedgerEvent[]): void {
    const list = this.held.get(qr);
    if (list) list.push(...events);
    else this.held.set(qr, [...events]);
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    const qr = event.queryRunner;
    // a released savepoint leaves the transaction open: wait for the outermost commit
    if (qr.isTransactionActive) return;
    const events = this.held.get(qr);
    if (!events) return;
    this.held.delete(qr);
    this.wake(events);
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    if (!event.queryRunner.isTransactionActive) this.held.delete(event.queryRunner);
  }
}
