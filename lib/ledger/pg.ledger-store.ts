import type { DataSource, EntityManager } from 'typeorm';
import type { Claim, FanOutPlan, LedgerStore } from './ledger.store.js';
import { ledgerTables, toClaimed, toEvent, type LedgerTables } from './ledger.rows.js';
import type { AttemptRecord, ClaimedDelivery, EventRecord } from './ledger.types.js';

const CLAIMED = 'id, event_id, event, subscription_id, source, url, attempts';
const EVENT = 'id, name, payload, sender, meta, created_at';

/**
 * The ledger on PostgreSQL: every method is one statement (data-modifying CTEs) with array parameters, so a batch of
 * any size costs one round trip. Claims use `FOR UPDATE SKIP LOCKED`: processes relaying one database never wait for
 * each other and never take the same row.
 */
export class PgLedgerStore implements LedgerStore {
  /** The tables, in the DataSource's `schema` when it has one (else the search_path decides, as for TypeORM). */
  private readonly t: LedgerTables;

  constructor(private readonly dataSource: DataSource) {
    this.t = ledgerTables(dataSource);
  }

  async insertEvents(rows: EventRecord[], manager?: EntityManager): Promise<void> {
    if (!rows.length) return;
    await (manager ?? this.dataSource).query(
      `INSERT INTO ${this.t.event} (id, name, payload, sender, meta, created_at)
       SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::text[], $4::varchar[], $5::text[], $6::bigint[])`,
      [
        rows.map((r) => r.id),
        rows.map((r) => r.name),
        rows.map((r) => r.payload),
        rows.map((r) => r.sender),
        rows.map((r) => r.meta),
        rows.map((r) => r.createdAt),
      ],
    );
  }

  async unfanned(before: number, limit: number): Promise<EventRecord[]> {
    const rows = await this.dataSource.query(
      `SELECT ${EVENT} FROM ${this.t.event} WHERE fanned_out_at IS NULL AND created_at < $1 ORDER BY created_at LIMIT $2`,
      [before, limit],
    );
    return rows.map(toEvent);
  }

  async events(ids: string[]): Promise<EventRecord[]> {
    if (!ids.length) return [];
    const rows = await this.dataSource.query(
      `SELECT ${EVENT} FROM ${this.t.event} WHERE id = ANY($1::varchar[])`,
      [ids],
    );
    return rows.map(toEvent);
  }

  async fanOut(plans: FanOutPlan[], now: number, claim: Claim): Promise<Set<string>> {
    if (!plans.length) return new Set();
    const d = plans.flatMap((p) => p.deliveries);
    // SKIP LOCKED: an event another process is fanning out right now is its to finish (or, if that fails, the poll's)
    const rows: { id: string }[] = await this.dataSource.query(
      `WITH claimed AS (
         UPDATE ${this.t.event} SET fanned_out_at = $1
         WHERE id IN (SELECT id FROM ${this.t.event} WHERE id = ANY($2::varchar[]) AND fanned_out_at IS NULL
                      FOR UPDATE SKIP LOCKED)
         RETURNING id
       ), inserted AS (
         INSERT INTO ${this.t.delivery} (id, event_id, event, subscription_id, source, url, status, attempts,
                                     next_attempt_at, claim, claimed_until, created_at, updated_at)
         SELECT v.id, v.event_id, v.event, v.subscription_id, v.source, v.url, 'pending', 0, $1,
                CASE WHEN v.claimed THEN $3 END, CASE WHEN v.claimed THEN $4::bigint END, $1, $1
         FROM unnest($5::varchar[], $6::varchar[], $7::varchar[], $8::varchar[], $9::varchar[], $10::varchar[],
                     $11::boolean[]) AS v(id, event_id, event, subscription_id, source, url, claimed)
         WHERE v.event_id IN (SELECT id FROM claimed)
       )
       SELECT id FROM claimed`,
      [
        now,
        plans.map((p) => p.eventId),
        claim.token,
        claim.until,
        d.map((x) => x.id),
        d.map((x) => x.eventId),
        d.map((x) => x.event),
        d.map((x) => x.subscriptionId),
        d.map((x) => x.source),
        d.map((x) => x.url),
        d.map((x) => x.claimed),
      ],
    );
    return new Set(rows.map((r) => r.id));
  }

  async claimDue(now: number, limit: number, claim: Claim): Promise<ClaimedDelivery[]> {
    const rows = await this.rows(
      `UPDATE ${this.t.delivery} SET claim = $2, claimed_until = $3
       WHERE id IN (SELECT id FROM ${this.t.delivery}
                    WHERE next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1)
                    ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)
       RETURNING ${CLAIMED}`,
      [now, claim.token, claim.until, limit],
    );
    return rows.map(toClaimed);
  }

  async renew(ids: string[], jobToken: string, claim: Claim): Promise<ClaimedDelivery[]> {
    if (!ids.length) return [];
    const rows = await this.rows(
      `UPDATE ${this.t.delivery} SET claim = $3, claimed_until = $4
       WHERE id = ANY($1::varchar[]) AND claim = $2 AND next_attempt_at IS NOT NULL
       RETURNING ${CLAIMED}`,
      [ids, jobToken, claim.token, claim.until],
    );
    return rows.map(toClaimed);
  }

  async record(attempts: AttemptRecord[], now: number): Promise<void> {
    if (!attempts.length) return;
    const col = <K extends keyof AttemptRecord>(k: K) => attempts.map((a) => a[k]);
    // the attempt rows of the deliveries whose claim still holds, with their new state
    await this.dataSource.query(
      `WITH v AS (
         SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::int[], $4::bigint[], $5::int[], $6::int[],
                              $7::text[], $8::text[], $9::boolean[], $10::varchar[], $11::bigint[], $12::varchar[])
           AS v(id, claim, number, started_at, duration_ms, response_status, error, response_body, attempted,
                status, next_at, url)
       ), u AS (
         UPDATE ${this.t.delivery} d
         SET status = v.status, attempts = GREATEST(d.attempts, v.number), next_attempt_at = v.next_at,
             claim = NULL, claimed_until = NULL, response_status = v.response_status, error = v.error, url = v.url,
             updated_at = $13
         FROM v WHERE d.id = v.id AND d.claim = v.claim
         RETURNING d.id
       )
       INSERT INTO ${this.t.attempt} (delivery_id, number, started_at, duration_ms, response_status, error, response_body)
       SELECT v.id, v.number, v.started_at, v.duration_ms, v.response_status, v.error, v.response_body
       FROM v WHERE v.attempted AND v.id IN (SELECT id FROM u)
       ON CONFLICT DO NOTHING`,
      [
        col('deliveryId'),
        col('claim'),
        col('number'),
        col('startedAt'),
        col('durationMs'),
        col('responseStatus'),
        col('error'),
        col('responseBody'),
        col('attempted'),
        col('status'),
        col('nextAttemptAt'),
        col('url'),
        now,
      ],
    );
  }

  async release(ids: string[], token: string, until?: number): Promise<void> {
    if (!ids.length) return;
    await this.dataSource.query(
      until === undefined
        ? `UPDATE ${this.t.delivery} SET claim = NULL, claimed_until = NULL WHERE id = ANY($1::varchar[]) AND claim = $2`
        : `UPDATE ${this.t.delivery} SET claimed_until = $3 WHERE id = ANY($1::varchar[]) AND claim = $2`,
      until === undefined ? [ids, token] : [ids, token, until],
    );
  }

  async prune(before: number, limit: number): Promise<number> {
    const [{ n }] = await this.dataSource.query(
      `WITH d AS (
         DELETE FROM ${this.t.delivery} WHERE id IN (
           SELECT id FROM ${this.t.delivery} WHERE next_attempt_at IS NULL AND updated_at < $1 LIMIT $2)
         RETURNING id
       ), a AS (DELETE FROM ${this.t.attempt} WHERE delivery_id IN (SELECT id FROM d))
       SELECT count(*)::int AS n FROM d`,
      [before, limit],
    );
    const events = await this.dataSource.query(
      `WITH e AS (
         DELETE FROM ${this.t.event} WHERE id IN (
           SELECT e.id FROM ${this.t.event} e
           WHERE e.created_at < $1 AND e.fanned_out_at IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM ${this.t.delivery} d WHERE d.event_id = e.id)
           LIMIT $2)
         RETURNING id)
       SELECT count(*)::int AS n FROM e`,
      [before, limit],
    );
    return n + events[0].n;
  }

  async oldestDue(now: number): Promise<number | null> {
    const rows = await this.dataSource.query(
      `SELECT next_attempt_at FROM ${this.t.delivery} WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 1`,
      [now],
    );
    return rows.length ? Number(rows[0].next_attempt_at) : null;
  }

  async redeliver(subscriptionId: string, id: string, now: number): Promise<boolean> {
    const [{ n }] = await this.dataSource.query(
      `WITH u AS (
         UPDATE ${this.t.delivery} SET status = 'pending', next_attempt_at = $3, updated_at = $3
         WHERE id = $1 AND subscription_id = $2 AND (claimed_until IS NULL OR claimed_until < $3)
         RETURNING 1)
       SELECT count(*)::int AS n FROM u`,
      [id, subscriptionId, now],
    );
    return n > 0;
  }

  async recover(subscriptionId: string, since: number, now: number): Promise<number> {
    const [{ n }] = await this.dataSource.query(
      `WITH u AS (
         UPDATE ${this.t.delivery} SET status = 'pending', next_attempt_at = $3, updated_at = $3
         WHERE subscription_id = $1 AND created_at >= $2 AND status = 'failed'
           AND (claimed_until IS NULL OR claimed_until < $3)
         RETURNING 1)
       SELECT count(*)::int AS n FROM u`,
      [subscriptionId, since, now],
    );
    return n;
  }

  async countDue(now: number, cap: number): Promise<number> {
    const rows = await this.dataSource.query(
      `SELECT COUNT(*) AS n FROM (SELECT 1 FROM ${this.t.delivery} WHERE next_attempt_at <= $1 LIMIT $2) due`,
      [now, cap],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** The rows of an `UPDATE … RETURNING` (TypeORM answers UPDATE and DELETE with `[rows, count]`). */
  private async rows(sql: string, params: unknown[]): Promise<Record<string, any>[]> {
    const result = await this.dataSource.query(sql, params);
    return Array.isArray(result[0]) ? result[0] : result;
  }
}
