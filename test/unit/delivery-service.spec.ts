// DeliveryService against a Transport that answers a fixed status: ids fixed before signing, finished() and its hook,
// and signing at attempt time (secrets read again, rotation, whsec_ keys).
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { createHmac } from 'node:crypto';
import { DeliveryService, type AttemptOutcome } from '../../lib/delivery/delivery.service.js';
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

describe('DeliveryService.finished', () => {
  it('passes the ended delivery and its outcome to onFinished, then drops the secrets from the request', async () => {
    const seen: [DeliveryRequest, AttemptOutcome][] = [];
    const delivery = new DeliveryService(resolveThornOptions(), new FixedTransport(410), {
      onFinished: (req, outcome) => void seen.push([req, outcome]),
    });
    const [req] = delivery.prepare(envelope(), [recipient('stored', 'st')]);
    expect(req.keys).toMatchObject({ secret: 'secret' });
    const outcome = await delivery.attempt(req);
    expect(outcome.verdict).toEqual({ ok: false, retryable: false, gone: true });
    // attempt() itself tells nobody: only finished() does
    expect(seen).toEqual([]);
    await delivery.finished(req, outcome);
    expect(seen).toEqual([[req, outcome]]);
    expect(req.keys).toBeUndefined();
  });

  it('never throws: a failing onFinished is logged', async () => {
    const delivery = new DeliveryService(resolveThornOptions(), new FixedTransport(200), {
      onFinished: () => {
        throw new Error('store down');
      },
    });
    const [req] = delivery.prepare(envelope(), [recipient('stored', 'st')]);
    const outcome = await delivery.attempt(req);
    await expect(delivery.finished(req, outcome)).resolves.toBeUndefined();
    expect(logger.lines.some((l) => l.startsWith('error:') && /store down.* subscription=st$/.test(l))).toBe(
      true,
    );
  });

  it('keeps the secrets out of a serialised or logged request', () => {
    const delivery = new DeliveryService(resolveThornOptions(), new FixedTransport(200));
    const [req] = delivery.prepare(envelope(), [recipient('stored', 'st')]);
    expect(req.keys?.secret).toBe('secret');
    expect(JSON.stringify(req)).not.toContain('"secret"');
    expect(Object.keys(req)).not.toContain('keys');
  });
});

describe('DeliveryService signing at attempt time', () => {
  const sw = (id: string, ts: string, key: string | Buffer, body: string | Buffer) =>
    `v1,${createHmac('sha256', key).update(`${id}.${ts}.`).update(body).digest('base64')}`;

  it('asks signingKeys for a request without secrets (a queued one) and signs Hook-HMAC and webhook-signature with them', async () => {
    const transport = new FixedTransport(200);
    const delivery = new DeliveryService(resolveThornOptions({ standardWebhooks: true }), transport, {
      signingKeys: async () => ({ secret: 'rotated-secret', digest: 'sha256' }),
    });
    const [prepared] = delivery.prepare(envelope(), [recipient('stored', 'st')]);
    const queued: DeliveryRequest = { ...prepared, headers: { ...prepared.headers } }; // as rebuilt from a job
    expect(queued.keys).toBeUndefined();
    await delivery.attempt(queued);
    const sent = transport.sent[0].headers;
    expect(sent['Hook-HMAC']).toBe(
      createHmac('sha256', 'rotated-secret').update(queued.body).digest('base64'),
    );
    expect(sent['webhook-signature']).toBe(
      sw(queued.id, sent['webhook-timestamp'], 'rotated-secret', queued.body),
    );
  });

  it('fails without sending when the subscription is gone (signingKeys answers null)', async () => {
    const transport = new FixedTransport(200);
    const delivery = new DeliveryService(resolveThornOptions(), transport, { signingKeys: async () => null });
    const [prepared] = delivery.prepare(envelope(), [recipient('stored', 'st')]);
    const outcome = await delivery.attempt({ ...prepared });
    expect(outcome.verdict).toEqual({ ok: false, retryable: false, gone: false });
    expect(outcome.error?.message).toMatch(/st no longer exists/);
    expect(transport.sent).toHaveLength(0);
  });

  it('signs webhook-signature with a previous secret only until it expires, never Hook-HMAC', async () => {
    const transport = new FixedTransport(200);
    const delivery = new DeliveryService(resolveThornOptions({ standardWebhooks: true }), transport);
    const base = recipient('stored', 'st');
    const [valid, expired] = delivery.prepare(envelope(), [
      {
        ...base,
        previousHmacSecret: 'old-secret',
        previousHmacSecretExpiresAt: new Date(Date.now() + 60_000),
      },
      { ...base, previousHmacSecret: 'old-secret', previousHmacSecretExpiresAt: new Date(Date.now() - 1) },
    ]);
    await delivery.attempt(valid);
    await delivery.attempt(expired);
    const [a, b] = transport.sent.map((r) => r.headers);
    expect(a['webhook-signature']).toBe(
      `${sw(valid.id, a['webhook-timestamp'], 'secret', valid.body)} ${sw(valid.id, a['webhook-timestamp'], 'old-secret', valid.body)}`,
    );
    expect(b['webhook-signature']).toBe(sw(expired.id, b['webhook-timestamp'], 'secret', expired.body));
    expect(a['Hook-HMAC']).toBe(createHmac('sha256', 'secret').update(valid.body).digest('base64'));
  });

  it('uses the decoded bytes of a whsec_ secret for webhook-signature and the string as given for Hook-HMAC', async () => {
    const transport = new FixedTransport(200);
    const delivery = new DeliveryService(resolveThornOptions({ standardWebhooks: true }), transport);
    const key = Buffer.from('0123456789abcdef0123456789abcdef');
    const secret = `whsec_${key.toString('base64')}`;
    const [req] = delivery.prepare(envelope(), [{ ...recipient('stored', 'st'), hmacSecret: secret }]);
    await delivery.attempt(req);
    const h = transport.sent[0].headers;
    expect(h['webhook-signature']).toBe(sw(req.id, h['webhook-timestamp'], key, req.body));
    expect(h['Hook-HMAC']).toBe(createHmac('sha256', secret).update(req.body).digest('base64'));
  });
});
