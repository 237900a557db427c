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
export class Subscriber {
  /** Public id (UUID), sent as `Hook-Subscription`. */
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /** Event pattern (`article.created`, `article.*`, `article.#`). */
  @Index('IDX_thorn_subscriber_event')
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
  }
}
