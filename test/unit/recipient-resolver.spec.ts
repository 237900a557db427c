// RecipientResolver: the order and error rules both dispatchers and subscribersFor() rely on (the store is a stub).
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { Recipient } from '../../lib/subscriptions/recipient.js';
import { RecipientResolver } from '../../lib/subscriptions/recipient.resolver.js';
import type { SubscriptionStore } from '../../lib/subscriptions/subscription.store.js';
import { resolveThornOptions } from '../../lib/thorn-options.js';
import { CapturingLogger } from '../fixtures/log.js';

type Find = SubscriptionStore['find'];
const storeOf = (find: Find) => ({ find }) as unknown as SubscriptionStore;
const stored = (url: string): Recipient => ({
  id: url,
  url,
  event: 'a.*',
  contentType: 'application/json',
  hmacSecret: null,
  hmacDigest: 'sha256',
  user: null,
  source: 'stored',
});

let logger: CapturingLogger;
beforeEach(() => {
  logger = new CapturingLogger();
  Logger.overrideLogger(logger);
});
afterEach(() => Logger.overrideLogger(new Logger()));

describe('RecipientResolver', () => {
  it('returns static, then stored, then the event own subscribers, passing sender and ownerlessOnly to the store', async () => {
    const calls: Parameters<Find>[] = [];
    const resolver = new RecipientResolver(
      resolveThornOptions({ subscribers: { 'a.*': 'http://static/1' }, defaultHmacSecret: 'dflt' }),
      storeOf(async (...args) => (calls.push(args), [stored('http://stored/1')])),
    );
    const seen: unknown[] = [];
    const got = await resolver.resolve({
      name: 'a.b',
      sender: '7',
      ownerlessOnly: true,
      context: { k: 1 },
      subscribers: { 'a.b': (_e, ctx) => (seen.push(ctx), 'http://own/1') },
    });
    expect(got.map((r) => [r.source, r.url, r.hmacSecret])).toEqual([
      ['static', 'http://static/1', 'dflt'],
      ['stored', 'http://stored/1', null],
      ['event', 'http://own/1', 'dflt'],
    ]);
    expect(calls).toEqual([['a.b', '7', true]]);
    expect(seen).toEqual([{ k: 1, sender: '7' }]);
    // own(): the event's own subscribers only, without the store
    expect(
      (await resolver.own({ name: 'a.b', context: {}, subscribers: { 'a.*': 'http://own/2' } })).map(
        (r) => r.url,
      ),
    ).toEqual(['http://own/2']);
    expect(calls).toHaveLength(1);
  });

  it('logs and skips a broken static or per-event subscriber; a store error rejects', async () => {
    const broken = () => {
      throw new Error('boom');
    };
    const resolver = new RecipientResolver(
      resolveThornOptions({ subscribers: { 'a.*': [broken, 'http://static/ok'] } }),
      storeOf(async () => []),
    );
    const got = await resolver.resolve({
      name: 'a.b',
      context: {},
      subscribers: { 'a.b': [broken, 'http://own/ok'] },
    });
    expect(got.map((r) => r.url)).toEqual(['http://static/ok', 'http://own/ok']);
    expect(logger.lines.filter((l) => l.startsWith('error:'))).toEqual([
      'error: A subscriber for "a.*" was skipped: boom event=a.b',
      'error: A subscriber for "a.b" was skipped: boom event=a.b',
    ]);
    const failing = new RecipientResolver(
      resolveThornOptions(),
      storeOf(async () => {
        throw new Error('db down');
      }),
    );
    await expect(failing.resolve({ name: 'a.b', context: {} })).rejects.toThrow('db down');
  });

  it('without a store, only static and per-event subscribers', async () => {
    const resolver = new RecipientResolver(
      resolveThornOptions({ subscribers: { 'a.b': 'http://static/1' } }),
      null,
    );
    expect((await resolver.resolve({ name: 'a.b', context: {} })).map((r) => r.source)).toEqual(['static']);
  });

  it('resolves static subscribers given as plain values once per event name, and never shares what callers change', async () => {
    let reads = 0;
    const spec = {
      get url() {
        reads++;
        return 'http://static/plain';
      },
      hmacSecret: 's',
    };
    const resolver = new RecipientResolver(
      resolveThornOptions({ subscribers: { 'a.*': [spec, 'http://static/2'] } }),
      null,
    );
    const first = resolver.recipientsOf({ name: 'a.b', context: {} });
    expect(first).toBeInstanceOf(Promise); // the first event of a name resolves them
    const a = await first;
    const readsAfterFirst = reads;
    const b = resolver.recipientsOf({ name: 'a.b', context: {} });
    // the next ones get them without a promise, without reading the spec again
    expect(Array.isArray(b)).toBe(true);
    expect(reads).toBe(readsAfterFirst);
    expect((b as Recipient[]).map((r) => r.url)).toEqual(['http://static/plain', 'http://static/2']);
    expect((b as Recipient[])[0]).toBe(a[0]);
    // the array is the caller's own; the recipients are frozen
    (b as Recipient[]).pop();
    expect(((await resolver.resolve({ name: 'a.b', context: {} })) as Recipient[]).length).toBe(2);
    expect(Object.isFrozen(a[0])).toBe(true);
    // another name is resolved on its own
    await resolver.resolve({ name: 'a.c', context: {} });
    expect(reads).toBeGreaterThan(readsAfterFirst);
  });

  it('runs callback subscribers on every event, and keeps reporting a plain subscriber that fails', async () => {
    let calls = 0;
    const resolver = new RecipientResolver(
      resolveThornOptions({
        subscribers: {
          'a.*': 'http://static/plain',
          'a.b': () => (calls++, 'http://static/callback'),
          'x.*': { url: 'http://static/bad', hmacDigest: 'md5' as never },
        },
      }),
      null,
    );
    for (let i = 0; i < 3; i++) {
      expect((await resolver.resolve({ name: 'a.b', context: {} })).map((r) => r.url)).toEqual([
        'http://static/plain',
        'http://static/callback',
      ]);
      expect(await resolver.resolve({ name: 'x.y', context: {} })).toEqual([]);
    }
    expect(calls).toBe(3);
    expect(logger.lines.filter((l) => l.includes('Unknown HMAC digest "md5"'))).toHaveLength(3);
  });

  it('resolve() (subscribersFor) answers copies the caller may change, even of the kept static recipients', async () => {
    const resolver = new RecipientResolver(
      resolveThornOptions({ subscribers: { 'a.*': { url: 'http://static/1', hmacSecret: 's' } } }),
      null,
    );
    const [first] = await resolver.resolve({ name: 'a.b', context: {} });
    const [second] = await resolver.resolve({ name: 'a.b', context: {} });
    expect(second).not.toBe(first);
    second.hmacSecret = 'changed by the caller';
    delete second.user;
    const [third] = await resolver.resolve({ name: 'a.b', context: {} });
    expect(third.hmacSecret).toBe('s');
    expect(third.user).toBeNull();
  });
});
