import type { DataSource } from 'typeorm';
import type { ClaimedDelivery, EventRecord } from './ledger.types.js';

// Row mappers shared by the stores (column names → fields; PostgreSQL returns bigint as a string).

export function toEvent(r: Record<string, any>): EventRecord {
  return {
    id: r.id,
    name: r.name,
    payload: r.payload,
    sender: r.sender ?? null,
    meta: r.meta ?? null,
    createdAt: Number(r.created_at),
  };
}

export function toClaimed(r: Record<string, any>): ClaimedDelivery {
  return {
    id: r.id,
    eventId: r.event_id,
    event: r.event,
    subscriptionId: r.subscription_id,
    source: r.source,
    url: r.url,
    attempts: Number(r.attempts),
  };
}

/** The ledger's table names as SQL, qualified with the DataSource's `schema` when it has one. */
export interface LedgerTables {
  event: string;
  delivery: string;
  attempt: string;
}

export function ledgerTables(dataSource: DataSource): LedgerTables {
  const schema = (dataSource.options as { schema?: string }).schema;
  const name = (table: string) =>
    schema ? `${dataSource.driver.escape(schema)}.${dataSource.driver.escape(table)}` : table;
  return { event: name('thorn_event'), delivery: name('thorn_delivery'), attempt: name('thorn_attempt') };
}
