import { describe, expect, it } from '@jest/globals';
import {
  hasUnsignedStatic,
  resolveSubscribers,
  staticSubscriberId,
} from '../../lib/subscriptions/static-subscribers.js';
import type { SubscribersOption } from '../../lib/subscriptions/recipient.js';

const defaults = { source: 'static' as const };

describe('static and callback subscribers (SPEC §4.4)', () => {
  it('accepts every form, nested, skipping falsy items, in declaration order', async () => {
    async function* gen() {
      yield 'http://h/gen1';
      yield null;
      yield { url: 'http://h/gen2' };
    }
    const seen: unknown[] = [];
    const option: SubscribersOption = {
      'article.*': [
        'http://h/plain',
        {
          url: 'http://h/object',
          contentType: 'application/x-www-form-urlencoded',
          hmacSecret: 's',
          hmacDigest: 'SHA1',
          id: 'my-id',
        },
        false,
        (event, ctx) => {
          seen.push([event, ctx]);
          return [Promise.resolve('http://h/promise'), gen(), () => 'http://h/fn-in-fn'];
        },
        [[undefined, ['http://h/deep']]],
        new Set(['http://h/set']),
      ],
      'user.*': 'http://h/not-matching',
    };
    const out = await resolveSubscribers(option, 'article.created', { sender: 'u1', instance: 3 }, defaults);
    expect(out.map((r) => r.url)).toEqual([
      'http://h/plain',
      'http://h/object',
      'http://h/promise',
      'http://h/gen1',
      'http://h/gen2',
      'http://h/fn-in-fn',
      'http://h/deep',
      'http://h/set',
    ]);
    expect(seen).toEqual([['article.created', { sender: 'u1', instance: 3 }]]);
    expect(out[1]).toMatchObject({
      id: 'my-id',
      contentType: 'application/x-www-form-urlencoded',
      hmacSecret: 's',
      hmacDigest: 'sha1',
    });
    expect(out[0]).toMatchObject({
      contentType: 'application/json',
      hmacDigest: 'sha256',
      hmacSecret: null,
      source: 'static',
    });
  });

  it('gives a stable UUID-shaped id per url + pattern, used when none is given', async () => {
    const id = staticSubscriberId('http://h/x', 'a.*');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(staticSubscriberId('http://h/x', 'a.*')).toBe(id);
    expect(staticSubscriberId('http://h/x', 'a.#')).not.toBe(id);
    expect(staticSubscriberId('http://h/y', 'a.*')).not.toBe(id);
    const [r1] = await resolveSubscribers({ 'a.*': 'http://h/x' }, 'a.b', {}, defaults);
    const [r2] = await resolveSubscribers({ 'a.*': 'http://h/x' }, 'a.c', {}, defaults);
    expect(r1.id).toBe(id);
    expect(r2.id).toBe(id);
  });

  it('signs with defaultHmacSecret when a static subscriber has none', async () => {
    const [r] = await resolveSubscribers(
      { 'a.b': 'http://h/x' },
      'a.b',
      {},
      { source: 'static', defaultHmacSecret: 'dflt' },
    );
    expect(r.hmacSecret).toBe('dflt');
  });

  it('rejects a subscriber of an unknown shape with a message naming the pattern', async () => {
    await expect(resolveSubscribers({ 'a.b': [42 as any] }, 'a.b', {}, defaults)).rejects.toThrow(
      /Invalid subscriber for "a\.b"/,
    );
  });

  it('hasUnsignedStatic spots plain subscribers without a secret', () => {
    expect(hasUnsignedStatic({ 'a.b': 'http://h' })).toBe(true);
    expect(hasUnsignedStatic({ 'a.b': [{ url: 'http://h', hmacSecret: 'x' }] })).toBe(false);
    expect(hasUnsignedStatic({ 'a.b': [{ url: 'http://h', hmacSecret: 'x' }, { url: 'http://h2' }] })).toBe(
      true,
    );
    expect(hasUnsignedStatic(undefined)).toBe(false);
  });
});
