import {
  BeforeInsert,
  BeforeUpdate,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';
import { randomSecret, toDigest, type HmacDigest } from '../delivery/signing.js';

/** A stored webhook subscription (table `thorn_subscriber`): `event` pattern → `url`, owned by `user`. */
@Entity('thorn_subscriber')
// the lookup's index: `event IN (candidates) AND active = true` is one probe per candidate pattern
@Index('IDX_thorn_subscriber_event_active', ['event', 'active'])
export class Subscriber {
  /** Public id (UUID), sent as `Hook-Subscription`. */
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /** Event pattern (`article.created`, `article.*`, `article.#`). */
  @Column({ type: 'varchar', length: 190 })
  event!: string;

  /** Callback URL. */
  @Column({ type: 'varchar', length: 2048 })
  url!: string;

  /** Owner id (string form of the app's user id); null = owned by nobody. */
  @Index('IDX_thorn_subscriber_user')
  @Column({ type: 'varchar', length: 255, nullable: true })
  user!: string | null;

  /** HMAC secret; generated (64 CSPRNG characters) when not set. */
  @Column({ type: 'text' })
  hmacSecret!: string;

  /** HMAC digest, stored lower case. */
  @Column({ type: 'varchar', length: 16, default: 'sha256' })
  hmacDigest!: HmacDigest;

  /** Request content type. */
  @Column({ type: 'varchar', length: 64, default: 'application/json' })
  contentType!: string;

  /** The secret replaced by the last rotation; still in `webhook-signature` until `previousHmacSecretExpiresAt`. */
  @Column({ type: 'text', nullable: true, select: false })
  previousHmacSecret?: string | null;

  /** When the previous secret stops being used. */
  @Column({ type: Date, nullable: true })
  previousHmacSecretExpiresAt!: Date | null;

  /** false: matches no event (disabled after a 410 or a long failure streak, or paused). */
  @Column({ type: 'boolean', default: true })
  active!: boolean;

  /** When it was disabled (null while active). */
  @Column({ type: Date, nullable: true })
  disabledAt!: Date | null;

  /** Why: `'gone'` (410), `'failing'` (autoDisable) or `'paused'`. */
  @Column({ type: 'varchar', length: 32, nullable: true })
  disabledReason!: string | null;

  /** Deliveries that failed in a row (reset by a success). */
  @Column({ type: 'integer', default: 0 })
  consecutiveFailures!: number;

  /** When the current failure streak began (null without one). */
  @Column({ type: Date, nullable: true })
  failingSince!: Date | null;

  @CreateDateColumn()
  createdAt!: Date;

  @UpdateDateColumn()
  updatedAt!: Date;

  /** Fills the defaults that the database can't generate (a CSPRNG secret) and normalises the digest. */
  @BeforeInsert()
  @BeforeUpdate()
  protected thornDefaults(): void {
    if (!this.hmacSecret) this.hmacSecret = randomSecret(64);
    this.hmacDigest = this.hmacDigest ? toDigest(this.hmacDigest) : 'sha256';
    if (!this.contentType) this.contentType = 'application/json';
    if (this.active === undefined || this.active === null) this.active = true;
    if (this.consecutiveFailures === undefined || this.consecutiveFailures === null)
      this.consecutiveFailures = 0;
  }
}
