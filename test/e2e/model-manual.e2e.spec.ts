import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Test } from '@nestjs/testing';
import { randomUUID } from 'node:crypto';
import {
  Column,
  DeleteDateColumn,
  Entity,
  ManyToOne,
  PrimaryGeneratedColumn,
  type Relation,
  type Repository,
} from 'typeorm';
import {
  getModelEvents,
  matchesPattern,
  ModelEvent,
  Q,
  ThornModule,
  WebhookModel,
  type SubscriberContext,
} from '../../lib/index.js';
import { testDatabases } from '../fixtures/databases.js';
import {
  bootModelApp,
  createSchema,
  deliveredBefore,
  loopback,
  messages,
  type ModelApp,
} from '../fixtures/model-app.js';
import { Article, blogEntities } from '../fixtures/model-entities.js';
import { TestReceiver } from '../fixtures/receiver.js';

const SCHEMA = 'thorn_model_manual';

@Entity()
class Team {
  @PrimaryGeneratedColumn() id!: number;
  @Column() slug!: string;
}

@Entity()
@WebhookModel({ senderField: 'ownerId' })
@ModelEvent('user.{username}', { on: 'create' })
@ModelEvent('team.{.team.slug}.joined', { on: 'create', requestData: { v: 1, event: 'not me' } })
@ModelEvent('member.vip', { on: 'change', filter: Q({ vip__now_eq: true }).and({ username__ne: 'root' }) })
@ModelEvent('member.invited')
@ModelEvent('member.linked', { on: 'create', reverse: () => 'https://elsewhere.test/m' })
class Member {
  @PrimaryGeneratedColumn() id!: number;
  @Column() username!: string;
  @Column({ default: false }) vip!: boolean;
  @Column({ type: 'varchar', nullable: true }) ownerId!: string | null;
  @ManyToOne(() => Team, { nullable: true }) team?: Relation<Team> | null;

  getAbsoluteUrl() {
    return `/members/${this.id}`;
  }
  webhookPayload() {
    return { username: this.username, at: new Date('2026-01-02T03:04:05Z') };
  }
  webhookHeaders() {
    return { 'X-Member': this.username, 'Hook-Event': 'forged' };
  }
}

@Entity()
@ModelEvent('draft.removed', { on: 'delete', softRemove: false })
@ModelEvent('draft.gone', { on: 'delete' })
class Draft {
  @PrimaryGeneratedColumn() id!: number;
  @Column() title!: string;
  @DeleteDateColumn({ nullable: true }) deletedAt?: Date | null;
}

describe.each(testDatabases)('name templates, refs, filters and manual sending ($name)', (db) => {
  let receiver: TestReceiver;
  let t: ModelApp;
  let members: Repository<Member>;
  let red: Team;
  const contexts: any[] = [];
  const delivered = () => deliveredBefore(t, receiver);

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    await createSchema(db, SCHEMA);
  });
  afterAll(async () => {
    await receiver.stop();
  });
  beforeEach(async () => {
    contexts.length = 0;
    t = await bootModelApp(db, SCHEMA, [...blogEntities, Team, Member, Draft], {
      baseUrl: 'https://example.test/api/',
      subscribers: {
        '#': [
          `${receiver.url}/all`,
          (event: string, ctx: SubscriberContext) => void contexts.push({ event, ...ctx }),
        ],
      },
    });
    red = await t.dataSource.getRepository(Team).save({ slug: 'red' });
    members = t.dataSource.getRepository(Member);
    receiver.reset();
  });
  afterEach(async () => {
    await t?.close();
  });

  it('expands name templates (loading the relation they read), prefixes relative refs with baseUrl, sends headers', async () => {
    // the team is given by id only: Thorn loads team.slug for the name in the same transaction
    const m = await members.save(
      members.create({ username: 'alice', ownerId: 'owner-7', team: { id: red.id } as Team }),
    );
    const ref = `https://example.test/api/members/${m.id}`;
    const data = { username: 'alice', at: '2026-01-02T03:04:05.000Z' };
    expect(await delivered()).toEqual([
      { event: 'user.alice', ref, sender: 'owner-7', data },
      // requestData is merged in, but never replaces the message keys
      { event: 'team.red.joined', ref, sender: 'owner-7', data, v: 1 },
      // an absolute ref is left alone
      { event: 'member.linked', ref: 'https://elsewhere.test/m', sender: 'owner-7', data },
    ]);
    const first = receiver.requests[0].headers;
    expect(first['x-member']).toBe('alice');
    expect(first['hook-event']).toBe('user.alice');
    expect(contexts.filter((c) => c.event !== 'sentinel.done')).toEqual([
      { event: 'user.alice', sender: 'owner-7', instance: m.id },
      { event: 'team.red.joined', sender: 'owner-7', instance: m.id },
      { event: 'member.linked', sender: 'owner-7', instance: m.id },
    ]);
  });

  it('escapes ".", "*", "#" and "%" in template values (one value, one word); Hook-Event decodes to the name in the body', async () => {
    for (const username of ['bob.admin', 'Zoë*#50%']) {
      await members.save(members.create({ username, ownerId: null, team: red }));
    }
    const got = await delivered();
    const names = ['user.Zoë%2A%2350%25', 'user.bob%2Eadmin'];
    // (saves are dispatched in the background: the order of the two users' events may vary)
    expect(
      got
        .map((x) => x.event)
        .filter((e: string) => e.startsWith('user.'))
        .sort(),
    ).toEqual(names);
    for (const name of names) {
      expect([name, matchesPattern('user.*', name), matchesPattern('user.*.admin', name)]).toEqual([
        name,
        true,
        false,
      ]);
    }
    expect(got.map((x) => x.event).filter((e: string) => e.startsWith('team.'))).toEqual(
      Array(2).fill('team.red.joined'),
    );
    const headers = receiver.requests
      .filter((r) => r.json().event?.startsWith('user.'))
      .map((r) => r.headers['hook-event'] as string)
      .sort();
    expect(headers).toEqual(['user.Zo%C3%AB%252A%252350%2525', 'user.bob%252Eadmin']);
    expect(headers.map((h) => decodeURIComponent(h))).toEqual(names);
  });

  it('a Q filter with now_* fires on the transition only', async () => {
    const m = await members.save(members.create({ username: 'bob', ownerId: null }));
    const root = await members.save(members.create({ username: 'root', ownerId: null }));
    await t.settle();
    receiver.reset();
    m.vip = true;
    await members.save(m); // false → true: fires
    await receiver.waitFor(1);
    m.username = 'bobby';
    await members.save(m); // still vip: does not
    root.vip = true;
    await members.save(root); // filtered out by username__ne
    m.vip = false;
    await members.save(m);
    m.vip = true;
    await members.save(m); // fires again
    const got = await delivered();
    expect(got.map((x) => [x.event, x.data.username, x.sender])).toEqual([
      ['member.vip', 'bob', null],
      ['member.vip', 'bobby', null],
    ]);
  });

  it('getModelEvents(): send() with given data and sender, sendFromInstance() like the hook, manual-only events', async () => {
    const m = await members.save(members.create({ username: 'carol', ownerId: 'owner-9', team: red }));
    await t.settle();
    receiver.reset();
    contexts.length = 0;
    const events = getModelEvents(Member);
    expect(Object.keys(events)).toEqual([
      'user.{username}',
      'team.{.team.slug}.joined',
      'member.vip',
      'member.invited',
      'member.linked',
    ]);
    const ref = `https://example.test/api/members/${m.id}`;

    const result = await events['member.invited'].send(m, { data: { by: 'dave' } });
    expect(result.deliveries).toEqual([expect.objectContaining({ ok: true, status: 200 })]);
    await events['member.invited'].send(m, { sender: null, headers: { 'X-Extra': '1' } });
    await events['user.{username}'].sendFromInstance(m);
    expect(events['member.vip'].matches(m, { vip: false } as Member)).toBe(false);
    m.vip = true;
    expect(events['member.vip'].matches(m, { vip: false } as Member)).toBe(true);

    expect(await delivered()).toEqual([
      { event: 'member.invited', ref, sender: 'owner-9', data: { by: 'dave' } },
      { event: 'member.invited', ref, sender: null, data: {} },
      {
        event: 'user.carol',
        ref,
        sender: 'owner-9',
        data: { username: 'carol', at: '2026-01-02T03:04:05.000Z' },
      },
    ]);
    expect(receiver.requests[1].headers['x-extra']).toBe('1');
    expect(receiver.requests[1].headers['x-member']).toBe('carol');
    expect(contexts.filter((c) => c.event !== 'sentinel.done')).toEqual([
      { event: 'member.invited', sender: 'owner-9', instance: m.id },
      { event: 'member.invited', instance: m.id },
      { event: 'user.carol', sender: 'owner-9', instance: m.id },
    ]);

    // a template that cannot be expanded fails the manual send with a clear error, before any request
    const nameless = members.create({ username: undefined as unknown as string, ownerId: null });
    await expect(events['user.{username}'].sendFromInstance(nameless)).rejects.toThrow(
      /"user\.\{username\}": "username" is undefined/,
    );
  });

  it('sendFromInstance() of a many-to-many event takes the related ids', async () => {
    const article = await t.dataSource
      .getRepository(Article)
      .save({ uuid: randomUUID(), title: 'T', state: 'PENDING' });
    await t.settle();
    receiver.reset();
    contexts.length = 0;
    await getModelEvents(Article)['article.tag_removed'].sendFromInstance(article, { ids: [4, 5] });
    expect(await delivered()).toEqual([
      {
        event: 'article.tag_removed',
        ref: `https://example.test/api/articles/${article.uuid}`,
        sender: null,
        data: { title: 'T', state: 'PENDING', tags: [4, 5] },
      },
    ]);
    expect(contexts[0]).toEqual({
      event: 'article.tag_removed',
      instance: article.id,
      relation: 'tags',
      ids: [4, 5],
    });
  });

  it('softRemove: false keeps a delete event to hard removes', async () => {
    const drafts = t.dataSource.getRepository(Draft);
    const a = await drafts.save({ title: 'a' });
    const b = await drafts.save({ title: 'b' });
    await drafts.softRemove(a);
    // events of separate commits are independent: wait before the next operation to assert the order
    await receiver.waitFor(1);
    await drafts.remove(b);
    const got = await delivered();
    expect(got.map((x) => [x.event, x.ref])).toEqual([
      ['draft.gone', null],
      ['draft.removed', null],
      ['draft.gone', null],
    ]);
  });
});

describe('manual model events without TypeORM', () => {
  let receiver: TestReceiver;
  beforeAll(async () => {
    receiver = await new TestReceiver().start();
  });
  afterAll(async () => {
    await receiver.stop();
  });

  it('send() works in an app without a DataSource (nothing is loaded; the sender is what the instance holds)', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ThornModule.forRoot({
          subscriberEntity: false,
          controller: false,
          recipientValidators: loopback(),
          subscribers: { 'member.#': `${receiver.url}/m` },
        }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      const m = Object.assign(new Member(), { id: 3, username: 'eve', ownerId: 'o1' });
      await getModelEvents(Member)['member.invited'].send(m);
      expect(messages(receiver)).toEqual([
        { event: 'member.invited', ref: '/members/3', sender: 'o1', data: {} },
      ]);
    } finally {
      await app.close();
    }
  });
});
