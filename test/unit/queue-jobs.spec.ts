// What crosses the bull and bullmq queues: stable delivery ids, origin order, exact body bytes (no Redis needed).
import { describe, expect, it } from '@jest/globals';
import { createHmac } from 'node:crypto';
import { DeliveryService } from '../../lib/delivery/delivery.service.js';
import type { Transport } from '../../lib/delivery/transport.js';
import { byOrigin, chunked, fromWire, stableIds, toWire } from '../../lib/dispatchers/queue/queue.jobs.js';
import type { EventEnvelope } from '../../lib/events/envelope.js';
import type { Recipient } from '../../lib/subscriptions/recipient.js';
import { resolveThornOptions } from '../../lib/thorn-options.js';

const noTransport = {} as Transport;
const recipient = (url: string, id = url): Recipient => ({
  id,
  url,
  event: 'a.b',
  contentType: 'application/json',
  hmacSecret: 'secret',
  hmacDigest: 'sha256',
  source: 'static',
});

function envelope(): EventEnvelope {
  const options = resolveThornOptions();
  return {
    name: 'a.b',
    body: { n: 1, text: 'héllo' },
    context: {},
    headers: { 'X-Custom': 'c' },
    settings: options,
    keepAlive: true,
  };
}

describe('queue job helpers (bull and bullmq)', () => {
  it('carries a recipient that could not be prepared across the queue as a failure, never as a sendable request', async () => {
    const delivery = new DeliveryService(resolveThornOptions(), noTransport);
    const recipients = [
      recipient('http://a/1'),
      { ...recipient('http://a/2'), contentType: 'application/xml' },
    ];
    const reqs = delivery.prepare(envelope(), recipients, { idFor: stableIds('event-2') });
    const back = fromWire(JSON.parse(JSON.stringify(toWire(reqs))), resolveThornOptions());
    expect(back[0].failure).toBeUndefined();
    expect(back[1].failure?.message).toMatch(/No codec for content type "application\/xml"/);
    // attempt() fails it without touching the transport (which here has no send() at all)
    const outcome = await delivery.attempt(back[1]);
    expect(outcome.verdict).toEqual({ ok: false, retryable: false, gone: false });
    expect(outcome.error?.message).toMatch(/No codec/);
  });

  it('gives the same delivery ids every time an event is prepared, distinct per recipient (even for the same URL twice)', () => {
    const delivery = new DeliveryService(resolveThornOptions({ standardWebhooks: true }), noTransport);
    const recipients = [recipient('http://a/1'), recipient('http://a/1'), recipient('http://b/2')];
    const run = () => delivery.prepare(envelope(), recipients, { idFor: stableIds('event-1') });
    const [first, again] = [run(), run()];
    expect(first.map((r) => r.id)).toEqual(again.map((r) => r.id));
    expect(new Set(first.map((r) => r.id)).size).toBe(3);
    for (const r of first) {
      expect(r.headers['Hook-Delivery']).toBe(r.id);
      // Standard Webhooks signs the id: the signature is over the stable one
      expect(r.headers['webhook-id']).toBe(r.id);
      const expected = createHmac('sha256', 'secret')
        .update(`${r.id}.${r.headers['webhook-timestamp']}.`)
        .update(r.body)
        .digest('base64');
      expect(r.headers['webhook-signature']).toBe(`v1,${expected}`);
    }
    const otherEvent = delivery.prepare(envelope(), recipients, { idFor: stableIds('event-2') });
    expect(otherEvent.map((r) => r.id).filter((id) => first.some((f) => f.id === id))).toEqual([]);
  });

  it('orders by (scheme, host, port), keeping recipient order within an origin, and chunks', () => {
    const urls = [
      'https://b.example/1',
      'http://a.example:8080/1',
      'http://a.example/1',
      'https://b.example:443/2',
      'http://a.example:8080/2',
      'not a url',
    ];
    expect(byOrigin(urls.map((url) => ({ url }))).map((r) => r.url)).toEqual([
      'not a url',
      'http://a.example/1',
      'http://a.example:8080/1',
      'http://a.example:8080/2',
      'https://b.example/1',
      'https://b.example:443/2',
    ]);
    expect(chunked([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('round-trips requests through JSON with the exact body bytes (text or binary) and every header', () => {
    const delivery = new DeliveryService(
      resolveThornOptions({ codecs: { 'application/octet-stream': () => Buffer.from([0xff, 0x00, 0xc3]) } }),
      noTransport,
    );
    const recipients = [
      recipient('http://a/1'),
      recipient('http://a/2'),
      { ...recipient('http://a/3'), contentType: 'application/octet-stream' },
    ];
    const reqs = delivery.prepare(envelope(), recipients, { idFor: stableIds('e') });
    reqs[0].attempts = 2;
    const wire = JSON.parse(JSON.stringify(toWire(reqs)));
    expect(wire.bodies.map((b: { enc: string }) => b.enc)).toEqual(['utf8', 'base64']);
    const back = fromWire(wire, resolveThornOptions());
    expect(back.map((r) => Buffer.from(r.body).equals(Buffer.from(reqs[back.indexOf(r)].body)))).toEqual([
      true,
      true,
      true,
    ]);
    expect(back.map((r) => r.headers)).toEqual(reqs.map((r) => r.headers));
    expect(back[0]).toMatchObject({ id: reqs[0].id, attempts: 2, url: 'http://a/1', source: 'static' });
    expect(back[0].headers['X-Custom']).toBe('c');
  });
});
