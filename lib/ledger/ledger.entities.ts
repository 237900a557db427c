import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

// The ledger's tables (SPEC §9). Times are epoch milliseconds (bigint): the relay compares them in SQL on SQLite and
// PostgreSQL alike (`to_timestamp(created_at / 1000)` shows one in psql). No secret is stored in any of them: a
// delivery's secret and current URL are read from its subscription when it is attempted.

/** A bigint column read back as a number (PostgreSQL's driver returns bigint as a string). */
const millis = { from: (v: unknown) => (v == null ? null : Number(v)), to: (v: unknown) => v };

/** One recorded event (table `thorn_event`), written in the transaction of the change that raised it. */
@Entity('thorn_event')
@Index('IDX_thorn_event_unfanned', ['createdAt'], { where: '"fanned_out_at" IS NULL' })
export class ThornEvent {
  /** UUID, returned by `send()` as `eventId`. */
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'varchar', length: 255 })
  name!: string;

  /** The JSON body every recipient receives (before per-content-type encoding). */
  @Column({ type: 'text' })
  payload!: string;

  /** The sender id it was sent with (ownership), if any. */
  @Column({ type: 'varchar', length: 255, nullable: true })
  sender!: string | null;

  /** JSON: what else the event was sent with (context, custom headers, delivery overrides, keep-alive, ownerless). */
  @Column({ type: 'text', nullable: true })
  meta!: string | null;

  @Index('IDX_thorn_event_created')
  @Column({ name: 'created_at', type: 'bigint', transformer: millis })
  createdAt!: number;

  /** When its deliveries were created; null until then (the relay looks for these). */
  @Column({ name: 'fanned_out_at', type: 'bigint', nullable: true, transformer: millis })
  fannedOutAt!: number | null;
}

/** Delivery status: `pending` until it ends as `succeeded`, `failed` (retries exhausted), `gone` (410) or `cancelled`. */
export type ThornDeliveryStatus = 'pending' | 'succeeded' | 'failed' | 'gone' | 'cancelled';

/** One event × recipient (table `thorn_delivery`); its id is the `Hook-Delivery` header, the same on every attempt. */
@Entity('thorn_delivery')
@Index('IDX_thorn_delivery_subscription', ['subscriptionId', 'createdAt', 'id'])
@Index('IDX_thorn_delivery_finished', ['updatedAt'], { where: '"next_attempt_at" IS NULL' })
export class ThornDelivery {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Index('IDX_thorn_delivery_event')
  @Column({ name: 'event_id', type: 'varchar', length: 36 })
  eventId!: string;

  /** The event's name. */
  @Column({ type: 'varchar', length: 255 })
  event!: string;

  @Column({ name: 'subscription_id', type: 'varchar', length: 255 })
  subscriptionId!: string;

  /** `stored`, `static` or `event` (the event's own subscribers). */
  @Column({ type: 'varchar', length: 8 })
  source!: 'stored' | 'static' | 'event';

  /** The recipient URL without credentials or query string (for display; requests use the subscription's own). */
  @Column({ type: 'varchar', length: 2048 })
  url!: string;

  @Column({ type: 'varchar', length: 16 })
  status!: ThornDeliveryStatus;

  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  /** When it is due: set while `pending`, null once it has ended (so the index holds only what may be sent). */
  @Index('IDX_thorn_delivery_due')
  @Column({ name: 'next_attempt_at', type: 'bigint', nullable: true, transformer: millis })
  nextAttemptAt!: number | null;

  /** Random token of the process (or queue job) working on it, until `claimed_until`. */
  @Column({ type: 'varchar', length: 36, nullable: true })
  claim!: string | null;

  @Column({ name: 'claimed_until', type: 'bigint', nullable: true, transformer: millis })
  claimedUntil!: number | null;

  @Column({ name: 'response_status', type: 'integer', nullable: true })
  responseStatus!: number | null;

  @Column({ type: 'text', nullable: true })
  error!: string | null;

  @Column({ name: 'created_at', type: 'bigint', transformer: millis })
  createdAt!: number;

  @Column({ name: 'updated_at', type: 'bigint', transformer: millis })
  updatedAt!: number;
}

/** One HTTP attempt of a delivery (table `thorn_attempt`). */
@Entity('thorn_attempt')
export class ThornAttempt {
  @PrimaryColumn({ name: 'delivery_id', type: 'varchar', length: 36 })
  deliveryId!: string;

  /** 1 for the first attempt. */
  @PrimaryColumn({ type: 'integer' })
  number!: number;

  @Column({ name: 'started_at', type: 'bigint', transformer: millis })
  startedAt!: number;

  @Column({ name: 'duration_ms', type: 'integer' })
  durationMs!: number;

  @Column({ name: 'response_status', type: 'integer', nullable: true })
  responseStatus!: number | null;

  @Column({ type: 'text', nullable: true })
  error!: string | null;

  /** At most `ledger.maxResponseBody` bytes of the answer. */
  @Column({ name: 'response_body', type: 'text', nullable: true })
  responseBody!: string | null;
}

/** The ledger's entities, for a DataSource's `entities` (or `autoLoadEntities` through the module). */
export const THORN_LEDGER_ENTITIES = [ThornEvent, ThornDelivery, ThornAttempt];
