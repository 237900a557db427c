import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import type { Claim, FanOutPlan, LedgerStore } from './ledger.store.js';
import type { AttemptRecord, ClaimedDelivery, EventRecord } from './ledger.types.js';
import { toClaimed, toEvent } from './ledger.rows.js';

/** The parts of a better-sqlite3 `Database` the store uses. */
interface SqliteDatabase {
  prepare(sql: string): {
    run(...params: unknown[]): { changes: number };
    all(...params: unknown[]): Record<string, any>[];
    get(...params: unknown[]): Record<string, any> | undefined;
  };
  /** `.immediate()` begins with BEGIN IMMEDIATE: the write lock up front, so two processes never deadlock upgrading. */
  transaction<F extends (...args: any[]) => any>(fn: F): F & { immediate: F };
}

const CLAIMED = 'id, event_id, event, subscription_id, source, url, attempts';
const EVENT = 'id, name, payload, sender, meta, created_at';
// at most this many rows per multi-row INSERT through a manager (SQLite caps bound parameters)
const ROWS_PER_INSERT = 500;

/**
 * The ledger on SQLite (better-sqlite3). TypeORM gives SQLite one connection, and a transaction the app has open on it
 * would swallow any statement run meanwhile (and roll it back with itself). So the relay's work runs in synchronous
 * blocks (better-sqlite3 is synchronous: nothing else runs in between) and only while no transaction is open; while
 * one is, it waits (`whenIdle`). Events written through a caller's manager are part of its transaction, as intended.
 */
export class SqliteLedgerStore implements LedgerStore {
  private readonly statements = new Map<string, ReturnType<SqliteDatabase['prepare']>>();

  constructor(private readonly dataSource: DataSource) {}

  async insertEvents(rows: EventRecord[], manager?: EntityManager): Promise<void> {
    if (!rows.length) return;
    if (manager) {
      for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
        const part = rows.slice(i, i + ROWS_PER_INSERT);
        await manager.query(
          `INSERT INTO thorn_event (id, name, payload, sender, meta, created_at) VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
          part.flatMap((r) => [r.id, r.name, r.payload, r.sender, r.meta, r.createdAt]),
        );
      }
      return;
    }
    // no caller transaction: SQLite's one connection writes it at once (inside whatever transaction is open on it)
    const insert = this.statement(
      'INSERT INTO thorn_event (id, name, payload, sender, meta, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.db
      .transaction(() => {
        for (const r of rows) insert.run(r.id, r.name, r.payload, r.sender, r.meta, r.createdAt);
      })
      .immediate();
  }

  unfanned(before: number, limit: number): Promise<EventRecord[]> {
    return this.whenIdle(() =>
      this.statement(
        `SELECT ${EVENT} FROM thorn_event WHERE fanned_out_at IS NULL AND created_at < ? ORDER BY created_at LIMIT ?`,
      )
        .all(before, limit)
        .map(toEvent),
    );
  }

  events(ids: string[]): Promise<EventRecord[]> {
    return this.whenIdle(() =>
      this.statement(`SELECT ${EVENT} FROM thorn_event WHERE id IN (SELECT value FROM json_each(?))`)
        .all(JSON.stringify(ids))
        .map(toEvent),
    );
  }

  fanOut(plans: FanOutPlan[], now: number, claim: Claim): Promise<Set<string>> {
    const mark = this.statement(
      'UPDATE thorn_event SET fanned_out_at = ? WHERE id = ? AND fanned_out_at IS NULL',
    );
    const insert = this.statement(
      `INSERT INTO thorn_delivery (id, event_id, event, subscription_id, source, url, status, attempts, next_attempt_at,
                                   claim, claimed_until, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?)`,
    );
    return this.whenIdle(() => {
      const done = new Set<string>();
      this.write(() => {
        for (const p of plans) {
          if (!mark.run(now, p.eventId).changes) continue;
          done.add(p.eventId);
          for (const d of p.deliveries) {
            insert.run(
              d.id,
              d.eventId,
              d.event,
              d.subscriptionId,
              d.source,
              d.url,
              now,
              d.claimed ? claim.token : null,
              d.claimed ? claim.until : null,
              now,
              now,
            );
          }
        }
      });
      return done;
    });
  }

  claimDue(now: number, limit: number, claim: Claim): Promise<ClaimedDelivery[]> {
    return this.whenIdle(() =>
      this.write(() =>
        this.statement(
          `UPDATE thorn_delivery SET claim = ?, claimed_until = ?
         WHERE id IN (SELECT id FROM thorn_delivery
                      WHERE next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)
                      ORDER BY next_attempt_at LIMIT ?)
         RETURNING ${CLAIMED}`,
        )
          .all(claim.token, claim.until, now, now, limit)
          .map(toClaimed),
      ),
    );
  }

  renew(ids: string[], jobToken: string, claim: Claim): Promise<ClaimedDelivery[]> {
    return this.whenIdle(() =>
      this.write(() =>
        this.statement(
          `UPDATE thorn_delivery SET claim = ?, claimed_until = ?
           WHERE id IN (SELECT value FROM json_each(?)) AND claim = ? AND next_attempt_at IS NOT NULL
           RETURNING ${CLAIMED}`,
        )
          .all(claim.token, claim.until, JSON.stringify(ids), jobToken)
          .map(toClaimed),
      ),
    );
  }

  record(attempts: AttemptRecord[], now: number): Promise<void> {
    const update = this.statement(
      `UPDATE thorn_delivery SET status = ?, attempts = max(attempts, ?), next_attempt_at = ?, claim = NULL,
              claimed_until = NULL, response_status = ?, error = ?, url = ?, updated_at = ?
       WHERE id = ? AND claim = ?`,
    );
    const insert = this.statement(
      `INSERT OR IGNORE INTO thorn_attempt (delivery_id, number, started_at, duration_ms, response_status, error,
                                            response_body)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    return this.whenIdle(() =>
      this.write(() => {
        for (const a of attempts) {
          // only while the claim the attempt was made under still holds the delivery
          const held = update.run(
            a.status,
            a.number,
            a.nextAttemptAt,
            a.responseStatus,
            a.error,
            a.url,
            now,
            a.deliveryId,
            a.claim,
          ).changes;
          if (held && a.attempted)
            insert.run(
              a.deliveryId,
              a.number,
              a.startedAt,
              a.durationMs,
              a.responseStatus,
              a.error,
              a.responseBody,
            );
        }
      }),
    );
  }

  release(ids: string[], token: string, until?: number): Promise<void> {
    return this.whenIdle(() =>
      this.write(() => {
        const list = JSON.stringify(ids);
        if (until === undefined) {
          this.statement(
            'UPDATE thorn_delivery SET claim = NULL, claimed_until = NULL WHERE id IN (SELECT value FROM json_each(?)) AND claim = ?',
          ).run(list, token);
        } else {
          this.statement(
            'UPDATE thorn_delivery SET claimed_until = ? WHERE id IN (SELECT value FROM json_each(?)) AND claim = ?',
          ).run(until, list, token);
        }
      }),
    );
  }

  prune(before: number, limit: number): Promise<number> {
    return this.whenIdle(() =>
      this.write(() => {
        const ids = this.statement(
          'SELECT id FROM thorn_delivery WHERE next_attempt_at IS NULL AND updated_at < ? LIMIT ?',
        )
          .all(before, limit)
          .map((r) => r.id as string);
        const list = JSON.stringify(ids);
        this.statement('DELETE FROM thorn_attempt WHERE delivery_id IN (SELECT value FROM json_each(?))').run(
          list,
        );
        const deliveries = this.statement(
          'DELETE FROM thorn_delivery WHERE id IN (SELECT value FROM json_each(?))',
        ).run(list).changes;
        const events = this.statement(
          `DELETE FROM thorn_event WHERE id IN (
             SELECT e.id FROM thorn_event e
             WHERE e.created_at < ? AND e.fanned_out_at IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM thorn_delivery d WHERE d.event_id = e.id)
             LIMIT ?)`,
        ).run(before, limit).changes;
        return deliveries + events;
      }),
    );
  }

  oldestDue(now: number): Promise<number | null> {
    return this.whenIdle(() => {
      const row = this.statement(
        'SELECT next_attempt_at FROM thorn_delivery WHERE next_attempt_at <= ? ORDER BY next_attempt_at LIMIT 1',
      ).get(now);
      return row ? Number(row.next_attempt_at) : null;
    });
  }

  redeliver(subscriptionId: string, id: string, now: number): Promise<boolean> {
    return this.whenIdle(
      () =>
        this.statement(
          `UPDATE thorn_delivery SET status = 'pending', next_attempt_at = ?, updated_at = ?
           WHERE id = ? AND subscription_id = ? AND (claimed_until IS NULL OR claimed_until < ?)`,
        ).run(now, now, id, subscriptionId, now).changes > 0,
    );
  }

  recover(subscriptionId: string, since: number, now: number): Promise<number> {
    return this.whenIdle(
      () =>
        this.statement(
          `UPDATE thorn_delivery SET status = 'pending', next_attempt_at = ?, updated_at = ?
           WHERE subscription_id = ? AND created_at >= ? AND status = 'failed'
             AND (claimed_until IS NULL OR claimed_until < ?)`,
        ).run(now, now, subscriptionId, since, now).changes,
    );
  }

  countDue(now: number, cap: number): Promise<number> {
    return this.whenIdle(() => {
      const row = this.statement(
        'SELECT COUNT(*) AS n FROM (SELECT 1 FROM thorn_delivery WHERE next_attempt_at <= ? LIMIT ?)',
      ).get(now, cap);
      return Number(row?.n ?? 0);
    });
  }

  private get db(): SqliteDatabase {
    return (this.dataSource.driver as unknown as { databaseConnection: SqliteDatabase }).databaseConnection;
  }

  /** Runs `fn` in a BEGIN IMMEDIATE transaction (see `transaction`). */
  private write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  private statement(sql: string): ReturnType<SqliteDatabase['prepare']> {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** Runs `fn` (synchronous) once no transaction is open on the connection; checks again every 2 ms. */
  private async whenIdle<T>(fn: () => T): Promise<T> {
    const runner = () => (this.dataSource.driver as unknown as { queryRunner?: QueryRunner }).queryRunner;
    while (runner()?.isTransactionActive) await new Promise((r) => setTimeout(r, 2));
    return fn();
  }
}
