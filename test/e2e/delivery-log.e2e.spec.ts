// SPEC §10 over real HTTP: the delivery log, redelivery and recovery on /hooks, on SQLite and PostgreSQL, delivered
// by the direct dispatcher and by bull (real Redis), to a real receiver on 127.0.0.1. Pagination, bad input, ownership
// and the ledger-off answers run on the direct dispatcher (no delivery path involved); DeliveryLogService is used as an
// app would.
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import {
  DeliveryLogService,
  EventService,
  InvalidParameterError,
  Subscriber,
  THORN_LEDGER_ENTITIES,
  ThornModule,
  verify,
  type ThornModuleOptions,
} from '../../lib/index.js';
import { ThornLedger } from '../../lib/ledger/ledger.js';
import { testDatabases, type TestDatabase } from '../fixtures/databases.js';
import { bullFlavour, type QueueFlavour } from '../fixtures/queues.js';
import { TestReceiver } from '../fixtures/receiver.js';
import { loopback } from '../fixtures/thorn-app.js';

const redisUrl = process.env.THORN_TEST_REDIS_URL;
if (!redisUrl && process.env.CI)
  throw new Error('THORN_TEST_REDIS_URL is not set: run the tests with `npm test`');

const SCHEMA = 'thorn_delivery_log';
const ALICE = { 'x-user': 'alice' };
const BOB = { 'x-user': 'bob' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const DELIVERY_FIELDS = [
  'id',
  'event',
  'event_id',
  'status',
  'attempts',
  'response_status',
  'error',
  'next_attempt_at',
  'created_at',
  'updated_at',
  'delivery',
].sort();
const ATTEMPT_FIELDS = [
  'number',
  'started_at',
  'duration_ms',
  'response_status',
  'error',
  'response_body',
].sort();

type Flavour = ['direct', null] | ['bull', QueueFlavour];
const DISPATCHERS: Flavour[] = [['direct', null], ...(redisUrl ? [['bull', bullFlavour] as Flavour] : [])];

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The URL and query of a `Link: <…>; rel="next"` header, or null. */
function nextLink(res: request.Response): string | null {
  const link = res.headers.link as string | undefined;
  if (!link) return null;
  const m = /^<([^>]+)>; rel="next"$/.exec(link);
  expect(m).not.toBeNull();
  const url = new URL(m![1]);
  return `${url.pathname}${url.search}`;
}

function messagesOf(res: request.Response): string[] {
  return [res.body?.message].flat().map(String);
}

interface Booted {
  app: INestApplication;
  http: () => ReturnType<typeof request>;
  base: string;
  events: EventService;
  dataSource: DataSource;
  ledger: ThornLedger | null;
  log: DeliveryLogService;
}

async function bootApp(db: TestDatabase, options: ThornModuleOptions, ledger = true): Promise<Booted> {
  const base = db.options([Subscriber, ...(ledger ? THORN_LEDGER_ENTITIES : [])]);
  const moduleRef = await Test.createTestingModule({
    imports: [
      TypeOrmModule.forRoot(db.name === 'postgres' ? ({ ...base, schema: SCHEMA } as any) : base),
      ThornModule.forRoot({
        recipientValidators: loopback(),
        getUser: (req: any) => req.headers['x-user'],
        subscriptionCacheTtl: 0,
        retryDelay: 10,
        retryMax: 1,
        retryBackoff: 'fixed',
        ...(ledger ? { ledger: { pollInterval: 100 } } : {}),
        ...options,
      }),
    ],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  // listening on one port, so the URLs built from the Host header are the same on every request
  await app.listen(0, '127.0.0.1');
  const server = app.getHttpServer();
  const { port } = server.address();
  return {
    app,
    http: () => request(server),
    base: `http://127.0.0.1:${port}`,
    events: app.get(EventService),
    dataSource: app.get(getDataSourceToken()),
    ledger: app.get(ThornLedger),
    log: app.get(DeliveryLogService),
  };
}

async function createSchema(db: TestDatabase): Promise<void> {
  if (db.name !== 'postgres') return;
  const { DataSource } = await import('typeorm');
  const ds = new DataSource({ type: 'postgres', url: process.env.THORN_TEST_PG_URL });
  await ds.initialize();
  await ds.query(`CREATE SCHEMA IF NOT EXISTS "${SCHEMA}"`);
  await ds.destroy();
}

const CASES = testDatabases.flatMap((db) => DISPATCHERS.map(([name, flavour]) => ({ db, name, flavour })));

describe.each(CASES)('delivery log routes ($name dispatcher, $db.name)', ({ db, flavour }) => {
  let receiver: TestReceiver;
  let t: Booted | undefined;
  let prefix: string;

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    await createSchema(db);
  });
  afterAll(() => receiver.stop());
  beforeEach(() => {
    prefix = `thorn-log-${randomUUID().slice(0, 8)}`;
  });
  afterEach(async () => {
    await t?.app.close();
    t = undefined;
    receiver.reset();
    if (flavour) {
      const q = flavour.open(redisUrl!, prefix);
      await q.obliterate({ force: true });
      await q.close();
    }
  });

  const boot = async (options: ThornModuleOptions = {}) =>
    (t = await bootApp(db, { ...(flavour ? flavour.connect(redisUrl!, prefix) : {}), ...options }));

  const subscribe = async (path: string, user = ALICE, event = 'order.*') =>
    (
      await t!
        .http()
        .post('/hooks')
        .set(user)
        .send({ event, url: `${receiver.url}${path}` })
        .expect(201)
    ).body;
  const list = async (id: string, query = '') =>
    (await t!.http().get(`/hooks/${id}/deliveries${query}`).set(ALICE).expect(200)).body;
  const detail = async (id: string, deliveryId: string) =>
    (await t!.http().get(`/hooks/${id}/deliveries/${deliveryId}`).set(ALICE).expect(200)).body;
  const onPath = (path: string) => receiver.requests.filter((r) => r.path === path);

  it('logs every attempt, shows the body as sent, redelivers with the same Hook-Delivery to the current URL and secret', async () => {
    await boot();
    const sub = await subscribe('/fail');
    receiver.reply = (r) =>
      r.path === '/fail' ? { status: 500, body: 'nope' } : { status: 200, body: 'fine' };
    await t!.events.send('order.created', { n: 1 }, { sender: 'alice' });
    // first attempt + one retry, then failed
    await until(async () => (await list(sub.id))[0]?.status === 'failed', 'the delivery to fail');

    const [d] = await list(sub.id);
    expect(Object.keys(d).sort()).toEqual(DELIVERY_FIELDS);
    expect(d).toMatchObject({
      event: 'order.created',
      status: 'failed',
      attempts: 2,
      response_status: 500,
      next_attempt_at: null,
      delivery: `${t!.base}/hooks/${sub.id}/deliveries/${d.id}`,
    });
    expect(d.id).toMatch(UUID);
    expect(d.event_id).toMatch(UUID);
    expect(d.error).toContain('answered 500');
    expect(d.created_at).toMatch(ISO);
    expect(d.updated_at).toMatch(ISO);
    const sent = onPath('/fail');
    expect(sent).toHaveLength(2);
    expect(sent.map((r) => r.headers['hook-delivery'])).toEqual([d.id, d.id]);

    const one = await detail(sub.id, d.id);
    expect(Object.keys(one).sort()).toEqual([...DELIVERY_FIELDS, 'attempt_log', 'payload'].sort());
    expect(one.payload).toBe(sent[0].text);
    expect(one.attempt_log).toHaveLength(2);
    one.attempt_log.forEach((a: any, i: number) => {
      expect(Object.keys(a).sort()).toEqual(ATTEMPT_FIELDS);
      expect(a).toMatchObject({ number: i + 1, response_status: 500, response_body: 'nope' });
      expect(a.started_at).toMatch(ISO);
      expect(a.duration_ms).toEqual(expect.any(Number));
      expect(a.error).toContain('answered 500');
    });
    expect(Date.parse(one.attempt_log[0].started_at)).toBeLessThanOrEqual(
      Date.parse(one.attempt_log[1].started_at),
    );

    // the subscription moves and gets a new secret: the redelivery uses both
    await t!
      .http()
      .patch(`/hooks/${sub.id}`)
      .set(ALICE)
      .send({ url: `${receiver.url}/moved` })
      .expect(200);
    const rotated = (await t!.http().post(`/hooks/${sub.id}/rotate-secret`).set(ALICE).expect(200)).body;
    const res = await t!.http().post(`/hooks/${sub.id}/deliveries/${d.id}/redeliver`).set(ALICE).expect(202);
    expect(Object.keys(res.body).sort()).toEqual(DELIVERY_FIELDS);
    expect(res.body.delivery).toBe(d.delivery);
    await until(() => onPath('/moved').length === 1, 'the redelivery');
    const again = onPath('/moved')[0];
    expect(again.headers['hook-delivery']).toBe(d.id);
    expect(again.text).toBe(sent[0].text);
    expect(
      verify(String(again.headers['hook-hmac']), rotated.hmac_digest, rotated.hmac_secret, again.body),
    ).toBe(true);
    await until(
      async () => (await detail(sub.id, d.id)).status === 'succeeded',
      'the redelivery to be recorded',
    );
    const after = await detail(sub.id, d.id);
    expect(after).toMatchObject({ attempts: 3, response_status: 200, error: null, next_attempt_at: null });
    expect(after.attempt_log.map((a: any) => [a.number, a.response_status, a.response_body])).toEqual([
      [1, 500, 'nope'],
      [2, 500, 'nope'],
      [3, 200, 'fine'],
    ]);

    // a succeeded delivery is redelivered too (any status)
    await t!.http().post(`/hooks/${sub.id}/deliveries/${d.id}/redeliver`).set(ALICE).expect(202);
    await until(() => onPath('/moved').length === 2, 'the second redelivery');
    await until(async () => (await detail(sub.id, d.id)).attempts === 4, 'the fourth attempt to be recorded');
  });

  it('two redeliveries at once, and one while the attempt is under way, make one attempt', async () => {
    await boot();
    const sub = await subscribe('/busy');
    receiver.reply = () => ({ status: 500 });
    await t!.events.send('order.created', { n: 2 }, { sender: 'alice' });
    await until(async () => (await list(sub.id))[0]?.status === 'failed', 'the delivery to fail');
    const [d] = await list(sub.id);
    expect(onPath('/busy')).toHaveLength(2);

    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    receiver.reply = () => ({ status: 200, hold: held });
    const redeliver = () => t!.http().post(`/hooks/${sub.id}/deliveries/${d.id}/redeliver`).set(ALICE);
    const [a, b] = await Promise.all([redeliver(), redeliver()]);
    expect([a.status, b.status]).toEqual([202, 202]);
    await until(() => onPath('/busy').length === 3, 'the redelivery to arrive');
    // while that attempt is held open, another redeliver is accepted but does not start a second one
    const c = await redeliver().expect(202);
    expect(c.body.status).toBe('pending');
    // a few poll intervals: a second attempt would have been claimed and sent by now
    await new Promise((r) => setTimeout(r, 500));
    expect(onPath('/busy')).toHaveLength(3);
    release();
    await until(
      async () => (await detail(sub.id, d.id)).status === 'succeeded',
      'the attempt to be recorded',
    );
    await t!.ledger!.idle();
    const after = await detail(sub.id, d.id);
    expect(after.attempts).toBe(3);
    expect(after.attempt_log).toHaveLength(3);
    expect(onPath('/busy')).toHaveLength(3);
  });

  it('recover attempts again every failed delivery created since the given time, and only those', async () => {
    await boot();
    const sub = await subscribe('/down');
    const other = await subscribe('/other');
    receiver.reply = () => ({ status: 503 });
    for (let i = 0; i < 2; i++) await t!.events.send('order.created', { n: i }, { sender: 'alice' });
    await until(
      async () =>
        (await list(sub.id, '?status=failed')).length === 2 &&
        (await list(other.id, '?status=failed')).length === 2,
      'four failed deliveries',
    );
    const since = new Date(Date.now() + 1).toISOString();
    await new Promise((r) => setTimeout(r, 5));
    await t!.events.send('order.created', { n: 2 }, { sender: 'alice' });
    await until(async () => (await list(sub.id, '?status=failed')).length === 3, 'the third failure');
    await until(
      async () => (await list(other.id, '?status=failed')).length === 3,
      'the third failure elsewhere',
    );
    const failedBefore = onPath('/down').length;
    expect(failedBefore).toBe(6);

    receiver.reply = () => ({ status: 200 });
    const [newest] = await list(sub.id);
    const res = await t!.http().post(`/hooks/${sub.id}/recover`).set(ALICE).send({ since }).expect(202);
    expect(res.body).toEqual({ redelivering: 1 });
    await until(() => onPath('/down').length === failedBefore + 1, 'the recovered delivery');
    expect(onPath('/down')[failedBefore].headers['hook-delivery']).toBe(newest.id);
    await until(
      async () => (await list(sub.id, '?status=succeeded')).length === 1,
      'the recovery to be recorded',
    );

    // from the beginning: the two older failures; the other subscription's stay failed
    const all = await t!
      .http()
      .post(`/hooks/${sub.id}/recover`)
      .set(ALICE)
      .send({ since: '2000-01-01T00:00:00Z' })
      .expect(202);
    expect(all.body).toEqual({ redelivering: 2 });
    await until(async () => (await list(sub.id, '?status=succeeded')).length === 3, 'all recovered');
    expect(await list(other.id, '?status=failed')).toHaveLength(3);
    expect(onPath('/other')).toHaveLength(6);
    // nothing failed is left: recovering again changes nothing
    expect(
      (await t!.http().post(`/hooks/${sub.id}/recover`).set(ALICE).send({ since: '2000-01-01' }).expect(202))
        .body,
    ).toEqual({ redelivering: 0 });
  });
});

describe.each(testDatabases)('delivery log: pages, input, ownership, service ($name)', (db) => {
  let receiver: TestReceiver;
  let t: Booted | undefined;

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    await createSchema(db);
  });
  afterAll(() => receiver.stop());
  afterEach(async () => {
    await t?.app.close();
    t = undefined;
    receiver.reset();
  });

  const subscribe = async (path: string, user = ALICE, event = 'order.*') =>
    (
      await t!
        .http()
        .post('/hooks')
        .set(user)
        .send({ event, url: `${receiver.url}${path}` })
        .expect(201)
    ).body;
  /** Sends `n` events and waits until each delivery to `sub` has ended. */
  const deliver = async (sub: string, n: number) => {
    for (let i = 0; i < n; i++) await t!.events.send('order.created', { i }, { sender: 'alice' });
    await t!.ledger!.idle();
    await until(async () => {
      const page = await t!.log.list(sub, { limit: 250 });
      return page!.deliveries.filter((d) => d.status !== 'pending').length >= n;
    }, `${n} deliveries`);
  };
  /** Follows the Link headers from `path`, returning each page. */
  const pages = async (path: string, user = ALICE) => {
    const out: any[][] = [];
    let next: string | null = path;
    while (next) {
      const res: request.Response = await t!.http().get(next).set(user).expect(200);
      out.push(res.body);
      next = nextLink(res);
    }
    return out;
  };

  it('pages deliveries newest first through Link headers that stay correct while deliveries arrive; filters by status', async () => {
    t = await bootApp(db, {});
    const sub = await subscribe('/p');
    receiver.reply = (_r, i) => ({ status: i % 3 === 0 ? 400 : 200 });
    await deliver(sub.id, 7);
    const everything = (await t.http().get(`/hooks/${sub.id}/deliveries`).set(ALICE).expect(200)).body;
    expect(everything).toHaveLength(7);
    const keys = everything.map((d: any) => [Date.parse(d.created_at), d.id]);
    const sorted = [...keys].sort((x, y) => y[0] - x[0] || (y[1] < x[1] ? -1 : y[1] > x[1] ? 1 : 0));
    expect(keys).toEqual(sorted);

    const first = await t.http().get(`/hooks/${sub.id}/deliveries?limit=3`).set(ALICE).expect(200);
    expect(first.body.map((d: any) => d.id)).toEqual(everything.slice(0, 3).map((d: any) => d.id));
    const next = nextLink(first)!;
    expect(next).toMatch(new RegExp(`^/hooks/${sub.id}/deliveries\\?limit=3&cursor=[A-Za-z0-9_-]+$`));
    // new deliveries arrive between pages: the following pages neither repeat nor skip a row
    await deliver(sub.id, 2);
    const rest = await pages(next);
    expect(rest.map((p) => p.length)).toEqual([3, 1]);
    expect([...first.body, ...rest.flat()].map((d: any) => d.id)).toEqual(everything.map((d: any) => d.id));
    expect((await t.http().get(`/hooks/${sub.id}/deliveries`).set(ALICE).expect(200)).body).toHaveLength(9);

    // status filter, also through pages (the Link keeps it)
    const failed = everything.filter((d: any) => d.status === 'failed').map((d: any) => d.id);
    expect(failed.length).toBeGreaterThan(0);
    const failedPages = await pages(`/hooks/${sub.id}/deliveries?status=failed&limit=1`);
    expect(failedPages.flat().map((d: any) => d.id)).toEqual(failed);
    expect(failedPages.flat().every((d: any) => d.status === 'failed')).toBe(true);
    const last = await t.http().get(`/hooks/${sub.id}/deliveries?status=gone`).set(ALICE).expect(200);
    expect(last.body).toEqual([]);
    expect(last.headers.link).toBeUndefined();
  });

  it('GET /hooks pages with limit and Link, stays a JSON array, never shows secrets, and is stable under creates', async () => {
    t = await bootApp(db, {});
    const created = [];
    for (let i = 0; i < 5; i++) created.push(await subscribe(`/s${i}`));
    // oldest first: created_at, then id (SQLite keeps whole seconds, so ties are common there)
    const all = (await t.http().get('/hooks').set(ALICE).expect(200)).body.map((s: any) => s.id);
    expect([...all].sort()).toEqual(created.map((s) => s.id).sort());
    const first = await t.http().get('/hooks?limit=2').set(ALICE).expect(200);
    expect(Array.isArray(first.body)).toBe(true);
    expect(first.body.map((s: any) => s.id)).toEqual(all.slice(0, 2));
    expect(first.body.some((s: any) => 'hmac_secret' in s)).toBe(false);
    const next = nextLink(first)!;
    expect(next).toMatch(/^\/hooks\?limit=2&cursor=/);
    const late = await subscribe('/late');
    const rest = await pages(next);
    const walked = [...first.body, ...rest.flat()].map((s: any) => s.id);
    // every row once, in the order of a fresh full listing; the new one too unless it sorts before the cursor (a tie
    // in SQLite's whole second)
    const fresh = (await t.http().get('/hooks').set(ALICE).expect(200)).body.map((s: any) => s.id);
    expect(new Set(walked).size).toBe(walked.length);
    expect(walked).toEqual(fresh.filter((id: string) => walked.includes(id)));
    expect(all.every((id: string) => walked.includes(id))).toBe(true);
    if (db.name === 'postgres') expect(walked[walked.length - 1]).toBe(late.id);
    expect(rest.slice(0, -1).every((p) => p.length === 2)).toBe(true);
    // another user's pages hold only their own
    await subscribe('/bob', BOB);
    expect((await pages('/hooks?limit=1', BOB)).flat()).toHaveLength(1);
  });

  it('answers 400 naming the parameter for every kind of bad input, never a 500', async () => {
    t = await bootApp(db, {});
    const sub = await subscribe('/x');
    await deliver(sub.id, 1);
    const [d] = (await t.http().get(`/hooks/${sub.id}/deliveries`).set(ALICE).expect(200)).body;
    const b64 = (v: unknown) =>
      Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
    const deliveries = `/hooks/${sub.id}/deliveries`;
    const recover = `/hooks/${sub.id}/recover`;
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const cases: [string, string, unknown, string][] = [
      ['GET', `${deliveries}?limit=0`, undefined, 'limit'],
      ['GET', `${deliveries}?limit=-1`, undefined, 'limit'],
      ['GET', `${deliveries}?limit=251`, undefined, 'limit'],
      ['GET', `${deliveries}?limit=abc`, undefined, 'limit'],
      ['GET', `${deliveries}?limit=1.5`, undefined, 'limit'],
      ['GET', `${deliveries}?limit=`, undefined, 'limit'],
      ['GET', `${deliveries}?limit=1e2`, undefined, 'limit'],
      ['GET', `${deliveries}?limit=99999999999999999999`, undefined, 'limit'],
      ['GET', `${deliveries}?limit=5&limit=6`, undefined, 'limit'],
      ['GET', `${deliveries}?status=done`, undefined, 'status'],
      ['GET', `${deliveries}?status=FAILED`, undefined, 'status'],
      ['GET', `${deliveries}?status=`, undefined, 'status'],
      ['GET', `${deliveries}?status=failed&status=pending`, undefined, 'status'],
      ['GET', `${deliveries}?cursor=not-a-cursor`, undefined, 'cursor'],
      ['GET', `${deliveries}?cursor=`, undefined, 'cursor'],
      ['GET', `${deliveries}?cursor=${b64('hello')}`, undefined, 'cursor'],
      ['GET', `${deliveries}?cursor=${b64({ a: 1 })}`, undefined, 'cursor'],
      ['GET', `${deliveries}?cursor=${b64([1, 2, 3])}`, undefined, 'cursor'],
      [
        'GET',
        `${deliveries}?cursor=${b64([Date.now(), 'x; DROP TABLE thorn_delivery'])}`,
        undefined,
        'cursor',
      ],
      ['GET', `${deliveries}?cursor=${b64([-5, d.id])}`, undefined, 'cursor'],
      ['GET', `${deliveries}?cursor=${b64([1.5, d.id])}`, undefined, 'cursor'],
      ['GET', `${deliveries}?cursor=${b64(['1700000000000', d.id])}`, undefined, 'cursor'],
      ['GET', `${deliveries}?cursor=${b64(` [${Date.now()},"${d.id}"]`)}`, undefined, 'cursor'],
      ['GET', `${deliveries}?cursor=%00%01`, undefined, 'cursor'],
      ['GET', '/hooks?limit=0', undefined, 'limit'],
      ['GET', '/hooks?limit=251', undefined, 'limit'],
      ['GET', '/hooks?limit=ten', undefined, 'limit'],
      ['GET', `/hooks?cursor=${b64(['yesterday', sub.id])}`, undefined, 'cursor'],
      ['GET', `/hooks?cursor=${b64(['2025-01-01 00:00:00', 'not-a-uuid'])}`, undefined, 'cursor'],
      ['GET', `/hooks?cursor=${b64(["2025-01-01' OR 1=1 --", sub.id])}`, undefined, 'cursor'],
      ['POST', recover, {}, 'since'],
      ['POST', recover, { since: null }, 'since'],
      ['POST', recover, { since: 'yesterday' }, 'since'],
      ['POST', recover, { since: 1700000000000 }, 'since'],
      ['POST', recover, { since: '2025-13-45T99:00:00Z' }, 'since'],
      ['POST', recover, { since: '' }, 'since'],
      ['POST', recover, { since: future }, 'since'],
      ['POST', recover, { since: ['2025-01-01'] }, 'since'],
      ['POST', recover, { since: '2025-01-01', status: 'failed' }, 'property status'],
      ['POST', recover, 'since=2025-01-01', 'body'],
      ['POST', recover, [], 'body'],
    ];
    expect(cases.length).toBeGreaterThanOrEqual(30);
    for (const [method, path, body, parameter] of cases) {
      let req = method === 'GET' ? t.http().get(path) : t.http().post(path);
      req = req.set(ALICE);
      if (typeof body === 'string') req = req.set('content-type', 'text/plain').send(body);
      else if (body !== undefined) req = req.send(body as object);
      const res = await req;
      expect({ path, body, status: res.status }).toEqual({ path, body, status: 400 });
      expect({ path, body, named: messagesOf(res).some((m) => m.startsWith(`${parameter} `)) }).toEqual({
        path,
        body,
        named: true,
      });
    }
    // malformed JSON goes through the app's body parser first
    const malformed = await t
      .http()
      .post(recover)
      .set(ALICE)
      .set('content-type', 'application/json')
      .send('{"since": ');
    expect(malformed.status).toBe(400);
    expect(messagesOf(malformed)[0]).toMatch(/^body /);
    // valid input still works
    await t.http().get(`${deliveries}?limit=250&status=succeeded`).set(ALICE).expect(200);
    await t.http().get('/hooks?limit=1').set(ALICE).expect(200);
  });

  it('answers 404 for another user’s, unknown and malformed ids on every route (and 401 without a user)', async () => {
    t = await bootApp(db, {});
    const sub = await subscribe('/mine');
    const second = await subscribe('/second');
    await deliver(sub.id, 1);
    const [d] = (await t.http().get(`/hooks/${sub.id}/deliveries`).set(ALICE).expect(200)).body;
    const before = receiver.requests.length;
    const routes = (s: string, del: string): [string, string, object?][] => [
      ['GET', `/hooks/${s}/deliveries`],
      ['GET', `/hooks/${s}/deliveries/${del}`],
      ['POST', `/hooks/${s}/deliveries/${del}/redeliver`],
      ['POST', `/hooks/${s}/recover`, { since: '2000-01-01T00:00:00Z' }],
    ];
    const call = (method: string, path: string, user: object | null, body?: object) => {
      let r = method === 'GET' ? t!.http().get(path) : t!.http().post(path);
      if (user) r = r.set(user as Record<string, string>);
      return body ? r.send(body) : r;
    };
    const unknownSub = randomUUID();
    const variants: [string, string, object | null, number][] = [
      [sub.id, d.id, BOB, 404], // another user's
      [unknownSub, d.id, ALICE, 404],
      ['not-a-uuid', d.id, ALICE, 404],
      [`${sub.id}x`, d.id, ALICE, 404],
      [sub.id, d.id, null, 401],
    ];
    for (const [s, del, user, status] of variants) {
      for (const [method, path, body] of routes(s, del)) {
        const res = await call(method, path, user, body);
        expect({ path, user, status: res.status }).toEqual({ path, user, status });
      }
    }
    // unknown, malformed, or another subscription's delivery
    for (const del of [randomUUID(), 'nope', '1', d.id.toUpperCase().replace(/-/g, '')]) {
      await t.http().get(`/hooks/${sub.id}/deliveries/${del}`).set(ALICE).expect(404);
      await t.http().post(`/hooks/${sub.id}/deliveries/${del}/redeliver`).set(ALICE).expect(404);
    }
    const foreign = await t.http().get(`/hooks/${second.id}/deliveries/${d.id}`).set(ALICE).expect(404);
    expect(messagesOf(foreign)).toEqual(['delivery not found']);
    await t.http().post(`/hooks/${second.id}/deliveries/${d.id}/redeliver`).set(ALICE).expect(404);
    // bob's subscription lists nothing of alice's
    const bobs = await subscribe('/bob', BOB);
    expect((await t.http().get(`/hooks/${bobs.id}/deliveries`).set(BOB).expect(200)).body).toEqual([]);
    // none of the refused redeliveries or recoveries sent anything
    await new Promise((r) => setTimeout(r, 300));
    await t.ledger!.idle();
    expect(receiver.requests.length).toBe(before);
    expect((await t.log.get(sub.id, d.id))!.attempts).toBe(1);
  });

  it('without the ledger every log route answers 404 naming the ledger, and the rest of /hooks works', async () => {
    t = await bootApp(db, {}, false);
    const sub = await subscribe('/off');
    for (const [method, path, body] of [
      ['GET', `/hooks/${sub.id}/deliveries`],
      ['GET', `/hooks/${sub.id}/deliveries/${randomUUID()}`],
      ['POST', `/hooks/${sub.id}/deliveries/${randomUUID()}/redeliver`],
      ['POST', `/hooks/${sub.id}/recover`, { since: '2000-01-01' }],
    ] as [string, string, object?][]) {
      const req = method === 'GET' ? t.http().get(path) : t.http().post(path);
      const res = await (body ? req.set(ALICE).send(body) : req.set(ALICE));
      expect(res.status).toBe(404);
      expect(messagesOf(res)[0]).toContain('delivery ledger is off');
    }
    expect((await t.http().get('/hooks').set(ALICE).expect(200)).body).toHaveLength(1);
    expect(t.log.enabled).toBe(false);
    await expect(t.log.list(sub.id)).rejects.toThrow('DeliveryLogService needs the delivery ledger');
  });

  it('recorded attempts show status, duration, error and the first maxResponseBody bytes, never credentials', async () => {
    t = await bootApp(db, { ledger: { pollInterval: 100, maxResponseBody: 16 }, retry: false });
    const url = `${receiver.url.replace('http://', 'http://hookuser:s3cr3t-pw@')}/cred?token=q-secret`;
    const sub = (await t.http().post('/hooks').set(ALICE).send({ event: 'order.*', url }).expect(201)).body;
    receiver.reply = () => ({ status: 502, body: 'é'.repeat(40) });
    await t.events.send('order.created', { n: 1 }, { sender: 'alice' });
    await until(async () => (await t!.log.list(sub.id))!.deliveries[0]?.status === 'failed', 'the failure');
    expect(receiver.requests[0].headers.authorization).toBeDefined();
    const [d] = (await t.http().get(`/hooks/${sub.id}/deliveries`).set(ALICE).expect(200)).body;
    const one = (await t.http().get(`/hooks/${sub.id}/deliveries/${d.id}`).set(ALICE).expect(200)).body;
    const [a] = one.attempt_log;
    expect(a.response_status).toBe(502);
    expect(a.response_body).toBe('é'.repeat(8));
    expect(Buffer.byteLength(a.response_body)).toBeLessThanOrEqual(16);
    expect(a.duration_ms).toBeGreaterThanOrEqual(0);
    expect(a.error).toContain(`${receiver.url}/cred answered 502`);
    const everything = JSON.stringify([d, one]);
    expect(everything).not.toContain('s3cr3t-pw');
    expect(everything).not.toContain('q-secret');
    expect(everything).not.toContain(sub.hmac_secret);
  });

  it('DeliveryLogService: the same operations for the app, scoped by user or not, with the same pagination', async () => {
    t = await bootApp(db, {});
    const sub = await subscribe('/svc');
    receiver.reply = () => ({ status: 500 });
    await deliver(sub.id, 3);
    const log = t.log;
    expect(log.enabled).toBe(true);

    const page1 = (await log.list(sub.id, { limit: 2 }))!;
    expect(page1.deliveries).toHaveLength(2);
    expect(page1.next).toEqual(expect.any(String));
    const page2 = (await log.list(sub.id, { limit: 2, cursor: page1.next! }))!;
    expect(page2.deliveries).toHaveLength(1);
    expect(page2.next).toBeNull();
    const [first] = page1.deliveries;
    expect(first).toMatchObject({
      subscriptionId: sub.id,
      event: 'order.created',
      status: 'failed',
      attempts: 2,
    });
    expect(first.createdAt).toBeInstanceOf(Date);
    expect(first.url).toBe(`${receiver.url}/svc`);

    // scopes: alice sees it, bob does not; unscoped sees everything
    expect(await log.list(sub.id, { user: 'bob' })).toBeNull();
    expect((await log.list(sub.id, { user: 'alice', status: 'failed' }))!.deliveries).toHaveLength(3);
    expect(await log.get(sub.id, first.id, { user: 'bob' })).toBeNull();
    const details = (await log.get(sub.id, first.id))!;
    expect(details.attemptLog.map((a) => a.number)).toEqual([1, 2]);
    expect(JSON.parse(details.payload!)).toEqual({ i: expect.any(Number) });

    await expect(log.list(sub.id, { limit: 0 })).rejects.toBeInstanceOf(InvalidParameterError);
    await expect(log.list(sub.id, { status: 'nope' })).rejects.toMatchObject({ parameter: 'status' });
    await expect(log.list(sub.id, { cursor: 'abc' })).rejects.toMatchObject({ parameter: 'cursor' });
    await expect(log.recover(sub.id, new Date(Date.now() + 60_000))).rejects.toMatchObject({
      parameter: 'since',
    });
    expect(await log.redeliver(sub.id, first.id, { user: 'bob' })).toBeNull();
    expect(await log.recover(sub.id, 0, { user: 'bob' })).toBeNull();

    receiver.reply = () => ({ status: 200 });
    const r = (await log.redeliver(sub.id, first.id))!;
    expect(r.scheduled).toBe(true);
    expect(r.delivery.status).toBe('pending');
    await until(async () => (await log.get(sub.id, first.id))!.status === 'succeeded', 'the redelivery');
    expect(await log.recover(sub.id, new Date(0), { user: 'alice' })).toBe(2);
    await until(
      async () => (await log.list(sub.id, { status: 'succeeded' }))!.deliveries.length === 3,
      'the recovery',
    );
  });
});
