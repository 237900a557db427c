// Header values on the wire, through each transport to a real receiver: generated ones are printable ASCII, custom
// ones that cannot be sent fail their delivery with the same error whatever the transport.
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { EventService, verify, type ThornModuleOptions } from '../../lib/index.js';
import { TestReceiver } from '../fixtures/receiver.js';
import { bootThorn } from '../fixtures/thorn-app.js';

const PRINTABLE_ASCII = /^[ -~]+$/;

describe.each(['undici', 'axios'] as const)('header values, %s transport', (kind) => {
  let app: INestApplication | undefined;
  let receiver: TestReceiver;
  let events: EventService;

  async function boot(options: ThornModuleOptions) {
    ({ app, events } = await bootThorn(kind, options));
  }

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
  });
  afterAll(() => receiver.stop());
  afterEach(async () => {
    await app?.close();
    app = undefined;
    receiver.reset();
  });

  it.each([
    ['Latin-1', 'user.Zoë', 'user.Zo%C3%AB'],
    ['beyond Latin-1', 'user.名前.€', 'user.%E5%90%8D%E5%89%8D.%E2%82%AC'],
    ['a percent sign', 'sale.50%', 'sale.50%25'],
    ['spaces at the ends', ' odd name ', '%20odd name%20'],
    ['plain ASCII (unchanged)', 'article.created', 'article.created'],
  ])(
    'sends an event name with %s as printable ASCII that decodes to the exact name',
    async (_label, name, header) => {
      await boot({
        subscribers: { '#': { url: `${receiver.url}/hook`, id: 'sub-Zoë-名', hmacSecret: 's' } },
      });
      const result = await events.send(name, { name });
      expect(result.deliveries).toEqual([expect.objectContaining({ ok: true, status: 200 })]);
      const [req] = receiver.requests;
      expect(req.headers['hook-event']).toBe(header);
      expect(decodeURIComponent(req.headers['hook-event'] as string)).toBe(name);
      expect(req.headers['hook-subscription']).toBe('sub-Zo%C3%AB-%E5%90%8D');
      expect(decodeURIComponent(req.headers['hook-subscription'] as string)).toBe('sub-Zoë-名');
      for (const h of ['hook-subscription', 'hook-delivery', 'hook-hmac', 'user-agent', 'content-type']) {
        expect([h, PRINTABLE_ASCII.test(String(req.headers[h]))]).toEqual([h, true]);
      }
      // the body is untouched UTF-8, and the signature covers it
      expect(req.json()).toEqual({ name });
      expect(verify(req.headers['hook-hmac'] as string, 'sha256', 's', req.body)).toBe(true);
    },
  );

  it.each([
    [
      'a character beyond Latin-1',
      { 'X-Name': 'Zoë 名' },
      'Header "X-Name" cannot be sent: its value contains a character beyond Latin-1 (above U+00FF); header values may hold tab, printable ASCII and Latin-1 only (percent-encode anything else)',
    ],
    [
      'a line break',
      { 'X-Token': 'secret\r\nX-Injected: 1' },
      'Header "X-Token" cannot be sent: its value contains a line break; header values may hold tab, printable ASCII and Latin-1 only (percent-encode anything else)',
    ],
    [
      'a NUL',
      { 'X-Token': 'sec\u0000ret' },
      'Header "X-Token" cannot be sent: its value contains a control character; header values may hold tab, printable ASCII and Latin-1 only (percent-encode anything else)',
    ],
    [
      'a space in the name',
      { 'X Bad': 'v' },
      'Header name "X Bad" is not a valid HTTP header name: use letters, digits and !#$%&\'*+-.^_`|~ only',
    ],
  ])(
    'fails every delivery of an event with a custom header that cannot be sent (%s), naming it, never its value',
    async (_label, headers, message) => {
      await boot({ subscribers: { 'a.b': [`${receiver.url}/one`, `${receiver.url}/two`] } });
      const errors: Error[] = [];
      const result = await events.send(
        'a.b',
        {},
        { headers: { 'X-Fine': 'ok', ...headers }, onError: (_r, e) => void errors.push(e) },
      );
      expect(result.deliveries.map((d) => [d.ok, d.retrying, d.status, d.error])).toEqual([
        [false, false, undefined, message],
        [false, false, undefined, message],
      ]);
      await new Promise((r) => setImmediate(r));
      expect(errors.map((e) => e.message)).toEqual([message, message]);
      expect(receiver.requests).toHaveLength(0);
      expect(receiver.connections).toBe(0);
    },
  );

  it('sends a Latin-1 custom header value as the same single bytes on each transport', async () => {
    await boot({ subscribers: { 'a.b': `${receiver.url}/one` } });
    const result = await events.send('a.b', {}, { headers: { 'X-Name': 'Zoë', 'X-Tab': 'a\tb' } });
    expect(result.deliveries).toEqual([expect.objectContaining({ ok: true })]);
    const [req] = receiver.requests;
    // node:http reads header bytes as Latin-1
    expect(Buffer.from(req.headers['x-name'] as string, 'latin1')).toEqual(Buffer.from([0x5a, 0x6f, 0xeb]));
    expect(req.headers['x-tab']).toBe('a\tb');
  });
});
