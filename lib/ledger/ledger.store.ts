import type { DataSource, EntityManager } from 'typeorm';
import type { AttemptRecord, ClaimedDelivery, EventRecord, NewDelivery } from './ledger.types.js';
import { PgLedgerStore } from './pg.ledger-store.js';
import { SqliteLedgerStore } from './sqlite.ledger-store.js';

/** A fan-out: an event and the deliveries it gets, created only if this call is the one that claims the event. */
export interface FanOutPlan {
  eventId: string;
  deliveries: NewDelivery[];
}

/** A claim on deliveries: a random token, held until `until` (epoch ms). */
export interface Claim {
  token: string;
  until: number;
}

/**
 * The ledger's SQL, one implementation per database (`PgLedgerStore`, `SqliteLedgerStore`). Every method is one
 * statement or one transaction, so a crash between two calls leaves the tables consistent: an event is fanned out
 * (its row marked and its deliveries inserted) atomically, and an attempt's row is written with its delivery's new
 * state.
 */
export interface LedgerStore {
  /** Records events: through `manager` (the caller's transaction) when given, else on their own. */
  insertEvents(rows: EventRecord[], manager?: EntityManager): Promise<void>;
  /** Events no process has fanned out, recorded before `before`, oldest first. */
  unfanned(before: number, limit: number): Promise<EventRecord[]>;
  /** Events by id. */
  events(ids: string[]): Promise<EventRecord[]>;
  /**
   * Marks each planned event fanned out unless another process already did (or is doing it) and inserts its
   * deliveries (`claimed` ones with `claim`); returns the ids of the events this call fanned out.
   */
  fanOut(plans: FanOutPlan[], now: number, claim: Claim): Promise<Set<string>>;
  /** Claims up to `limit` due deliveries nobody holds (or whose claim expired), most overdue first. */
  claimDue(now: number, limit: number, claim: Claim): Promise<ClaimedDelivery[]>;
  /**
   * A queue job taking its deliveries: moves those still held by `jobToken` (and pending) to `claim`, a token of this
   * run, so a re-run of the same job (a stalled worker) or a late enqueue failure no longer matches them.
   */
  renew(ids: string[], jobToken: string, claim: Claim): Promise<ClaimedDelivery[]>;
  /**
   * Writes attempts and their deliveries' new state, dropping the claim, for the deliveries still held by the claim
   * each attempt was made under (a late write after the claim was taken over changes nothing).
   */
  record(attempts: AttemptRecord[], now: number): Promise<void>;
  /**
   * Drops the claim `token` holds on `ids` (shutdown, or deliveries the queue refused), so another process may take them
   * at once; or, with `until`, keeps holding them until then.
   */
  release(ids: string[], token: string, until?: number): Promise<void>;
  /** Deletes up to `limit` finished deliveries (and attempts) updated before `before`, then such events; returns the rows deleted. */
  prune(before: number, limit: number): Promise<number>;
  /** When the most overdue pending delivery was due (null: none is due). */
  oldestDue(now: number): Promise<number | null>;
  /**
   * Makes delivery `id` of `subscriptionId` pending and due at `now`, whatever its status, unless a live claim holds it
   * (an attempt is under way: it is not taken from its sender). One conditional statement, so two calls at once never
   * produce two attempts at once; returns whether the row changed.
   */
  redeliver(subscriptionId: string, id: string, now: number): Promise<boolean>;
  /** `redeliver` for every `failed` delivery of `subscriptionId` created at or after `since`; returns how many. */
  recover(subscriptionId: string, since: number, now: number): Promise<number>;
  /** How many deliveries are due, counted up to `cap` (a bounded scan of the due index: never more than `cap` rows). */
  countDue(now: number, cap: number): Promise<number>;
}

/** The store for `dataSource`'s driver: PostgreSQL or better-sqlite3 (the ledger's supported databases). */
export function createLedgerStore(dataSource: DataSource): LedgerStore {
  const type = dataSource.options.type;
  if (type === 'postgres') return new PgLedgerStore(dataSource);
  if (type === 'better-sqlite3') return new SqliteLedgerStore(dataSource);
  throw new Error(
    `The delivery ledger supports PostgreSQL ('postgres') and SQLite ('better-sqlite3') DataSources, not '${type}': turn the ledger off or use one of those`,
  );
}

/** Attempt response bodies are cut to this many bytes (UTF-8, never splitting a character). */
export function cutBody(body: string | undefined, max: number): string | null {
  if (!body || max <= 0) return null;
  const bytes = Buffer.from(body);
  if (bytes.length <= max) return body;
  // a partial character at the cut decodes to U+FFFD: drop it
  return bytes
    .subarray(0, max)
    .toString('utf8')
    .replace(/\uFFFD$/, '');
}
