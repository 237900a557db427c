import { Logger } from '@nestjs/common';
import {
  In,
  type DataSource,
  type EntitySubscriberInterface,
  type EntityTarget,
  type QueryRunner,
  type Repository,
  type TransactionCommitEvent,
  type TransactionRollbackEvent,
} from 'typeorm';
import type { SigningKeys } from '../delivery/request.js';
import { messages } from '../messages.js';
import { PatternCache } from './pattern-cache.js';
import { candidatePatterns } from './pattern.js';
import type { Recipient } from './recipient.js';
import type { Subscriber } from './subscriber.entity.js';
import { installVersion, versionTarget } from './subscriber-version.js';
import { logError } from '../telemetry/log-fields.js';

const FIELDS = [
  'id',
  'event',
  'url',
  'user',
  'hmacSecret',
  'hmacDigest',
  'contentType',
  'previousHmacSecret',
  'previousHmacSecretExpiresAt',
  'consecutiveFailures',
] as const;

export interface SubscriptionStoreOptions {
  /**
   * `subscriptionCacheTtl`: how long (ms) a checked copy of the stored patterns answers lookups before the version row
   * is read again; 0 (the default here) = no cache, every lookup queries.
   */
  cacheTtl?: number;
}

/**
 * Stored subscriptions: lookup by event name with one indexed `event IN (candidate patterns) AND active` query (never
 * a scan; index on (`event`, `active`)), filtered by owner. Inactive (disabled or paused) subscriptions match nothing. With a cache (`cacheTtl` > 0, PostgreSQL and SQLite, after `start()`), an event none of whose
 * candidate patterns is stored skips the query (see `PatternCache` for the staleness bound).
 */
export class SubscriptionStore {
  readonly repository: Repository<Subscriber>;
  /** Prepared SQL per ownership filter on PostgreSQL and SQLite; null elsewhere (QueryBuilder). */
  private readonly sql: { withSender: string; anyone: string; ownerless: string } | null;
  private readonly encoded = new WeakMap<string[], string>();
  /** Set by `start()` when the version row and its triggers are in place. */
  private cache: PatternCache | null = null;
  private writes: SubscriptionWrites | null = null;
  private readonly logger = new Logger('Thorn');

  constructor(
    private readonly dataSource: DataSource,
    entity: EntityTarget<Subscriber>,
    private readonly options: SubscriptionStoreOptions = {},
  ) {
    this.repository = dataSource.getRepository(entity);
    this.sql = this.prepare(dataSource);
  }

  /**
   * Turns the pattern cache on (when `cacheTtl` > 0 on PostgreSQL or SQLite): creates the version table, row and
   * triggers if missing (the `CreateThornSubscriberVersion…` migration creates them ahead), and listens for this
   * process's own writes through TypeORM (the /hooks API, repositories, query builders) to invalidate on commit. When
   * they can't be created (e.g. no DDL rights), logs why and keeps querying on every event.
   */
  async start(): Promise<void> {
    const ttl = this.options.cacheTtl ?? 0;
    const meta = this.repository.metadata;
    const schema = meta.schema ?? (this.dataSource.options as { schema?: string }).schema;
    const target = versionTarget(this.dataSource, meta.tableName, schema);
    if (ttl <= 0 || !target || this.cache) return;
    try {
      await installVersion(this.dataSource, target);
    } catch (err) {
      this.logger.warn(messages.subscriptionCacheOff(meta.tableName, logError(err)));
      return;
    }
    const column = this.dataSource.driver.escape(meta.findColumnWithPropertyName('event')!.databaseName);
    this.cache = new PatternCache(this.repository, target, column, ttl);
    this.writes = new SubscriptionWrites(meta.target, this.cache);
    this.dataSource.subscribers.push(this.writes);
  }

  /** In the module: started once the app's logger is in place. */
  onModuleInit(): Promise<void> {
    return this.start();
  }

  onApplicationShutdown(): void {
    this.close();
  }

  /** Stops listening for writes (the cache stays as it is). */
  close(): void {
    const i = this.writes ? this.dataSource.subscribers.indexOf(this.writes) : -1;
    if (i >= 0) this.dataSource.subscribers.splice(i, 1);
    this.writes = null;
  }

  /** The pattern cache, when on (tests, diagnostics). */
  get patternCache(): PatternCache | null {
    return this.cache;
  }

  /** Makes the next lookup check the version at once (done on commit of this process's TypeORM writes). */
  invalidate(): void {
    this.cache?.invalidate();
  }

  /**
   * Active subscriptions matching `event`; with a sender, only those owned by it or by nobody; with `ownerlessOnly` (and no
   * sender), only those owned by nobody.
   */
  async find(event: string, sender?: string | null, ownerlessOnly = false): Promise<Recipient[]> {
    const patterns = candidatePatterns(event);
    if (this.cache) {
      const may = this.cache.mayMatch(patterns);
      if (may === false || (may !== true && !(await may))) return [];
    }
    const owned = sender !== undefined && sender !== null;
    const ownerless = !owned && ownerlessOnly;
    let rows: Record<string, any>[];
    if (this.sql) {
      const list =
        this.repository.manager.connection.options.type === 'postgres' ? patterns : this.json(patterns);
      rows = await this.repository.query(
        owned ? this.sql.withSender : ownerless ? this.sql.ownerless : this.sql.anyone,
        owned ? [list, sender] : [list],
      );
    } else {
      const qb = this.repository
        .createQueryBuilder('s')
        .select(FIELDS.map((f) => `s.${f}`))
        .where('s.event IN (:...patterns)', { patterns })
        .andWhere('s.active = :active', { active: true });
      if (owned) qb.andWhere('(s.user = :sender OR s.user IS NULL)', { sender });
      else if (ownerless) qb.andWhere('s.user IS NULL');
      rows = await qb.orderBy('s.createdAt', 'ASC').addOrderBy('s.id', 'ASC').getMany();
    }
    return rows.map(toRecipient);
  }

  /**
   * False only when the pattern cache knows no stored subscription can match `event` (within its staleness bound, as
   * for `find()`); true when one may, or without a cache. Never queries the subscriptions themselves.
   */
  mayMatch(event: string): boolean | Promise<boolean> {
    return this.cache ? this.cache.mayMatch(candidatePatterns(event)) : true;
  }

  /**
   * Active subscriptions by id, as they are now (the ledger reads a delivery's current URL and secrets this way; a
   * disabled or paused one is left out, like in `find()`).
   */
  async byIds(ids: string[]): Promise<Map<string, Recipient>> {
    const found = new Map<string, Recipient>();
    if (!ids.length) return found;
    const rows = await this.repository.find({ where: { id: In(ids), active: true } });
    for (const row of rows) found.set(row.id, toRecipient(row));
    return found;
  }

  /**
   * The current secrets of stored subscription `id` (re-read before a queued or retried attempt is signed), or null
   * when it no longer exists.
   */
  async signingKeys(id: string): Promise<SigningKeys | null> {
    const row = await this.repository
      .createQueryBuilder('s')
      .select([
        's.id',
        's.hmacSecret',
        's.hmacDigest',
        's.previousHmacSecret',
        's.previousHmacSecretExpiresAt',
      ])
      .where('s.id = :id', { id })
      .getOne();
    if (!row) return null;
    return {
      secret: row.hmacSecret,
      digest: row.hmacDigest,
      previous: row.previousHmacSecret ?? null,
      previousExpiresAt: toDate(row.previousHmacSecretExpiresAt),
    };
  }

  /** The candidate list as SQLite's json_each parameter, encoded once per (cached) list. */
  private json(patterns: string[]): string {
    let text = this.encoded.get(patterns);
    if (text === undefined) {
      text = JSON.stringify(patterns);
      this.encoded.set(patterns, text);
    }
    return text;
  }

  // The lookup runs for every event, so on the two tested drivers it is one fixed SQL string (no query building per
  // call): PostgreSQL takes the candidates as one array parameter, SQLite as a JSON array read with json_each.
  private prepare(dataSource: DataSource): { withSender: string; anyone: string; ownerless: string } | null {
    const type = dataSource.options.type;
    if (type !== 'postgres' && type !== 'better-sqlite3') return null;
    const meta = this.repository.metadata;
    const col = (p: string) => dataSource.driver.escape(meta.findColumnWithPropertyName(p)!.databaseName);
    const table = meta.schema
      ? `${dataSource.driver.escape(meta.schema)}.${dataSource.driver.escape(meta.tableName)}`
      : dataSource.driver.escape(meta.tableName);
    const select = FIELDS.map((f) => `${col(f)} AS "${f}"`).join(', ');
    const inList =
      type === 'postgres'
        ? `${col('event')} = ANY($1)`
        : `${col('event')} IN (SELECT value FROM json_each(?))`;
    const sender = type === 'postgres' ? '$2' : '?';
    // `active` right after `event`: both columns of the lookup index
    const active = type === 'postgres' ? `${col('active')} = true` : `${col('active')} = 1`;
    const base = `SELECT ${select} FROM ${table} WHERE ${inList} AND ${active}`;
    const order = ` ORDER BY ${col('createdAt')} ASC, ${col('id')} ASC`;
    // SQLite: the unary `+` keeps the planner off the `user` index (with it, "user IS NULL" would walk every unowned
    // row); the `event` index is the selective one
    const user = type === 'postgres' ? col('user') : `+${col('user')}`;
    return {
      anyone: base + order,
      withSender: `${base} AND (${user} = ${sender} OR ${user} IS NULL)${order}`,
      ownerless: `${base} AND ${user} IS NULL${order}`,
    };
  }
}

function toRecipient(s: Record<string, any>): Recipient {
  return {
    id: s.id,
    url: s.url,
    event: s.event,
    contentType: s.contentType,
    hmacSecret: s.hmacSecret,
    hmacDigest: s.hmacDigest,
    user: s.user,
    source: 'stored',
    previousHmacSecret: s.previousHmacSecret ?? null,
    previousHmacSecretExpiresAt: toDate(s.previousHmacSecretExpiresAt),
    failing: Number(s.consecutiveFailures) > 0,
  };
}

/**
 * A date column as a raw query returns it: a `Date` (PostgreSQL), or TypeORM's SQLite text form
 * (`YYYY-MM-DD HH:MM:SS.SSS`, UTC).
 */
export function toDate(v: unknown): Date | null {
  if (v === null || v === undefined || v === '') return null;
  if (v instanceof Date) return v;
  const text = String(v);
  const d = new Date(/^\d{4}-\d\d-\d\d \d/.test(text) ? `${text.replace(' ', 'T')}Z` : text);
  return Number.isNaN(d.getTime()) ? null : d;
}

/**
 * Invalidates the cache when this process writes subscriptions through TypeORM: at once (a write outside a
 * transaction) and again when the transaction that wrote commits, since a check between the write and the commit still
 * sees the old rows. Nested transactions count at the outermost commit.
 */
class SubscriptionWrites implements EntitySubscriberInterface {
  private readonly pending = new WeakSet<QueryRunner>();

  constructor(
    private readonly target: EntityTarget<any>,
    private readonly cache: PatternCache,
  ) {}

  listenTo(): any {
    return this.target;
  }

  afterInsert(e: { queryRunner: QueryRunner }): void {
    this.touched(e.queryRunner);
  }

  afterUpdate(e: { queryRunner: QueryRunner }): void {
    this.touched(e.queryRunner);
  }

  afterRemove(e: { queryRunner: QueryRunner }): void {
    this.touched(e.queryRunner);
  }

  afterTransactionCommit(e: TransactionCommitEvent): void {
    if (e.queryRunner.isTransactionActive || !this.pending.has(e.queryRunner)) return;
    this.pending.delete(e.queryRunner);
    this.cache.invalidate();
  }

  afterTransactionRollback(e: TransactionRollbackEvent): void {
    if (!e.queryRunner.isTransactionActive) this.pending.delete(e.queryRunner);
  }

  private touched(queryRunner: QueryRunner): void {
    this.cache.invalidate();
    if (queryRunner?.isTransactionActive) this.pending.add(queryRunner);
  }
}
