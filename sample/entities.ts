import {
  Column,
  Entity,
  Generated,
  JoinColumn,
  JoinTable,
  ManyToMany,
  ManyToOne,
  OneToOne,
  PrimaryGeneratedColumn,
  type Relation,
} from 'typeorm';
import { ModelEvent, WebhookModel, modelReverser } from 'nestjs-thorn';

/** An account holder of the sample app (seeded: alice and bob). */
@Entity()
export class User {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ unique: true })
  username!: string;

  /** Bearer token of the sample's tiny auth (never do this in a real app: hash your tokens). Never selected. */
  @Column({ unique: true, select: false })
  token!: string;
}

@Entity()
export class Account {
  @PrimaryGeneratedColumn()
  id!: number;

  @OneToOne(() => User, { eager: true })
  @JoinColumn()
  user!: Relation<User>;
}

@Entity()
export class Author {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column()
  name!: string;

  @OneToOne(() => Account, { eager: true })
  @JoinColumn()
  account!: Relation<Account>;
}

@Entity()
export class Tag {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ unique: true })
  name!: string;
}

/** The SPEC §3 article: every change becomes a webhook for subscribers of `article.*`. */
@Entity()
@WebhookModel({
  senderField: 'author.account.user',
  reverse: modelReverser('/articles/:uuid', { uuid: 'uuid' }),
})
@ModelEvent('article.created', { on: 'create' })
@ModelEvent('article.changed', { on: 'change' })
@ModelEvent('article.removed', { on: 'delete' })
@ModelEvent('article.published', { on: 'change', filter: { state__now_eq: 'PUBLISHED' } })
@ModelEvent('article.tag_added', { on: 'm2m_add', relation: 'tags' })
@ModelEvent('article.tag_removed', { on: 'm2m_remove', relation: 'tags' })
@ModelEvent('article.tags_cleared', { on: 'm2m_clear', relation: 'tags' })
export class Article {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column()
  @Generated('uuid')
  uuid!: string;

  @Column()
  title!: string;

  @Column({ default: 'PENDING' })
  state!: 'PENDING' | 'PUBLISHED';

  @Column({ type: 'text', default: '' })
  body!: string;

  @ManyToOne(() => Author, { eager: true, nullable: false })
  author!: Relation<Author>;

  @ManyToMany(() => Tag, { eager: true })
  @JoinTable()
  tags!: Relation<Tag>[];

  /** The webhook's `data`. */
  webhookPayload() {
    return {
      uuid: this.uuid,
      title: this.title,
      state: this.state,
      tags: (this.tags ?? []).map((t) => t.name),
    };
  }
}
