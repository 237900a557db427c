import { Logger } from '@nestjs/common';
import type { DataSource, EntityTarget, Repository } from 'typeorm';
import { redactUrl } from '../delivery/io.js';
import { candidatePatterns } from './pattern.js';
import type { Recipient } from './recipient.js';
import type { Subscriber } from './subscriber.entity.js';

const FIELDS = ['id', 'event', 'url', 'user', 'hmacSecret', 'hmacDigest', 'contentType'] as const;

/**
 * Stored subscriptions: lookup by event name with one indexed `event IN (candidate patterns)` query (never a scan),
 * filtered by owner.
 */
export class SubscriptionStore {
  readonly repository: Repository<Subscriber>;
  /** Prepared SQL per ownership filter on PostgreSQL and SQLite; null elsewhere (QueryBuilder). */
  private readonly sql: { withSender: string; anyone: string; ownerless: string } | null;
  private readonly encoded = new WeakMap<string[], string>();

  constructor(dataSource: DataSource, entity: EntityTarget<Subscriber>) {
    this.repository = dataSource.getRepository(entity);
    this.sql = this.prepare(dataSource);
  }

  /**
   * Subscriptions matching `event`; with a sender, only those owned by it or by nobody; with `ownerlessOnly` (and no
   * sender), only those owned by nobody.
   */
  async find(event: string, sender?: string | null, ownerlessOnly = false): Promise<Recipient[]> {
    const patterns = candidatePatterns(event);
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
        .where('s.event IN (:...patterns)', { patterns });
      if (owned) qb.andWhere('(s.user = :sender OR s.user IS NULL)', { sender });
      else if (ownerless) qb.andWhere('s.user IS NULL');
      rows = await qb.orderBy('s.createdAt', 'ASC').addOrderBy('s.id', 'ASC').getMany();
    }
    return rows.map((s) => ({
      id: s.id,
      url: s.url,
      event: s.event,
      contentType: s.contentType,
      hmacSecret: s.hmacSecret,
      hmacDigest: s.hmacDigest,
      user: s.user,
      source: 'stored' as const,
    }));
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

  /** Removes a subscription whose receiver answered 410 Gone. */
  async remove(id: string): Promise<void> {
    await this.repository.delete({ id });
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
    const base = `SELECT ${select} FROM ${table} WHERE ${inList}`;
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

/**
 * `DeliveryService`'s `onGone` for the module's store: deletes the stored subscription whose receiver answered
 * 410 Gone and logs it (or logs why it could not).
 */
export function deleteWhenGone(
  store: SubscriptionStore,
  logger = new Logger('Thorn'),
): (subscriptionId: string, request: { url: string }) => Promise<void> {
  return async (id, request) => {
    try {
      await store.remove(id);
      logger.log(`Subscription ${id} deleted: ${redactUrl(request.url)} answered 410 Gone`);
    } catch (err) {
      logger.error(`Could not delete subscription ${id} after 410 Gone: ${(err as Error).message}`);
    }
  };
}
