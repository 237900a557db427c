import type { DataSource } from 'typeorm';
import type { ThornDeliveryStatus } from './ledger.entities.js';
import { ledgerTables, type LedgerTables } from './ledger.rows.js';

// The delivery log's reads (SPEC §10), on PostgreSQL and SQLite. A page is a keyset query on the index
// IDX_thorn_delivery_subscription (subscription_id, created_at, id), read backwards: newest first, one index probe
// wherever the page starts, and rows inserted meanwhile (always newer) never shift the pages after the first.

/** One `thorn_delivery` row as the log shows it (times in epoch ms). */
export interface DeliveryRow {
  id: string;
  eventId: string;
  event: string;
  subscriptionId: string;
  url: string;
  status: ThornDeliveryStatus;
  attempts: number;
  nextAttemptAt: number | null;
  claimedUntil: number | null;
  responseStatus: number | null;
  error: string | null;
  createdAt: number;
  updatedAt: number;
}

/** One `thorn_attempt` row (times in epoch ms). */
export interface AttemptRow {
  number: number;
  startedAt: number;
  durationMs: number;
  responseStatus: number | null;
  error: string | null;
  responseBody: string | null;
}

/** Where a page starts: after the row with this sort key (newest first). */
export interface PagePosition {
  createdAt: number;
  id: string;
}

const DELIVERY = `id, event_id, event, subscription_id, url, status, attempts, next_attempt_at, claimed_until,
                  response_status, error, created_at, updated_at`;

/** Reads the ledger's deliveries and attempts for the delivery log. */
export class LedgerLog {
  private readonly t: LedgerTables;
  private readonly pg: boolean;

  constructor(private readonly dataSource: DataSource) {
    this.t = ledgerTables(dataSource);
    this.pg = dataSource.options.type === 'postgres';
  }

  /**
   * Up to `limit` deliveries of `subscriptionId`, newest first (by created_at, then id), after `after` when given,
   * only `status` ones when given.
   */
  async page(
    subscriptionId: string,
    options: { limit: number; status?: ThornDeliveryStatus; after?: PagePosition },
  ): Promise<DeliveryRow[]> {
    const params: unknown[] = [];
    const p = (v: unknown) => (params.push(v), this.pg ? `$${params.length}` : '?');
    let where = `subscription_id = ${p(subscriptionId)}`;
    if (options.status) where += ` AND status = ${p(options.status)}`;
    // a row-value comparison: both databases turn it into a range on the index's (created_at, id)
    if (options.after)
      where += ` AND (created_at, id) < (${p(options.after.createdAt)}, ${p(options.after.id)})`;
    const rows = await this.dataSource.query(
      `SELECT ${DELIVERY} FROM ${this.t.delivery} WHERE ${where}
       ORDER BY created_at DESC, id DESC LIMIT ${p(options.limit)}`,
      params,
    );
    return rows.map(toDeliveryRow);
  }

  /** Delivery `id` if it belongs to `subscriptionId`. */
  async delivery(subscriptionId: string, id: string): Promise<DeliveryRow | null> {
    const rows = await this.dataSource.query(
      `SELECT ${DELIVERY} FROM ${this.t.delivery} WHERE id = ${this.pg ? '$1' : '?'} AND subscription_id = ${this.pg ? '$2' : '?'}`,
      [id, subscriptionId],
    );
    return rows.length ? toDeliveryRow(rows[0]) : null;
  }

  /** Every attempt of delivery `id`, oldest first. */
  async attempts(id: string): Promise<AttemptRow[]> {
    const rows: Record<string, any>[] = await this.dataSource.query(
      `SELECT number, started_at, duration_ms, response_status, error, response_body FROM ${this.t.attempt}
       WHERE delivery_id = ${this.pg ? '$1' : '?'} ORDER BY number`,
      [id],
    );
    return rows.map((r) => ({
      number: Number(r.number),
      startedAt: Number(r.started_at),
      durationMs: Number(r.duration_ms),
      responseStatus: r.response_status == null ? null : Number(r.response_status),
      error: r.error ?? null,
      responseBody: r.response_body ?? null,
    }));
  }

  /** The JSON body recorded for event `id` (null once retention removed it). */
  async payload(eventId: string): Promise<string | null> {
    const rows = await this.dataSource.query(
      `SELECT payload FROM ${this.t.event} WHERE id = ${this.pg ? '$1' : '?'}`,
      [eventId],
    );
    return rows.length ? String(rows[0].payload) : null;
  }
}

function toDeliveryRow(r: Record<string, any>): DeliveryRow {
  const ms = (v: unknown) => (v == null ? null : Number(v));
  return {
    id: r.id,
    eventId: r.event_id,
    event: r.event,
    subscriptionId: r.subscription_id,
    url: r.url,
    status: r.status,
    attempts: Number(r.attempts),
    nextAttemptAt: ms(r.next_attempt_at),
    claimedUntil: ms(r.claimed_until),
    responseStatus: r.response_status == null ? null : Number(r.response_status),
    error: r.error ?? null,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
