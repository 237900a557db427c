// SPEC §11 over real HTTP, on every dispatcher (direct, bull, bullmq) and database: the failure streak counted per
// delivery (after its last retry), reset by a success, autoDisable with onSubscriptionDisabled once, inactive
// subscriptions matching nothing, and PATCH /hooks/:id {"active"}.
import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import request from 'supertest';
import {
  EventService,
  SubscriptionService,
  type DisabledReason,
  type ThornModuleOptions,
} from '../../lib/index.js';
import { DISPATCHER_CASES, hooksSuite, until } from '../fixtures/hooks-suite.js';

describe.each(DISPATCHER_CASES)('endpoint health ($name dispatcher, $db.name)', ({ db, flavour }) => {
  const suite = hooksSuite('thorn-health', db, flavour);
  const { receiver } = suite;

  async function boot(options: ThornModuleOptions = {}) {
    const app = await suite.boot({ retryDelay: 10, retryMax: 1, ...options });
    const http = () => request(app.getHttpServer());
    const events = app.get(EventService);
    const show = async (id: string) =>
      (await http().get(`/hooks/${id}`).set('x-user', 'u1').expect(200)).body;
    const subscribe = async (path: string) =>
      (
        await http()
          .post('/hooks')
          .set('x-user', 'u1')
          .send({ event: 'a.*', url: `${receiver.url}${path}` })
          .expect(201)
      ).body;
    return { http, events, show, subscribe };
  }

  /** Sends one event and waits until the receiver has `total` requests and `/ok` got this event's one. */
  async function sendAndWait(events: EventService, total: number): Promise<void> {
    await events.send('a.b', { n: Math.random() });
    await receiver.waitFor(total);
  }

  it('counts failed deliveries (not attempts), clears the streak on success, disables after the streak, once', async () => {
    const disabled: [string, DisabledReason, boolean][] = [];
    const { events, show, subscribe, http } = await boot({
      autoDisable: { after: 0, minFailures: 3 },
      onSubscriptionDisabled: (s, reason) => void disabled.push([s.id, reason, s.active]),
    });
    const bad = await subscribe('/bad');
    const ok = await subscribe('/ok');
    expect(bad).toMatchObject({
      active: true,
      consecutive_failures: 0,
      disabled_at: null,
      disabled_reason: null,
    });
    let failing = true;
    receiver.reply = (r) => ({ status: r.path === '/bad' && failing ? 500 : 200 });

    // two deliveries, each failing twice (first attempt + one retry): a streak of 2
    let total = 0;
    for (let i = 1; i <= 2; i++) {
      await sendAndWait(events, (total += 3));
      await until(async () => (await show(bad.id)).consecutive_failures === i, 10_000, `streak ${i}`);
    }
    const two = await show(bad.id);
    expect(two).toMatchObject({ active: true, consecutive_failures: 2 });
    expect(Date.parse(two.failing_since)).toBeLessThanOrEqual(Date.now());
    expect((await show(ok.id)).consecutive_failures).toBe(0);
    expect(receiver.requests.filter((r) => r.path === '/bad')).toHaveLength(4);

    // a success clears it
    failing = false;
    await sendAndWait(events, (total += 2));
    await until(async () => (await show(bad.id)).consecutive_failures === 0, 10_000, 'the streak to clear');
    expect((await show(bad.id)).failing_since).toBeNull();

    // three failed deliveries in a row (after: 0): disabled, reason 'failing', the app told once
    failing = true;
    for (let i = 1; i <= 3; i++) {
      await sendAndWait(events, (total += 3));
      await until(async () => (await show(bad.id)).consecutive_failures === i, 10_000, `streak ${i}`);
    }
    await until(() => disabled.length === 1, 5000, 'onSubscriptionDisabled');
    expect(disabled).toEqual([[bad.id, 'failing', false]]);
    const off = await show(bad.id);
    expect(off).toMatchObject({ active: false, disabled_reason: 'failing', consecutive_failures: 3 });
    expect(Date.parse(off.disabled_at)).toBeLessThanOrEqual(Date.now());

    // inactive: matches nothing (only /ok is served)
    const before = receiver.requests.filter((r) => r.path === '/bad').length;
    await sendAndWait(events, (total += 1));
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.requests.filter((r) => r.path === '/bad')).toHaveLength(before);
    expect(receiver.requests.at(-1)!.path).toBe('/ok');

    // PATCH: a non-boolean active is a 400 naming the field
    for (const value of ['yes', 1, null]) {
      const res = await http()
        .patch(`/hooks/${bad.id}`)
        .set('x-user', 'u1')
        .send({ active: value })
        .expect(400);
      expect(JSON.stringify(res.body.message)).toMatch(/active must be true or false/);
    }
    await http().patch(`/hooks/${bad.id}`).set('x-user', 'u2').send({ active: true }).expect(404);
    // re-enable: active again, streak cleared, delivered to again
    const on = await http().patch(`/hooks/${bad.id}`).set('x-user', 'u1').send({ active: true }).expect(200);
    expect(on.body).toMatchObject({
      active: true,
      disabled_at: null,
      disabled_reason: null,
      consecutive_failures: 0,
      failing_since: null,
    });
    failing = false;
    await sendAndWait(events, (total += 2));
    expect(
      receiver.requests
        .slice(-2)
        .map((r) => r.path)
        .sort(),
    ).toEqual(['/bad', '/ok']);

    // pause: reason 'paused', nothing delivered; the app is not told about its users' own pauses
    const paused = await http()
      .patch(`/hooks/${bad.id}`)
      .set('x-user', 'u1')
      .send({ active: false })
      .expect(200);
    expect(paused.body).toMatchObject({ active: false, disabled_reason: 'paused' });
    await sendAndWait(events, total + 1);
    expect(receiver.requests.at(-1)!.path).toBe('/ok');
    expect(disabled).toHaveLength(1);
    // the injectable service does the same
    const service = suite.app().get(SubscriptionService);
    expect((await service.setActive(bad.id, true))!.active).toBe(true);
    expect(await service.setActive(bad.id, false, { user: 'u2' })).toBeNull();
  });

  it('does not disable before `after` has passed, however many failures, nor with autoDisable: false', async () => {
    for (const autoDisable of [{ after: 3_600_000, minFailures: 1 }, false as const]) {
      const disabled: string[] = [];
      const { events, show, subscribe } = await boot({
        retry: false,
        autoDisable,
        onSubscriptionDisabled: (s) => void disabled.push(s.id),
      });
      const bad = await subscribe('/bad');
      receiver.reply = () => ({ status: 503 });
      for (let i = 1; i <= 3; i++) {
        await sendAndWait(events, i);
        await until(async () => (await show(bad.id)).consecutive_failures === i, 10_000, `streak ${i}`);
      }
      expect(await show(bad.id)).toMatchObject({ active: true, disabled_reason: null });
      expect(disabled).toEqual([]);
      await suite.close();
      receiver.reset();
    }
  });

  it('a 410 disables at once with reason gone (no retry), keeps the row and tells the app once', async () => {
    const disabled: [string, DisabledReason][] = [];
    const { events, show, subscribe } = await boot({
      autoDisable: false,
      onSubscriptionDisabled: (s, reason) => void disabled.push([s.id, reason]),
    });
    const gone = await subscribe('/gone');
    receiver.reply = () => ({ status: 410 });
    await sendAndWait(events, 1);
    await until(async () => !(await show(gone.id)).active, 10_000, 'the 410 to disable it');
    expect(await show(gone.id)).toMatchObject({
      active: false,
      disabled_reason: 'gone',
      consecutive_failures: 1,
    });
    await until(() => disabled.length === 1, 5000, 'onSubscriptionDisabled');
    expect(disabled).toEqual([[gone.id, 'gone']]);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.requests).toHaveLength(1); // no retry
  });
});
