import { IsNull } from 'typeorm';
import {
  decodeCursor,
  describe,
  encodeCursor,
  invalidCursor,
  InvalidParameterError,
  parseLimit,
} from '../pagination.js';
import { subscriptionKey } from '../subscriptions/subscription-id.js';
import type { Subscriber } from '../subscriptions/subscriber.entity.js';
import type { SubscriptionStore } from '../subscriptions/subscription.store.js';
import type { ResolvedThornOptions } from '../thorn-options.js';
import type { ThornDeliveryStatus } from './ledger.entities.js';
import { LedgerLog, type AttemptRow, type DeliveryRow } from './ledger.log.js';
import type { ThornLedger } from './ledger.js';

/** The statuses a delivery can have, for `status` filters. */
export const DELIVERY_STATUSES: readonly ThornDeliveryStatus[] = [
  'pending',
  'succeeded',
  'failed',
  'gone',
  'cancelled',
];

/** Which subscriptions a `DeliveryLogService` call may touch: with `user`, only that owner's stored ones. */
export interface DeliveryLogScope {
  /** Only this user's subscriptions (null: those owned by nobody); left out, any subscription id, static ones too. */
  user?: string | null;
}

/** Options of `DeliveryLogService.list()`. */
export interface DeliveryListOptions extends DeliveryLogScope {
  /** Only deliveries with this status. */
  status?: ThornDeliveryStatus | string;
  /** Page size: 1 to 250, default 50. */
  limit?: number | string;
  /** Where the page starts: `next` of the previous page. */
  cursor?: string;
}

/** One delivery (event × subscription) as the log shows it; `id` is its `Hook-Delivery` header. */
export interface DeliveryLogEntry {
  id: string;
  eventId: string;
  event: string;
  subscriptionId: string;
  /** The URL of the last attempt, without credentials or query. */
  url: string;
  status: ThornDeliveryStatus;
  attempts: number;
  /** Of the last attempt. */
  responseStatus: number | null;
  /** Of the last attempt. */
  error: string | null;
  /** When it is attempted next (pending only). */
  nextAttemptAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** One HTTP attempt of a delivery. */
export interface DeliveryLogAttempt {
  /** 1 for the first attempt. */
  number: number;
  startedAt: Date;
  durationMs: number;
  responseStatus: number | null;
  /** Why it failed (network error, timeout, status answered); no secrets, URLs without credentials. */
  error: string | null;
  /** The first `ledger.maxResponseBody` bytes of the answer. */
  responseBody: string | null;
}

/** A delivery with every attempt (oldest first) and the body it is sent with. */
export interface DeliveryLogDetails extends DeliveryLogEntry {
  attemptLog: DeliveryLogAttempt[];
  /** The request body as sent (encoded for the subscription's content type), or null once retention removed it. */
  payload: string | null;
}

/** A page of deliveries, newest first; `next` is the cursor of the following page (null on the last one). */
export interface DeliveryLogPage {
  deliveries: DeliveryLogEntry[];
  next: string | null;
}

/** What `redeliver()` did. */
export interface Redelivery {
  /** true: made due now; false: an attempt is under way already (it is not started twice). */
  scheduled: boolean;
  /** The delivery as it is now. */
  delivery: DeliveryLogEntry;
}

const DELIVERY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO_DATE =
  /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/**
 * The delivery log (SPEC §10) for the app's own code, e.g. an admin page: a subscription's deliveries page by page,
 * one delivery with its attempts and body, a redelivery, and the recovery of failed deliveries. The `/hooks` routes
 * use it with the requesting user as scope. Every method answers null for a subscription outside the scope (unknown,
 * malformed, someone else's) or a delivery that is not that subscription's; bad arguments throw an
 * `InvalidParameterError` naming the parameter. Needs the delivery ledger (`ledger` option): without it, `enabled` is
 * false and every method throws.
 */
export class DeliveryLogService {
  private readonly log: LedgerLog | null;

  constructor(
    private readonly ledger: ThornLedger | null,
    private readonly subscriptions: SubscriptionStore | null,
    private readonly options: Pick<ResolvedThornOptions, 'codecs'>,
  ) {
    this.log = ledger ? new LedgerLog(ledger.dataSource) : null;
  }

  /** Whether the delivery ledger is on (else there is no log). */
  get enabled(): boolean {
    return this.log !== null;
  }

  /**
   * A page of the deliveries of `subscriptionId`, newest first: `limit` (default 50, at most 250), only `status` ones,
   * starting after `cursor` (the previous page's `next`). Pages stay correct while new deliveries arrive.
   */
  async list(subscriptionId: string, options: DeliveryListOptions = {}): Promise<DeliveryLogPage | null> {
    const log = this.requireLog();
    const limit = parseLimit(options.limit);
    const status = parseStatus(options.status);
    const after = options.cursor === undefined ? undefined : parseDeliveryCursor(options.cursor);
    const key = await this.subscriptionId(subscriptionId, options);
    if (key === null) return null;
    const rows = await log.page(key, { limit: limit + 1, status, after });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      deliveries: page.map(toEntry),
      next: rows.length > limit && last ? encodeCursor([last.createdAt, last.id]) : null,
    };
  }

  /** Delivery `deliveryId` of `subscriptionId` with its attempts and body, or null. */
  async get(
    subscriptionId: string,
    deliveryId: string,
    scope: DeliveryLogScope = {},
  ): Promise<DeliveryLogDetails | null> {
    const log = this.requireLog();
    const found = await this.find(subscriptionId, deliveryId, scope);
    if (!found) return null;
    const { row, subscription } = found;
    const [attempts, payload] = await Promise.all([log.attempts(row.id), log.payload(row.eventId)]);
    return {
      ...toEntry(row),
      attemptLog: attempts.map(toAttempt),
      payload: payload === null ? null : this.encode(payload, subscription?.contentType),
    };
  }

  /**
   * One more attempt of delivery `deliveryId` soon (whatever its status), with the same `Hook-Delivery` and the
   * subscription's current URL and secret. If it fails, it is retried only while the delivery has retries left. When
   * an attempt of it is under way already, nothing changes (`scheduled: false`): it is never attempted twice at once.
   * Null when there is no such delivery.
   */
  async redeliver(
    subscriptionId: string,
    deliveryId: string,
    scope: DeliveryLogScope = {},
  ): Promise<Redelivery | null> {
    const log = this.requireLog();
    const found = await this.find(subscriptionId, deliveryId, scope);
    if (!found) return null;
    const now = Date.now();
    const scheduled = await this.ledger!.store.redeliver(found.row.subscriptionId, found.row.id, now);
    if (scheduled) this.ledger!.relay.dueAt(now);
    const row = (await log.delivery(found.row.subscriptionId, found.row.id)) ?? found.row;
    return { scheduled, delivery: toEntry(row) };
  }

  /**
   * Attempts again every `failed` delivery of `subscriptionId` created at or after `since` (a Date, epoch ms, or an
   * ISO-8601 string; not in the future); resolves to how many, or null for a subscription outside the scope.
   */
  async recover(
    subscriptionId: string,
    since: Date | number | string,
    scope: DeliveryLogScope = {},
  ): Promise<number | null> {
    this.requireLog();
    const from = parseSince(since);
    const key = await this.subscriptionId(subscriptionId, scope);
    if (key === null) return null;
    const now = Date.now();
    const n = await this.ledger!.store.recover(key, from, now);
    if (n) this.ledger!.relay.dueAt(now);
    return n;
  }

  private requireLog(): LedgerLog {
    if (!this.log)
      throw new Error(
        'DeliveryLogService needs the delivery ledger: set the ThornModule option ledger: true (and add THORN_LEDGER_ENTITIES or run its migration)',
      );
    return this.log;
  }

  /** The subscription id to query (stored form), or null when the scope does not allow it. */
  private async subscriptionId(id: string, scope: DeliveryLogScope): Promise<string | null> {
    if (scope.user === undefined) {
      if (typeof id !== 'string' || id === '' || id.length > 255) return null;
      return this.subscriptions ? (subscriptionKey(this.subscriptions.repository, id) ?? id) : id;
    }
    return (await this.ownedSubscription(id, scope.user))?.id ?? null;
  }

  private async ownedSubscription(id: string, user: string | null): Promise<Subscriber | null> {
    if (!this.subscriptions) return null;
    const repository = this.subscriptions.repository;
    const key = subscriptionKey(repository, id);
    if (key === null) return null;
    return repository.findOneBy({ id: key, user: user === null ? IsNull() : user } as any);
  }

  private async find(
    subscriptionId: string,
    deliveryId: string,
    scope: DeliveryLogScope,
  ): Promise<{ row: DeliveryRow; subscription: Subscriber | null } | null> {
    if (typeof deliveryId !== 'string' || !DELIVERY_ID.test(deliveryId)) return null;
    let subscription: Subscriber | null = null;
    let key: string | null;
    if (scope.user === undefined) {
      key = await this.subscriptionId(subscriptionId, scope);
      if (key !== null && this.subscriptions && subscriptionKey(this.subscriptions.repository, key) !== null)
        subscription = await this.subscriptions.repository.findOneBy({ id: key } as any);
    } else {
      subscription = await this.ownedSubscription(subscriptionId, scope.user);
      key = subscription?.id ?? null;
    }
    if (key === null) return null;
    const row = await this.log!.delivery(key, deliveryId.toLowerCase());
    return row ? { row, subscription } : null;
  }

  /** The stored JSON body encoded as the subscription's content type is (JSON as it is). */
  private encode(payload: string, contentType: string | undefined): string {
    const codec =
      contentType && contentType !== 'application/json' ? this.options.codecs[contentType] : undefined;
    if (!codec) return payload;
    try {
      const body = codec(JSON.parse(payload));
      return typeof body === 'string' ? body : body.toString('utf8');
    } catch {
      return payload;
    }
  }
}

function parseStatus(value: unknown): ThornDeliveryStatus | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !DELIVERY_STATUSES.includes(value as ThornDeliveryStatus)) {
    throw new InvalidParameterError(
      'status',
      `status must be one of ${DELIVERY_STATUSES.join(', ')} (got ${describe(value)})`,
    );
  }
  return value as ThornDeliveryStatus;
}

function parseDeliveryCursor(value: unknown): { createdAt: number; id: string } {
  const [createdAt, id] = decodeCursor(value, ['number', 'string']) as [number, string];
  if (!Number.isSafeInteger(createdAt) || createdAt < 0 || !DELIVERY_ID.test(id)) {
    // well-formed, but not a position this module hands out
    throw invalidCursor();
  }
  return { createdAt, id };
}

/** `since` as epoch ms: a Date, epoch ms or an ISO-8601 string, not in the future. */
function parseSince(value: unknown): number {
  let ms = NaN;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'number') ms = value;
  else if (typeof value === 'string' && ISO_DATE.test(value.trim())) ms = Date.parse(value.trim());
  if (!Number.isFinite(ms)) {
    throw new InvalidParameterError(
      'since',
      `since must be an ISO-8601 date such as 2025-01-31T12:00:00Z (got ${describe(value instanceof Date ? 'an invalid Date' : value)})`,
    );
  }
  if (ms > Date.now()) {
    throw new InvalidParameterError(
      'since',
      `since must not be in the future (got ${new Date(ms).toISOString()})`,
    );
  }
  return Math.floor(ms);
}

function toEntry(r: DeliveryRow): DeliveryLogEntry {
  return {
    id: r.id,
    eventId: r.eventId,
    event: r.event,
    subscriptionId: r.subscriptionId,
    url: r.url,
    status: r.status,
    attempts: r.attempts,
    responseStatus: r.responseStatus,
    error: withoutCredentials(r.error),
    nextAttemptAt: r.nextAttemptAt === null ? null : new Date(r.nextAttemptAt),
    createdAt: new Date(r.createdAt),
    updatedAt: new Date(r.updatedAt),
  };
}

function toAttempt(a: AttemptRow): DeliveryLogAttempt {
  return {
    number: a.number,
    startedAt: new Date(a.startedAt),
    durationMs: a.durationMs,
    responseStatus: a.responseStatus,
    error: withoutCredentials(a.error),
    responseBody: a.responseBody,
  };
}

/**
 * Error texts are recorded with redacted URLs; this also drops the `user:password@` of any URL a transport's own error
 * text might carry, so the log never shows credentials.
 */
function withoutCredentials(text: string | null): string | null {
  return text === null ? null : text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1');
}
