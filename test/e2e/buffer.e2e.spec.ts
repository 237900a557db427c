import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Test } from '@nestjs/testing';
import type { INestApplication } from '@nestjs/common';
import { EventService, ThornModule, blockInternalIps, ensureProtocol } from '../../lib/index.js';
import { TestReceiver } from '../fixtures/receiver.js';

describe('bufferEvents (SPEC §2.1)', () => {
  let receiver: TestReceiver;
  let app: INestApplication;
  let events: EventService;
  const received = () => receiver.requests.map((r) => r.json().n);

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
  });
  afterAll(async () => {
    await receiver.stop();
  });
  beforeEach(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ThornModule.forRoot({
          subscriberEntity: false,
          recipientValidators: [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http')],
          subscribers: { 'buf.*': `${receiver.url}/b` },
          concurrency: 1, // one request at a time, so arrival order is send order
        }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    events = app.get(EventService);
  });
  afterEach(async () => {
    await app.close();
    receiver.reset();
  });

  it('holds events until the callback returns, then sends them in order', async () => {
    const value = await events.bufferEvents(async (buffer) => {
      for (let n = 1; n <= 3; n++) {
        const r = await events.send('buf.x', { n });
        expect(r).toMatchObject({ buffered: true, deliveries: [] });
      }
      expect(buffer.size).toBe(3);
      expect(receiver.requests).toHaveLength(0);
      return 'done';
    });
    expect(value).toBe('done');
    expect(received()).toEqual([1, 2, 3]);
  });

  it('flushes also when the callback throws, and rethrows', async () => {
    await expect(
      events.bufferEvents(async () => {
        await events.send('buf.x', { n: 1 });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(received()).toEqual([1]);
  });

  it('nested bufferEvents delegate to the outermost buffer', async () => {
    await events.bufferEvents(async (outer) => {
      await events.bufferEvents(async (inner) => {
        expect(inner).toBe(outer);
        await events.send('buf.x', { n: 1 });
      });
      expect(receiver.requests).toHaveLength(0);
      await events.send('buf.x', { n: 2 });
    });
    expect(received()).toEqual([1, 2]);
  });

  it('buffer.flush() sends what is held so far', async () => {
    await events.bufferEvents(async (buffer) => {
      await events.send('buf.x', { n: 1 });
      const results = await buffer.flush();
      expect(results).toHaveLength(1);
      expect(received()).toEqual([1]);
      await events.send('buf.x', { n: 2 });
      expect(received()).toEqual([1]);
    });
    expect(received()).toEqual([1, 2]);
  });

  it('maybeFlush flushes every flushFreq calls', async () => {
    await events.bufferEvents(
      async (buffer) => {
        for (let n = 1; n <= 5; n++) {
          await events.send('buf.x', { n });
          const flushed = await buffer.maybeFlush();
          expect(flushed === null).toBe(n % 2 === 1);
          expect(receiver.requests).toHaveLength(n - (n % 2));
        }
      },
      { flushFreq: 2 },
    );
    expect(received()).toEqual([1, 2, 3, 4, 5]);
  });

  it('maybeFlush flushes once flushTimeout ms have passed since the last flush', async () => {
    await events.bufferEvents(
      async (buffer) => {
        await events.send('buf.x', { n: 1 });
        expect(await buffer.maybeFlush()).toBeNull();
        await new Promise((r) => setTimeout(r, 60));
        await events.send('buf.x', { n: 2 });
        expect(await buffer.maybeFlush()).toHaveLength(2);
        expect(received()).toEqual([1, 2]);
      },
      { flushTimeout: 50 },
    );
  });

  it('concurrent requests never share a buffer', async () => {
    let releaseA!: () => void;
    const gateA = new Promise<void>((r) => (releaseA = r));
    const a = events.bufferEvents(async () => {
      await events.send('buf.x', { n: 'a' });
      await gateA;
    });
    await events.bufferEvents(async (buffer) => {
      await events.send('buf.x', { n: 'b' });
      expect(buffer.size).toBe(1);
    });
    // b's buffer flushed on its own; a's event is still held
    expect(received()).toEqual(['b']);
    releaseA();
    await a;
    expect(received()).toEqual(['b', 'a']);
  });

  it('events sent after bufferEvents returned, from work it started, are sent, not held in a closed buffer', async () => {
    let later!: Promise<unknown>;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await events.bufferEvents(async () => {
      await events.send('buf.x', { n: 1 });
      // background work that keeps this async context and sends after the callback returned
      later = gate.then(() => events.send('buf.x', { n: 2 }));
    });
    expect(received()).toEqual([1]);
    release();
    const r = await later;
    expect(r).not.toMatchObject({ buffered: true });
    expect(received()).toEqual([1, 2]);
  });

  it('events that cannot be sent do not stop the rest of a flush, which then rejects naming them', async () => {
    const big = 'x'.repeat(300 * 1024); // over the default maxPayloadSize (256 KiB)
    await expect(
      events.bufferEvents(async () => {
        await events.send('buf.x', { n: 1 });
        await events.send('buf.x', { n: 'too big 1', big });
        await events.send('buf.x', { n: 'too big 2', big });
        await events.send('buf.x', { n: 2 });
      }),
    ).rejects.toThrow(/2 of 4 events could not be sent; first: .*over maxPayloadSize/);
    // concurrency is 1 here: a failing event used to end the only lane and drop everything after it
    expect(received()).toEqual([1, 2]);
  });

  it('events sent outside any buffer are not held', async () => {
    const r = await events.send('buf.x', { n: 1 });
    expect(r.buffered).toBeUndefined();
    expect(received()).toEqual([1]);
  });
});
