// DeliveryService against a Transport that answers a fixed status: ids fixed before signing, and onGone on 410.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { createHmac } from 'node:crypto';
import { DeliveryService } from '../../lib/delivery/delivery.service.js';
import type { DeliveryRequest, Recipient } from '../../lib/delivery/request.js';
import type { Transport, TransportRequest } from '../../lib/delivery/transport.js';
import type { EventEnvelope } from '../../lib/events/envelope.js';
import { resolveThornOptions } from '../../lib/thorn-options.js';
import { CapturingLogger } from '../fixtures/log.js';

class FixedTransport implements Transport {
  readonly sent: TransportRequest[] = [];
  constructor(private readonly status: number) {}
  async send(request: TransportRequest) {
    this.sent.push(request);
    return { status: this.status, headers: {}, body: '' };
  }
  async close() {}
}

const recipient = (source: Recipient['source'], id: string): Recipient => ({
  id,
  url: `https://example.com/${id}`,
  event: 'a.b',
  contentType: 'application/json',
  hmacSecret: 'secret',
  hmacDigest: 'sha256',
  source,
});
const envelope = (): EventEnvelope => ({
  name: 'a.b',
  body: { n: 1 },
  context: {},
  headers: {},
  settings: resolveThornOptions(),
  keepAlive: true,
});
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let logger: CapturingLogger;
beforeEach(() => {
  logger = new CapturingLogger();
  Logger.overrideLogger(logger);
});
afterEach(() => Logger.overrideLogger(new Logger()));

describe('DeliveryService.prepare ids', () => {
  it('gives each request the id idFor returns (called once per recipient, in order) and signs over it', () => {
    const delivery = new DeliveryService(
      resolveThornOptions({ standardWebhooks: true }),
      new FixedTransport(200),
    );
    const recipients = [recipient('static', 's1'), recipient('stored', 's2')];
    const calls: [string, number][] = [];
    const reqs = delivery.prepare(envelope(), recipients, {
      idFor: (r, i) => (calls.push([r.id, i]), `id-${r.id}`),
    });
    expect(calls).toEqual([
      ['s1', 0],
      ['s2', 1],
    ]);
    for (const r of reqs) {
      expect(r.id).toBe(`id-${r.subscription}`);
      expect(r.headers['Hook-Delivery']).toBe(r.id);
      expect(r.headers['webhook-id']).toBe(r.id);
      const signed = createHmac('sha256', 'secret')
        .update(`${r.id}.${r.headers['webhook-timestamp']}.`)
        .update(r.body)
        .digest('base64');
      expect(r.headers['webhook-signature']).toBe(`v1,${signed}`);
    }
  });

  it('uses a fresh random UUID per request by default', () => {
    const delivery = new DeliveryService(resolveThornOptions(), new FixedTransport(200));
    const recipients = [recipient('static', 's1'), recipient('static', 's1')];
    const ids = [
      ...delivery.prepare(envelope(), recipients),
      ...delivery.prepare(envelope(), recipients),
    ].map((r) => r.id);
    expect(ids.every((id) => UUID.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(4);
  });
});

describe('DeliveryService on 410 Gone', () => {
  it('calls onGone with the subscription id and request for a stored subscription only', async () => {
    const gone: [string, DeliveryRequest][] = [];
    const delivery = new DeliveryService(resolveThornOptions(), new FixedTransport(410), {
      onGone: (id, req) => void gone.push([id, req]),
    });
    const [stored, stat, own] = delivery.prepare(envelope(), [
      recipient('stored', 'st'),
      recipient('static', 'sa'),
      recipient('event', 'ev'),
    ]);
    for (const req of [stored, stat, own]) {
      const outcome = await delivery.attempt(req);
      expect(outcome.verdict).toEqual({ ok: false, retryable: false, gone: true });
    }
    expect(gone).toEqual([['st', stored]]);
  });

  it('still returns the outcome when onGone throws, and logs it', async () => {
    const delivery = new DeliveryService(resolveThornOptions(), new FixedTransport(410), {
      onGone: () => {
        throw new Error('store down');
      },
    });
    const [req] = delivery.prepare(envelope(), [recipient('stored', 'st')]);
    await expect(delivery.attempt(req)).resolves.toMatchObject({
      verdict: { gone: true },
      response: { status: 410 },
    });
    expect(logger.lines.some((l) => l.startsWith('error:') && /st.*store down/.test(l))).toBe(true);
  });

  it('without onGone, a 410 is only the outcome', async () => {
    const transport = new FixedTransport(410);
    const delivery = new DeliveryService(resolveThornOptions(), transport);
    const [req] = delivery.prepare(envelope(), [recipient('stored', 'st')]);
    await expect(delivery.attempt(req)).resolves.toMatchObject({ verdict: { gone: true } });
    expect(transport.sent).toHaveLength(1);
  });
});
