// Types of the delivery ledger (SPEC §9) shared by the options table, the store and the relay. Imports nothing.

/** `ledger: true | { … }` (every field optional; `true` = all defaults). */
export interface LedgerOptions {
  /** How often (ms) the relay looks for work a dead or busy process left: events not fanned out, due deliveries (default 1000). */
  pollInterval?: number;
  /** How long (ms) finished deliveries, their attempts and events are kept (default 7 days); 0 keeps them forever. */
  retention?: number;
  /** Bytes of each response body kept in `thorn_attempt` (default 1024). */
  maxResponseBody?: number;
  /** Rows per relay query: events fanned out, deliveries claimed, rows pruned at a time (default 500). */
  batchSize?: number;
  /**
   * How long (ms) a process's claim on a delivery holds before another process may take it over (default 60000): the
   * time after which the deliveries of a killed process are resumed. Must exceed `timeout`.
   */
  lease?: number;
}

export type ResolvedLedgerOptions = Required<LedgerOptions>;

/** One `thorn_event` row as the store reads and writes it. */
export interface EventRecord {
  id: string;
  name: string;
  /** The JSON text of the body. */
  payload: string;
  sender: string | null;
  /** JSON text of `EventMeta`, or null. */
  meta: string | null;
  createdAt: number;
}

/** What an event was sent with besides its body (stored as `thorn_event.meta`; never a secret). */
export interface EventMeta {
  context?: Record<string, unknown>;
  headers?: Record<string, string>;
  overrides?: Record<string, unknown>;
  keepAlive?: boolean;
  ownerlessOnly?: boolean;
  /**
   * The `send` span's W3C `traceparent` (ids and sampled flag only): every attempt of the event's deliveries, in any
   * process and however much later, is a child span of it.
   */
  traceparent?: string;
}

/** A delivery row to insert at fan-out. */
export interface NewDelivery {
  id: string;
  eventId: string;
  event: string;
  subscriptionId: string;
  source: 'stored' | 'static' | 'event';
  /** Redacted (no credentials, no query). */
  url: string;
  /** Claimed by the fanning-out process (it sends it now) or left for whoever claims due deliveries. */
  claimed: boolean;
}

/** A claimed delivery: what a sender needs to find its event and recipient. */
export interface ClaimedDelivery extends Omit<NewDelivery, 'claimed'> {
  /** Attempts recorded so far. */
  attempts: number;
}

/** One attempt's outcome and the delivery's new state, written together. */
export interface AttemptRecord {
  deliveryId: string;
  /** The claim the attempt was made under: a process whose claim was taken over since writes nothing. */
  claim: string;
  /** false: no request was made (the delivery was cancelled); only the delivery's state is written. */
  attempted: boolean;
  /** 1-based attempt number (attempts so far when none was made). */
  number: number;
  startedAt: number;
  durationMs: number;
  responseStatus: number | null;
  error: string | null;
  responseBody: string | null;
  status: 'pending' | 'succeeded' | 'failed' | 'gone' | 'cancelled';
  /** Set when a retry is due then (status pending). */
  nextAttemptAt: number | null;
  /** The redacted URL attempted (a stored subscription's URL may have changed since fan-out). */
  url: string;
}
