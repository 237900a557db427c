import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Inject,
  Injectable,
  ValidationPipe,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import type { LookupAddress } from 'node:dns';
import request from 'supertest';
import type { DataSource, Repository } from 'typeorm';
import {
  EventService,
  Subscriber,
  THORN_OPTIONS,
  ThornModule,
  blockInternalIps,
  ensureProtocol,
  verify,
  type LookupLike,
  type ResolvedThornOptions,
  type ThornModuleOptions,
} from '../../lib/index.js';
import { testDatabases } from '../fixtures/databases.js';
import { TestReceiver } from '../fixtures/receiver.js';

/** Fixed DNS answers, so no test touches the network; unknown names fail like getaddrinfo. */
const HOSTS: Record<string, string> = {
  'hooks.example.com': '93.184.216.34',
  'other.example.com': '93.184.216.35',
  'intranet.example.com': '10.0.0.7',
  'metadata.example.com': '169.254.169.254',
  localhost: '127.0.0.1',
};
const fakeLookup: LookupLike = (hostname, _opts, cb) => {
  const address = HOSTS[hostname.toLowerCase()];
  if (!address) {
    cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname }), []);
    return;
  }
  cb(null, [{ address, family: address.includes(':') ? 6 : 4 } as LookupAddress]);
};

const FIELDS = [
  'id',
  'event',
  'url',
  'content_type',
  'user',
  'hmac_secret',
  'hmac_digest',
  'active',
  'disabled_at',
  'disabled_reason',
  'consecutive_failures',
  'failing_since',
  'created_at',
  'updated_at',
  'subscription',
].sort();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const VALID = { event: 'article.created', url: 'https://hooks.example.com/in' };
const ALICE = { 'x-user': 'alice' };
const BOB = { 'x-user': 'bob' };

/** The answer's messages, as a list. */
function messagesOf(res: request.Response): string[] {
  return [res.body?.message].flat().map(String);
}
/** True if one message is about `field` (`<field> ...`, or `property <field> ...` for unknown fields). */
function namesField(res: request.Response, field: string): boolean {
  return messagesOf(res).some((m) => m.startsWith(`${field} `) || m.startsWith(`property ${field} `));
}

/** Sets the user from the `x-auth` header, like a passport AuthGuard would (for the default `getUser`). */
@Injectable()
class HeaderAuthGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest();
    const name = req.headers['x-auth'];
    if (name) req.user = { id: name };
    return true;
  }
}

/** Refuses requests carrying `x-deny`; injected, to show guard classes get DI. */
@Injectable()
class DenyGuard implements CanActivate {
  constructor(@Inject(THORN_OPTIONS) readonly options: ResolvedThornOptions) {}
  canActivate(ctx: ExecutionContext): boolean {
    return ctx.switchToHttp().getRequest().headers['x-deny'] === undefined;
  }
}

describe.each(testDatabases)('/hooks REST API ($name)', (db) => {
  let app: INestApplication | undefined;
  let dataSource: DataSource;
  let repo: Repository<Subscriber>;
  let http: ReturnType<typeof request>;

  async function boot(
    options: ThornModuleOptions & Record<string, unknown> = {},
    setup?: (app: INestApplication) => void,
    appOptions: Record<string, unknown> = {},
  ) {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot(db.options([Subscriber])),
        ThornModule.forRoot({
          getUser: (req: any) => req.headers['x-user'],
          lookup: fakeLookup,
          ...options,
        }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false, ...appOptions });
    setup?.(app);
    // listening on one port, so subscription URLs built from the Host header stay the same across requests
    await app.listen(0, '127.0.0.1');
    dataSource = app.get(getDataSourceToken());
    repo = dataSource.getRepository(Subscriber);
    http = request(app.getHttpServer());
  }

  async function close() {
    await app?.close();
    app = undefined;
  }

  describe('contract', () => {
    afterEach(close);

    it('creates, lists, reads, replaces, patches and deletes, each user seeing only their own', async () => {
      await boot();
      const created = await http.post('/hooks').set(ALICE).send(VALID).expect(201);
      const a = created.body;
      expect(Object.keys(a).sort()).toEqual(FIELDS);
      expect(a).toMatchObject({
        event: 'article.created',
        url: 'https://hooks.example.com/in',
        content_type: 'application/json',
        user: 'alice',
        hmac_digest: 'sha256',
      });
      expect(a.id).toMatch(UUID);
      expect(a.hmac_secret).toHaveLength(64);
      expect(a.created_at).toMatch(ISO);
      expect(a.updated_at).toMatch(ISO);
      expect(a.subscription).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/hooks/${a.id}$`));
      expect(created.headers.location).toBe(a.subscription);
      const stored = await repo.findOneByOrFail({ id: a.id });
      expect(stored).toMatchObject({ user: 'alice', hmacSecret: a.hmac_secret, event: 'article.created' });

      // the Location header is a working URL of the detail route
      const viaLocation = await http.get(new URL(created.headers.location).pathname).set(ALICE).expect(200);
      expect(viaLocation.body).toEqual(a);

      const b = (
        await http
          .post('/hooks')
          .set(BOB)
          .send({
            event: 'article.#',
            url: 'https://other.example.com/bob',
            content_type: 'application/x-www-form-urlencoded',
            hmac_secret: 'bob-chose-this-secret',
            hmac_digest: 'SHA512',
          })
          .expect(201)
      ).body;
      expect(b).toMatchObject({
        user: 'bob',
        hmac_secret: 'bob-chose-this-secret',
        hmac_digest: 'sha512',
        content_type: 'application/x-www-form-urlencoded',
      });
      expect((await repo.findOneByOrFail({ id: b.id })).hmacDigest).toBe('sha512');

      // a list never carries the secrets: only create and the detail route show them
      const secretless = (s: Record<string, unknown>) => {
        const { hmac_secret: _secret, ...rest } = s;
        return rest;
      };
      const aliceList = (await http.get('/hooks').set(ALICE).expect(200)).body;
      expect(aliceList).toEqual([secretless(a)]);
      expect(Object.keys(aliceList[0]).sort()).toEqual(FIELDS.filter((f) => f !== 'hmac_secret'));
      expect((await http.get('/hooks').set(BOB).expect(200)).body).toEqual([secretless(b)]);
      expect((await http.get(`/hooks/${b.id}`).set(BOB).expect(200)).body.hmac_secret).toBe(
        'bob-chose-this-secret',
      );
      expect((await http.get('/hooks').set({ 'x-user': 'carol' }).expect(200)).body).toEqual([]);

      // someone else's, unknown and malformed ids are all "not found"
      await http.get(`/hooks/${b.id}`).set(ALICE).expect(404);
      await http.get('/hooks/00000000-0000-4000-8000-000000000000').set(ALICE).expect(404);
      for (const bad of ['not-a-uuid', '1', "1' OR '1'='1", `${a.id}x`]) {
        const res = await http.get(`/hooks/${encodeURIComponent(bad)}`).set(ALICE);
        expect(res.status).toBe(404);
      }
      expect((await http.get(`/hooks/${a.id.toUpperCase()}`).set(ALICE).expect(200)).body.id).toBe(a.id);

      // PUT: full update; fields left out keep their value
      const put = await http
        .put(`/hooks/${a.id}`)
        .set(ALICE)
        .send({ event: 'article.removed', url: 'https://hooks.example.com/v2' })
        .expect(200);
      expect(put.body).toMatchObject({
        id: a.id,
        event: 'article.removed',
        url: 'https://hooks.example.com/v2',
        user: 'alice',
        subscription: a.subscription,
      });
      expect(put.body).not.toHaveProperty('hmac_secret');
      expect(await repo.findOneByOrFail({ id: a.id })).toMatchObject({ event: 'article.removed' });
      const putWithoutUrl = await http.put(`/hooks/${a.id}`).set(ALICE).send({ event: 'x.y' }).expect(400);
      expect(namesField(putWithoutUrl, 'url')).toBe(true);
      await http.put(`/hooks/${b.id}`).set(ALICE).send(VALID).expect(404);

      // PATCH: partial update
      const patched = await http
        .patch(`/hooks/${a.id}`)
        .set(ALICE)
        .send({ hmac_digest: 'SHA1', hmac_secret: '0123456789abcdef' })
        .expect(200);
      expect(patched.body).toMatchObject({ event: 'article.removed', hmac_digest: 'sha1' });
      expect(patched.body).not.toHaveProperty('hmac_secret');
      expect(await repo.findOneByOrFail({ id: a.id })).toMatchObject({
        hmacDigest: 'sha1',
        hmacSecret: '0123456789abcdef',
      });
      await http.patch(`/hooks/${b.id}`).set(ALICE).send({ event: 'x.y' }).expect(404);
      expect(await repo.findOneByOrFail({ id: b.id })).toMatchObject({ event: 'article.#', user: 'bob' });

      // DELETE: someone else's is not found and stays; one's own is gone, 204 with no body
      await http.delete(`/hooks/${b.id}`).set(ALICE).expect(404);
      expect(await repo.countBy({ id: b.id })).toBe(1);
      const del = await http.delete(`/hooks/${a.id}`).set(ALICE).expect(204);
      expect(del.text).toBe('');
      expect(await repo.countBy({ id: a.id })).toBe(0);
      await http.get(`/hooks/${a.id}`).set(ALICE).expect(404);
      await http.delete(`/hooks/${a.id}`).set(ALICE).expect(404);
      expect((await http.get('/hooks').set(BOB).expect(200)).body).toEqual([secretless(b)]);
    });

    it('answers 401 on every route without a user, and changes nothing', async () => {
      await boot();
      const own = (await http.post('/hooks').set(ALICE).send(VALID).expect(201)).body;
      const anonymous = [
        http.get('/hooks'),
        http.post('/hooks').send(VALID),
        http.get(`/hooks/${own.id}`),
        http.put(`/hooks/${own.id}`).send(VALID),
        http.patch(`/hooks/${own.id}`).send({ event: 'x.y' }),
        http.delete(`/hooks/${own.id}`),
        http.post('/hooks').set({ 'x-user': '' }).send(VALID),
      ];
      for (const req of anonymous) {
        const res = await req;
        expect(res.status).toBe(401);
        expect(messagesOf(res).join()).toMatch(/authentication required/);
      }
      expect(await repo.find()).toEqual([expect.objectContaining({ id: own.id, event: VALID.event })]);
    });

    it('stores the string form of a non-string user id', async () => {
      await boot({ getUser: () => 42 });
      const res = await http.post('/hooks').send(VALID).expect(201);
      expect(res.body.user).toBe('42');
      expect((await repo.findOneByOrFail({ id: res.body.id })).user).toBe('42');
      expect((await http.get('/hooks').expect(200)).body).toHaveLength(1);
    });

    it.each([
      [
        'an object (the user itself)',
        (req: any) => ({ id: req.headers['x-user'] }),
        'a value of type object',
      ],
      ['a boolean', (req: any) => Boolean(req.headers['x-user']), 'a value of type boolean'],
      ['NaN', () => NaN, 'NaN'],
    ])(
      'a getUser returning %s is a server error on every route, never one id shared by all users',
      async (_kind, getUser, returned) => {
        const logged: string[] = [];
        const logger = {
          log() {},
          warn() {},
          debug() {},
          verbose() {},
          error: (message: unknown) => void logged.push(String(message)),
        };
        await boot({ getUser: getUser as any }, undefined, { logger });
        // what String() of those values would have been: rows no such request may see or add to
        await repo.save(['[object Object]', 'true', 'NaN'].map((user) => repo.create({ ...VALID, user })));
        const id = (await repo.findOneByOrFail({ user: '[object Object]' })).id;
        for (const who of [ALICE, BOB]) {
          const answers = [
            http.get('/hooks'),
            http.post('/hooks').send(VALID),
            http.get(`/hooks/${id}`),
            http.put(`/hooks/${id}`).send(VALID),
            http.patch(`/hooks/${id}`).send({ event: 'x.y' }),
            http.delete(`/hooks/${id}`),
          ];
          for (const req of answers) {
            const res = await req.set(who);
            expect(res.status).toBe(500);
            // the client learns nothing about the user object or the configuration
            expect(res.body).toEqual({ statusCode: 500, message: 'Internal server error' });
          }
        }
        expect(await repo.count()).toBe(3);
        expect((await repo.findOneByOrFail({ id })).event).toBe(VALID.event);
        // the server log says what is wrong and what to do
        expect(logged).toHaveLength(12);
        for (const line of logged) {
          expect(line).toBe(
            `Error: ThornModule option "getUser" returned ${returned}, not a user id: return a string or a finite number (e.g. req.user?.id), or null/undefined when there is no user`,
          );
        }
      },
    );

    it('runs the `guards` option on every route: a refusal is 403, and 401 when there is no user', async () => {
      await boot({ guards: [DenyGuard] });
      const own = (await http.post('/hooks').set(ALICE).send(VALID).expect(201)).body;
      const denied = [
        http.get('/hooks'),
        http.post('/hooks').send(VALID),
        http.get(`/hooks/${own.id}`),
        http.put(`/hooks/${own.id}`).send(VALID),
        http.patch(`/hooks/${own.id}`).send({ event: 'x.y' }),
        http.delete(`/hooks/${own.id}`),
      ];
      for (const req of denied) expect((await req.set({ ...ALICE, 'x-deny': '1' })).status).toBe(403);
      expect((await http.get('/hooks').set({ 'x-deny': '1' })).status).toBe(401);
      expect(await repo.count()).toBe(1);
      expect((await http.get(`/hooks/${own.id}`).set(ALICE)).status).toBe(200);
    });

    it('accepts guard instances, and runs guards before the user check so they can authenticate', async () => {
      const calls: string[] = [];
      const counting: CanActivate = {
        canActivate: (ctx) => {
          calls.push(ctx.switchToHttp().getRequest().method);
          return true;
        },
      };
      // default getUser (req.user?.id), filled in by HeaderAuthGuard
      await boot({ getUser: undefined, guards: [HeaderAuthGuard, counting] });
      const res = await http.post('/hooks').set({ 'x-auth': 'dave' }).send(VALID).expect(201);
      expect(res.body.user).toBe('dave');
      await http.get('/hooks').expect(401);
      expect(calls).toEqual(['POST', 'GET']);
    });

    it('accepts sha1/sha256/sha512 in any case and content types case-insensitively', async () => {
      await boot();
      for (const [given, stored] of [
        ['sha1', 'sha1'],
        ['Sha256', 'sha256'],
        ['SHA512', 'sha512'],
      ]) {
        const res = await http
          .post('/hooks')
          .set(ALICE)
          .send({ ...VALID, hmac_digest: given, content_type: 'Application/JSON' })
          .expect(201);
        expect(res.body).toMatchObject({ hmac_digest: stored, content_type: 'application/json' });
      }
    });
  });

  describe('bad input', () => {
    let existing: any;

    beforeAll(async () => {
      await boot();
      existing = (await http.post('/hooks').set(ALICE).send(VALID).expect(201)).body;
    });
    afterAll(close);

    interface BadCase {
      name: string;
      /** an object/array is sent as JSON; a string is sent as is */
      body?: unknown;
      type?: string;
      field: string;
      method?: 'post' | 'put' | 'patch';
    }
    const long = (n: number) => 'a'.repeat(n);
    const cases: BadCase[] = [
      // missing, blank, too long
      { name: 'missing event', body: { url: VALID.url }, field: 'event' },
      { name: 'missing url', body: { event: VALID.event }, field: 'url' },
      { name: 'empty object', body: {}, field: 'event' },
      { name: 'empty event', body: { ...VALID, event: '' }, field: 'event' },
      { name: 'blank event', body: { ...VALID, event: '   ' }, field: 'event' },
      { name: 'empty url', body: { ...VALID, url: '' }, field: 'url' },
      { name: 'blank url', body: { ...VALID, url: ' \t ' }, field: 'url' },
      { name: 'event over 190 characters', body: { ...VALID, event: long(191) }, field: 'event' },
      {
        name: 'url over 2048 characters',
        body: { ...VALID, url: `https://hooks.example.com/${long(2030)}` },
        field: 'url',
      },
      // wrong types
      { name: 'event is a number', body: { ...VALID, event: 42 }, field: 'event' },
      { name: 'event is an array', body: { ...VALID, event: ['article.created'] }, field: 'event' },
      { name: 'event is an object', body: { ...VALID, event: { name: 'x' } }, field: 'event' },
      { name: 'event is null', body: { ...VALID, event: null }, field: 'event' },
      { name: 'url is a number', body: { ...VALID, url: 80 }, field: 'url' },
      { name: 'url is an array', body: { ...VALID, url: [VALID.url] }, field: 'url' },
      { name: 'url is a boolean', body: { ...VALID, url: true }, field: 'url' },
      { name: 'content_type is a number', body: { ...VALID, content_type: 1 }, field: 'content_type' },
      { name: 'content_type is null', body: { ...VALID, content_type: null }, field: 'content_type' },
      { name: 'hmac_digest is an array', body: { ...VALID, hmac_digest: ['sha256'] }, field: 'hmac_digest' },
      {
        name: 'hmac_secret is a number',
        body: { ...VALID, hmac_secret: 1234567890123456 },
        field: 'hmac_secret',
      },
      // event patterns
      { name: 'event with an empty word', body: { ...VALID, event: 'article..created' }, field: 'event' },
      { name: 'event with "#" in the middle', body: { ...VALID, event: 'a.#.b' }, field: 'event' },
      { name: 'event with "*" inside a word', body: { ...VALID, event: 'art*cle.created' }, field: 'event' },
      { name: 'event with outer white space', body: { ...VALID, event: ' article.created' }, field: 'event' },
      // URLs: not URLs, schemes, internal addresses in odd forms, ports, DNS
      { name: 'url is not a URL', body: { ...VALID, url: 'not a url' }, field: 'url' },
      { name: 'url is relative', body: { ...VALID, url: '/hooks/in' }, field: 'url' },
      { name: 'javascript: url', body: { ...VALID, url: 'javascript:alert(1)' }, field: 'url' },
      { name: 'file: url', body: { ...VALID, url: 'file:///etc/passwd' }, field: 'url' },
      { name: 'gopher: url', body: { ...VALID, url: 'gopher://hooks.example.com/_x' }, field: 'url' },
      { name: 'ftp: url', body: { ...VALID, url: 'ftp://hooks.example.com/x' }, field: 'url' },
      { name: 'data: url', body: { ...VALID, url: 'data:text/plain,hi' }, field: 'url' },
      { name: 'loopback literal', body: { ...VALID, url: 'http://127.0.0.1/' }, field: 'url' },
      {
        name: 'decimal loopback http://2130706433/',
        body: { ...VALID, url: 'http://2130706433/' },
        field: 'url',
      },
      { name: 'hex loopback http://0x7f.1/', body: { ...VALID, url: 'http://0x7f.1/' }, field: 'url' },
      { name: 'octal loopback', body: { ...VALID, url: 'http://0177.0.0.1/' }, field: 'url' },
      { name: 'short loopback http://127.1/', body: { ...VALID, url: 'http://127.1/' }, field: 'url' },
      {
        name: 'IPv4-mapped loopback http://[::ffff:127.0.0.1]/',
        body: { ...VALID, url: 'http://[::ffff:127.0.0.1]/' },
        field: 'url',
      },
      { name: 'NAT64 loopback', body: { ...VALID, url: 'http://[64:ff9b::7f00:1]/' }, field: 'url' },
      { name: 'IPv6 loopback', body: { ...VALID, url: 'http://[::1]/' }, field: 'url' },
      { name: 'IPv6 unique local', body: { ...VALID, url: 'https://[fd00::1]/' }, field: 'url' },
      { name: 'private network', body: { ...VALID, url: 'http://10.1.2.3/' }, field: 'url' },
      {
        name: 'cloud metadata',
        body: { ...VALID, url: 'http://169.254.169.254/latest/meta-data' },
        field: 'url',
      },
      { name: 'localhost by name', body: { ...VALID, url: 'http://localhost/' }, field: 'url' },
      {
        name: 'name resolving to a private address',
        body: { ...VALID, url: 'https://intranet.example.com/' },
        field: 'url',
      },
      { name: 'port not allowed', body: { ...VALID, url: 'https://hooks.example.com:8443/' }, field: 'url' },
      { name: 'unresolvable host', body: { ...VALID, url: 'https://nowhere.example.com/' }, field: 'url' },
      // enums and secrets
      { name: 'unknown content_type', body: { ...VALID, content_type: 'text/plain' }, field: 'content_type' },
      { name: 'empty content_type', body: { ...VALID, content_type: '' }, field: 'content_type' },
      { name: 'unknown hmac_digest md5', body: { ...VALID, hmac_digest: 'md5' }, field: 'hmac_digest' },
      { name: 'unknown hmac_digest sha384', body: { ...VALID, hmac_digest: 'sha384' }, field: 'hmac_digest' },
      { name: 'null hmac_digest', body: { ...VALID, hmac_digest: null }, field: 'hmac_digest' },
      { name: 'short hmac_secret', body: { ...VALID, hmac_secret: 'short' }, field: 'hmac_secret' },
      {
        name: 'hmac_secret of 15 characters',
        body: { ...VALID, hmac_secret: long(15) },
        field: 'hmac_secret',
      },
      {
        name: 'hmac_secret over 1024 characters',
        body: { ...VALID, hmac_secret: long(1025) },
        field: 'hmac_secret',
      },
      // read-only and unknown fields
      { name: 'setting user', body: { ...VALID, user: 'bob' }, field: 'user' },
      { name: 'setting user to null', body: { ...VALID, user: null }, field: 'user' },
      { name: 'setting id', body: { ...VALID, id: '00000000-0000-4000-8000-000000000000' }, field: 'id' },
      {
        name: 'setting created_at',
        body: { ...VALID, created_at: '2020-01-01T00:00:00Z' },
        field: 'created_at',
      },
      { name: 'setting subscription', body: { ...VALID, subscription: 'http://x/' }, field: 'subscription' },
      { name: 'camelCase field', body: { ...VALID, hmacSecret: long(20) }, field: 'hmacSecret' },
      { name: 'unknown field', body: { ...VALID, active: true }, field: 'active' },
      // bodies that are no JSON object
      { name: 'array body', body: [VALID], field: 'body' },
      { name: 'empty array body', body: [], field: 'body' },
      { name: 'JSON string body', body: '"article.created"', type: 'application/json', field: 'body' },
      { name: 'JSON number body', body: '42', type: 'application/json', field: 'body' },
      { name: 'JSON null body', body: 'null', type: 'application/json', field: 'body' },
      { name: 'truncated JSON', body: '{"event": "a.b", "url": ', type: 'application/json', field: 'body' },
      {
        name: 'JSON with a trailing comma',
        body: '{"event": "a.b",}',
        type: 'application/json',
        field: 'body',
      },
      { name: 'not JSON at all', body: 'event=a.b', type: 'application/json', field: 'body' },
      { name: 'text/plain body', body: JSON.stringify(VALID), type: 'text/plain', field: 'body' },
      {
        name: 'form-encoded body',
        body: new URLSearchParams(VALID).toString(),
        type: 'application/x-www-form-urlencoded',
        field: 'body',
      },
      { name: 'no body at all', field: 'body' },
      {
        name: 'unsupported charset',
        body: JSON.stringify(VALID),
        type: 'application/json; charset=latin1',
        field: 'body',
      },
      { name: 'body over 16 KiB', body: { ...VALID, hmac_secret: long(20_000) }, field: 'body' },
      {
        name: 'body over the app parser limit (200 KB)',
        body: { ...VALID, pad: long(200_000) },
        field: 'body',
      },
      // updates
      { name: 'PUT without url', method: 'put', body: { event: 'x.y' }, field: 'url' },
      {
        name: 'PUT with a blocked url',
        method: 'put',
        body: { ...VALID, url: 'http://0x7f000001/' },
        field: 'url',
      },
      { name: 'PATCH with a blank event', method: 'patch', body: { event: ' ' }, field: 'event' },
      { name: 'PATCH with null url', method: 'patch', body: { url: null }, field: 'url' },
      {
        name: 'PATCH with a gopher url',
        method: 'patch',
        body: { url: 'gopher://hooks.example.com/' },
        field: 'url',
      },
      { name: 'PATCH setting user', method: 'patch', body: { user: 'bob' }, field: 'user' },
      { name: 'PATCH setting id', method: 'patch', body: { id: 'other' }, field: 'id' },
      { name: 'PATCH with an array body', method: 'patch', body: [{ event: 'x.y' }], field: 'body' },
      {
        name: 'PATCH with malformed JSON',
        method: 'patch',
        body: '{',
        type: 'application/json',
        field: 'body',
      },
      {
        name: 'PATCH with an unknown digest',
        method: 'patch',
        body: { hmac_digest: 'crc32' },
        field: 'hmac_digest',
      },
      // NUL bytes: PostgreSQL rejects them in text columns, which must be a 400, not a 500
      { name: 'NUL in event', body: { ...VALID, event: 'article.\u0000created' }, field: 'event' },
      { name: 'NUL in url', body: { ...VALID, url: 'https://hooks.example.com/\u0000' }, field: 'url' },
      {
        name: 'NUL in hmac_secret',
        body: { ...VALID, hmac_secret: 'a'.repeat(20) + '\u0000' },
        field: 'hmac_secret',
      },
      {
        name: 'PATCH with a NUL in url',
        method: 'patch',
        body: { url: 'https://hooks.example.com/a\u0000b' },
        field: 'url',
      },
    ];

    it('has at least 40 cases', () => {
      expect(cases.length).toBeGreaterThanOrEqual(40);
    });

    it.each(cases)('$name → 400 naming "$field", nothing stored', async ({ body, type, field, method }) => {
      const before = await repo.find({ order: { id: 'ASC' } });
      const m = method ?? 'post';
      let req = http[m](m === 'post' ? '/hooks' : `/hooks/${existing.id}`).set(ALICE);
      if (type) req = req.set('Content-Type', type);
      const res = await (body === undefined ? req : req.send(body as object));
      if (process.env.SHOW_MESSAGES) console.log(res.status, JSON.stringify(res.body));
      expect(res.status).toBe(400);
      expect({ messages: messagesOf(res), names: namesField(res, field) }).toEqual({
        messages: expect.any(Array),
        names: true,
      });
      expect(await repo.find({ order: { id: 'ASC' } })).toEqual(before);
    });
  });

  describe('options', () => {
    afterEach(close);

    it('caps the subscriptions one user may hold (maxSubscriptionsPerUser), per user', async () => {
      await boot({ maxSubscriptionsPerUser: 2 });
      const first = await http.post('/hooks').set(ALICE).send(VALID).expect(201);
      await http.post('/hooks').set(ALICE).send(VALID).expect(201);
      const over = await http.post('/hooks').set(ALICE).send(VALID).expect(409);
      expect(over.body.message).toMatch(/subscription limit reached: a user may hold 2 subscriptions/);
      await http.post('/hooks').set(BOB).send(VALID).expect(201);
      expect(await repo.countBy({ user: 'alice' })).toBe(2);
      await http.delete(`/hooks/${first.body.id}`).set(ALICE).expect(204);
      await http.post('/hooks').set(ALICE).send(VALID).expect(201);
    });

    it('holds the quota under concurrent creates: 50 at once with room for 5 store exactly 5', async () => {
      await boot({ maxSubscriptionsPerUser: 5 });
      await http.post('/hooks').set(BOB).send(VALID).expect(201);
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => http.post('/hooks').set(ALICE).send(VALID)),
      );
      const statuses = answers.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 201)).toHaveLength(5);
      expect(statuses.filter((s) => s === 409)).toHaveLength(45);
      expect(await repo.countBy({ user: 'alice' })).toBe(5);
      // the other user's room is untouched, and the queue leaves nothing behind for a later create
      await http.post('/hooks').set(BOB).send(VALID).expect(201);
      await http.post('/hooks').set(ALICE).send(VALID).expect(409);
    });

    it('accepts only eventChoices when set', async () => {
      await boot({ eventChoices: ['article.created', 'article.removed'] });
      const ok = await http.post('/hooks').set(ALICE).send(VALID).expect(201);
      for (const event of ['article.*', 'user.created', '*']) {
        const res = await http
          .post('/hooks')
          .set(ALICE)
          .send({ ...VALID, event })
          .expect(400);
        expect(messagesOf(res)).toEqual(['event must be one of article.created, article.removed']);
      }
      await http.patch(`/hooks/${ok.body.id}`).set(ALICE).send({ event: 'article.#' }).expect(400);
      await http.patch(`/hooks/${ok.body.id}`).set(ALICE).send({ event: 'article.removed' }).expect(200);
      expect(await repo.find()).toEqual([expect.objectContaining({ event: 'article.removed' })]);
    });

    it('accepts the content types of custom codecs', async () => {
      await boot({ codecs: { 'application/vnd.thorn+text': (p) => String(p) } });
      const res = await http
        .post('/hooks')
        .set(ALICE)
        .send({ ...VALID, content_type: 'application/vnd.thorn+text' })
        .expect(201);
      expect(res.body.content_type).toBe('application/vnd.thorn+text');
    });

    it('mounts at a custom path, and nothing at /hooks', async () => {
      await boot({ path: 'api/webhooks' });
      const res = await http.post('/api/webhooks').set(ALICE).send(VALID).expect(201);
      expect(res.body.subscription).toMatch(
        new RegExp(`^http://127\\.0\\.0\\.1:\\d+/api/webhooks/${res.body.id}$`),
      );
      expect(res.headers.location).toBe(res.body.subscription);
      await http.get(`/api/webhooks/${res.body.id}`).set(ALICE).expect(200);
      await http.get('/hooks').set(ALICE).expect(404);
      await http.post('/hooks').set(ALICE).send(VALID).expect(404);
      const malformed = await http
        .post('/api/webhooks')
        .set(ALICE)
        .set('Content-Type', 'application/json')
        .send('{');
      expect(malformed.status).toBe(400);
      expect(messagesOf(malformed)[0]).toMatch(/^body is not valid JSON/);
    });

    it("keeps the app's global prefix in subscription URLs and body errors", async () => {
      await boot({}, (a) => a.setGlobalPrefix('v2'));
      const res = await http.post('/v2/hooks').set(ALICE).send(VALID).expect(201);
      expect(res.body.subscription).toMatch(
        new RegExp(`^http://127\\.0\\.0\\.1:\\d+/v2/hooks/${res.body.id}$`),
      );
      const list = await http.get('/v2/hooks?page=1').set(ALICE).expect(200);
      expect(list.body[0].subscription).toBe(res.body.subscription);
      const one = await http.get(`/v2/hooks/${res.body.id}/`).set(ALICE).expect(200);
      expect(one.body.subscription).toBe(res.body.subscription);
      const big = await http
        .post('/v2/hooks')
        .set(ALICE)
        .send({ ...VALID, pad: 'x'.repeat(200_000) });
      expect(big.status).toBe(400);
      expect(messagesOf(big)).toEqual(['body is too large: the limit is 102400 bytes']);
    });

    it('uses X-Forwarded-* for subscription URLs when the app trusts its proxy', async () => {
      await boot({}, (a) => (a as any).set('trust proxy', true));
      const res = await http
        .post('/hooks')
        .set({ ...ALICE, 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'api.example.org' })
        .send(VALID)
        .expect(201);
      expect(res.headers.location).toBe(`https://api.example.org/hooks/${res.body.id}`);
    });

    it('works when the app runs without a body parser', async () => {
      await boot({}, undefined, { bodyParser: false });
      const res = await http.post('/hooks').set(ALICE).send(VALID).expect(201);
      expect(res.body.event).toBe(VALID.event);
      for (const [body, message] of [
        ['{"event":', /^body is not valid JSON/],
        ['[]', /^body must be a JSON object, not an array$/],
        [JSON.stringify({ ...VALID, hmac_secret: 'x'.repeat(20_000) }), /^body is too large/],
      ] as const) {
        const bad = await http.post('/hooks').set(ALICE).set('Content-Type', 'application/json').send(body);
        expect(bad.status).toBe(400);
        expect(messagesOf(bad)[0]).toMatch(message);
      }
      await http.patch(`/hooks/${res.body.id}`).set(ALICE).send({ event: 'x.y' }).expect(200);
      expect(await repo.find()).toEqual([expect.objectContaining({ event: 'x.y' })]);
    });

    it('keeps every rule under an app-wide ValidationPipe', async () => {
      await boot({ eventChoices: ['article.created'] }, (a) =>
        a.useGlobalPipes(
          new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }),
        ),
      );
      const res = await http
        .post('/hooks')
        .set(ALICE)
        .send({ ...VALID, hmac_digest: 'SHA1' })
        .expect(201);
      expect(res.body.hmac_digest).toBe('sha1');
      const blocked = await http
        .post('/hooks')
        .set(ALICE)
        .send({ ...VALID, url: 'http://10.0.0.1/' })
        .expect(400);
      expect(messagesOf(blocked)).toEqual([expect.stringMatching(/^url is not allowed: 10\.0\.0\.1 /)]);
      const notAChoice = await http
        .post('/hooks')
        .set(ALICE)
        .send({ ...VALID, event: 'user.created' })
        .expect(400);
      expect(messagesOf(notAChoice)).toEqual(['event must be one of article.created']);
      await http
        .post('/hooks')
        .set(ALICE)
        .send({ ...VALID, user: 'bob' })
        .expect(400);
      expect(await repo.find()).toEqual([expect.objectContaining({ user: 'alice', hmacDigest: 'sha1' })]);
    });

    it('mounts nothing with controller: false', async () => {
      await boot({ controller: false });
      await http.get('/hooks').set(ALICE).expect(404);
      await http.post('/hooks').set(ALICE).send(VALID).expect(404);
      expect(await repo.count()).toBe(0);
    });
  });

  describe('delivery to a subscription made through the API', () => {
    let receiver: TestReceiver;
    beforeAll(async () => {
      receiver = await new TestReceiver().start();
    });
    afterAll(async () => {
      await receiver.stop();
    });
    afterEach(async () => {
      await close();
      receiver.reset();
    });

    it('signs with the returned hmac_secret and hmac_digest, follows updates, stops after delete', async () => {
      await boot({
        recipientValidators: [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http', 'https')],
        retry: false,
      });
      const events = app!.get(EventService);
      const sub = (
        await http
          .post('/hooks')
          .set(ALICE)
          .send({ event: 'article.*', url: `${receiver.url}/hook`, hmac_digest: 'SHA512' })
          .expect(201)
      ).body;
      expect(sub.hmac_digest).toBe('sha512');

      await events.send('article.created', { id: 1, title: 'Hello' }, { sender: 'alice' });
      expect(receiver.requests).toHaveLength(1);
      const first = receiver.requests[0];
      expect(first.path).toBe('/hook');
      expect(first.json()).toEqual({ id: 1, title: 'Hello' });
      expect(first.headers['hook-subscription']).toBe(sub.id);
      expect(verify(first.headers['hook-hmac'] as string, sub.hmac_digest, sub.hmac_secret, first.body)).toBe(
        true,
      );
      expect(verify(first.headers['hook-hmac'] as string, sub.hmac_digest, 'x'.repeat(64), first.body)).toBe(
        false,
      );

      // bob's events don't reach alice's subscription
      await events.send('article.created', { id: 2 }, { sender: 'bob' });
      expect(receiver.requests).toHaveLength(1);

      const patched = (
        await http
          .patch(`/hooks/${sub.id}`)
          .set(ALICE)
          .send({
            hmac_secret: 'a-new-secret-of-the-owner',
            hmac_digest: 'sha1',
            content_type: 'application/x-www-form-urlencoded',
          })
          .expect(200)
      ).body;
      expect(patched).toMatchObject({
        hmac_digest: 'sha1',
        content_type: 'application/x-www-form-urlencoded',
      });
      await events.send('article.changed', { id: 1, title: 'Hi' }, { sender: 'alice' });
      expect(receiver.requests).toHaveLength(2);
      const second = receiver.requests[1];
      expect(second.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(second.text).toBe('id=1&title=Hi');
      expect(
        verify(second.headers['hook-hmac'] as string, 'sha1', 'a-new-secret-of-the-owner', second.body),
      ).toBe(true);

      await http.delete(`/hooks/${sub.id}`).set(ALICE).expect(204);
      const result = await events.send('article.removed', { id: 1 }, { sender: 'alice' });
      expect(result.deliveries).toEqual([]);
      expect(receiver.requests).toHaveLength(2);
    });
  });
});
