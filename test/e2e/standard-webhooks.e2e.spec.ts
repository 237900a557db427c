// SPEC §12 over real HTTP, on every dispatcher (direct, bull, bullmq) and database: every attempt signed afresh,
// whsec_ secrets as the official Standard Webhooks and Svix verifiers take them (exactly as /hooks returned them),
// secret rotation with its grace period, and no secret on the queue.
import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { getDataSourceToken } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import request from 'supertest';
import { Webhook as SvixWebhook } from 'svix';
import type { DataSource } from 'typeorm';
import {
  Dispatcher,
  EventService,
  Subscriber,
  SubscriptionService,
  verifyHookHmac,
  verifyStandardWebhook,
  type ThornModuleOptions,
} from '../../lib/index.js';
import type { TestQueue } from '../fixtures/queues.js';
import type { ReceivedRequest } from '../fixtures/receiver.js';
import { DISPATCHER_CASES, hooksSuite, redisUrl, until } from '../fixtures/hooks-suite.js';

const headersOf = (r: ReceivedRequest) => r.headers as Record<string, string>;

/**
 * Svix's `Webhook.verify()`: it checks the signature, then parses the body as JSON (it has no option not to), so a
 * form-encoded body that passed the signature check ends in a SyntaxError, and only that is accepted for one.
 */
function svixVerify(r: ReceivedRequest, secret: string): void {
  try {
    new SvixWebhook(secret).verify(r.text, headersOf(r));
  } catch (err) {
    const json = String(r.headers['content-type']).startsWith('application/json');
    if (json || (err as Error).name !== 'SyntaxError') throw err;
  }
}

describe.each(DISPATCHER_CASES)(
  'Standard Webhooks, complete ($name dispatcher, $db.name)',
  ({ db, flavour }) => {
    const suite = hooksSuite('thorn-sw', db, flavour);
    const { receiver } = suite;

    async function boot(options: ThornModuleOptions = {}) {
      const app = await suite.boot({ standardWebhooks: true, retryDelay: 20, ...options });
      const http = () => request(app.getHttpServer());
      const repo = app.get<DataSource>(getDataSourceToken()).getRepository(Subscriber);
      return { http, repo, events: app.get(EventService) };
    }

    /** Both official verifiers and ours, with the secret as /hooks returned it; throws if one refuses. */
    function verifyAll(r: ReceivedRequest, secret: string): void {
      new StandardWebhook(secret).verify(r.text, headersOf(r), { jsonParse: false });
      svixVerify(r, secret);
      verifyStandardWebhook(r.body, r.headers, { secrets: secret });
    }

    it('signs first attempts and each retry afresh (new timestamp, same id and body): the official verifiers accept them, JSON and form-encoded', async () => {
      const { http, events } = await boot({ retryMax: 1, retryDelay: 1100 });
      const secrets: Record<string, string> = {};
      for (const [path, type] of [
        ['json', 'application/json'],
        ['form', 'application/x-www-form-urlencoded'],
      ]) {
        const res = await http()
          .post('/hooks')
          .set('x-user', 'u1')
          .send({ event: 'order.*', url: `${receiver.url}/${path}`, content_type: type })
          .expect(201);
        // generated the Standard Webhooks way: whsec_ + Base64 of 32 random bytes
        expect(res.body.hmac_secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
        expect(Buffer.from(res.body.hmac_secret.slice(6), 'base64')).toHaveLength(32);
        secrets[`/${path}`] = res.body.hmac_secret;
      }
      // each receiver fails its first request: the retry comes more than a second later
      const seen = new Set<string>();
      receiver.reply = (r) => (seen.has(r.path) ? { status: 200 } : (seen.add(r.path), { status: 500 }));
      await events.send(
        'order.paid',
        { id: 7, note: 'crème & brûlée = 2', tags: ['a', 'b'] },
        { sender: 'u1' },
      );
      await receiver.waitFor(4, 15_000);

      for (const path of ['/json', '/form']) {
        const [first, retry] = receiver.requests.filter((r) => r.path === path);
        expect(retry).toBeDefined();
        for (const r of [first, retry]) verifyAll(r, secrets[path]);
        expect(retry.headers['webhook-id']).toBe(first.headers['webhook-id']);
        expect(retry.headers['hook-delivery']).toBe(first.headers['hook-delivery']);
        expect(retry.body.equals(first.body)).toBe(true);
        expect(Number(retry.headers['webhook-timestamp'])).toBeGreaterThan(
          Number(first.headers['webhook-timestamp']),
        );
        expect(retry.headers['webhook-signature']).not.toBe(first.headers['webhook-signature']);
        // Hook-HMAC: the secret string as given (not its decoded bytes)
        expect(verifyHookHmac(retry.body, retry.headers, { secrets: secrets[path] })).toBe(true);
      }
      const form = receiver.requests.find((r) => r.path === '/form')!;
      expect(form.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(new URLSearchParams(form.text).get('note')).toBe('crème & brûlée = 2');

      // a strict verifier refuses the first attempt's signature once it is old; the retry's is fresh
      const first = receiver.requests.find((r) => r.path === '/json')!;
      expect(() =>
        verifyStandardWebhook(first.body, first.headers, {
          secrets: secrets['/json'],
          tolerance: 0,
          now: Date.now() + 5000,
        }),
      ).toThrow(/too old/);

      if (flavour) {
        // nothing on the queue holds a secret (jobs carry signatures, never keys)
        const q = flavour.open(redisUrl!, suite.prefix());
        try {
          const jobs = await q.getJobs(['completed', 'waiting', 'delayed', 'failed', 'active']);
          expect(jobs.length).toBeGreaterThan(0);
          const text = JSON.stringify(jobs.map((j) => j.data));
          for (const s of Object.values(secrets)) {
            expect(text).not.toContain(s);
            expect(text).not.toContain(s.slice(6));
          }
          expect(jobs.some((j) => j.name === 'retry')).toBe(true);
        } finally {
          await q.close();
        }
      }
    });

    it('rotates a secret: both signatures during the grace period, the new one in Hook-HMAC, never an expired one', async () => {
      const { http, repo, events } = await boot();
      const created = await http()
        .post('/hooks')
        .set('x-user', 'u1')
        .send({ event: 'a.b', url: `${receiver.url}/r` })
        .expect(201);
      const id = created.body.id;
      const old = created.body.hmac_secret;

      // ownership, 404 and validation as for the other routes
      await http().post(`/hooks/${id}/rotate-secret`).set('x-user', 'u2').expect(404);
      await http().post(`/hooks/${randomUUID()}/rotate-secret`).set('x-user', 'u1').expect(404);
      await http().post('/hooks/not-a-uuid/rotate-secret').set('x-user', 'u1').expect(404);
      await http().post(`/hooks/${id}/rotate-secret`).expect(401);
      const short = await http()
        .post(`/hooks/${id}/rotate-secret`)
        .set('x-user', 'u1')
        .send({ hmac_secret: 'short' })
        .expect(400);
      expect(JSON.stringify(short.body.message)).toMatch(/hmac_secret must be at least 16 characters/);
      const extra = await http()
        .post(`/hooks/${id}/rotate-secret`)
        .set('x-user', 'u1')
        .send({ active: false })
        .expect(400);
      expect(JSON.stringify(extra.body.message)).toMatch(/active/);

      const rotated = await http().post(`/hooks/${id}/rotate-secret`).set('x-user', 'u1').expect(200);
      const fresh = rotated.body.hmac_secret;
      expect(fresh).toMatch(/^whsec_/);
      expect(fresh).not.toBe(old);
      expect(JSON.stringify(rotated.body)).not.toContain(old); // the previous secret is never shown
      expect(rotated.body.subscription).toMatch(new RegExp(`/hooks/${id}$`));

      await events.send('a.b', { n: 1 });
      await receiver.waitFor(1);
      const during = receiver.requests[0];
      expect((during.headers['webhook-signature'] as string).split(' ')).toHaveLength(2);
      verifyAll(during, fresh);
      verifyAll(during, old);
      expect(verifyHookHmac(during.body, during.headers, { secrets: fresh })).toBe(true);
      expect(verifyHookHmac(during.body, during.headers, { secrets: old })).toBe(false);

      // the grace period ends: only the new secret signs
      await repo.update({ id }, { previousHmacSecretExpiresAt: new Date(Date.now() - 1000) });
      receiver.reset();
      await events.send('a.b', { n: 2 });
      await receiver.waitFor(1);
      const after = receiver.requests[0];
      expect((after.headers['webhook-signature'] as string).split(' ')).toHaveLength(1);
      verifyAll(after, fresh);
      expect(() => new StandardWebhook(old).verify(after.text, headersOf(after))).toThrow();
      expect(() => svixVerify(after, old)).toThrow(
        expect.objectContaining({ name: 'WebhookVerificationError' }),
      );
      expect(() => verifyStandardWebhook(after.body, after.headers, { secrets: old })).toThrow(
        /No matching signature/,
      );

      // a chosen secret, through the injectable service too (same rules, scoped to the owner)
      const chosen = await http()
        .post(`/hooks/${id}/rotate-secret`)
        .set('x-user', 'u1')
        .send({ hmac_secret: 'a-chosen-secret-of-enough-length' })
        .expect(200);
      expect(chosen.body.hmac_secret).toBe('a-chosen-secret-of-enough-length');
      const service = suite.app().get(SubscriptionService);
      expect(await service.rotateSecret(id, { user: 'u2' })).toBeNull();
      const byService = await service.rotateSecret(id, { user: 'u1' });
      expect(byService!.hmacSecret).toMatch(/^whsec_/);
      await expect(service.rotateSecret(id, { hmacSecret: 'short' })).rejects.toThrow(/hmacSecret/);
    });

    it('a retry after a rotation is signed with the current secrets, read again (never the expired one)', async () => {
      const { http, repo, events } = await boot({ retryMax: 1, retryDelay: 50 });
      const created = await http()
        .post('/hooks')
        .set('x-user', 'u1')
        .send({ event: 'a.b', url: `${receiver.url}/r` })
        .expect(201);
      const { id, hmac_secret: old } = created.body;
      let rotate!: () => void;
      const rotatedNow = new Promise<void>((resolve) => (rotate = resolve));
      // the first attempt is held open until the secret has been rotated (and its grace ended), then fails
      receiver.reply = (_r, i) => (i === 0 ? { status: 500, hold: rotatedNow } : { status: 200 });
      await events.send('a.b', { n: 1 });
      await receiver.waitFor(1);
      const rotated = await http().post(`/hooks/${id}/rotate-secret`).set('x-user', 'u1').expect(200);
      await repo.update({ id }, { previousHmacSecretExpiresAt: new Date(Date.now() - 1000) });
      rotate();
      await receiver.waitFor(2);
      const [first, retry] = receiver.requests;
      verifyAll(first, old);
      expect(retry.headers['webhook-id']).toBe(first.headers['webhook-id']);
      verifyAll(retry, rotated.body.hmac_secret);
      expect(() => verifyStandardWebhook(retry.body, retry.headers, { secrets: old })).toThrow();
      expect(verifyHookHmac(retry.body, retry.headers, { secrets: rotated.body.hmac_secret })).toBe(true);
      expect(verifyHookHmac(retry.body, retry.headers, { secrets: old })).toBe(false);
      // the dispatcher under test really ran it
      if (flavour)
        expect((suite.app().get(Dispatcher) as Dispatcher & { queue: TestQueue }).queue).toBeDefined();
      await until(
        async () => (await repo.findOneBy({ id }))!.consecutiveFailures === 0,
        5000,
        'the delivery to end',
      );
    });

    it('re-reads a static subscriber secret on the worker, and leaves raw secrets as their UTF-8 bytes', async () => {
      const { events } = await boot({
        retryMax: 1,
        retryDelay: 1100,
        subscribers: { 'a.b': { url: `${receiver.url}/static`, hmacSecret: 'a raw static secret' } },
      });
      const seen = new Set<string>();
      receiver.reply = (r) => (seen.has(r.path) ? { status: 200 } : (seen.add(r.path), { status: 500 }));
      await events.send('a.b', { n: 1 });
      await receiver.waitFor(2, 15_000);
      const [first, retry] = receiver.requests;
      for (const r of [first, retry]) {
        // the official library takes a raw (non-whsec) key as bytes
        new StandardWebhook('a raw static secret', { format: 'raw' }).verify(r.text, headersOf(r));
        verifyStandardWebhook(r.body, r.headers, { secrets: 'a raw static secret' });
        expect(verifyHookHmac(r.body, r.headers, { secrets: 'a raw static secret' })).toBe(true);
      }
      expect(Number(retry.headers['webhook-timestamp'])).toBeGreaterThan(
        Number(first.headers['webhook-timestamp']),
      );
    });
  },
);
