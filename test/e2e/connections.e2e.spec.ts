import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Test } from '@nestjs/testing';
import type { INestApplication } from '@nestjs/common';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { EventService, ThornModule, blockInternalIps, ensureProtocol } from '../../lib/index.js';

// Connections the package opens to one receiver are bounded by `concurrency`, whatever the load: counted at the
// receiver (sockets open at once, and sockets opened in all).
const loopback = () => [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http', 'https')];

class CountingReceiver {
  open = 0;
  peak = 0;
  opened = 0;
  received = 0;
  url = '';
  private server!: Server;
  private readonly sockets = new Set<Socket>();

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      req.resume();
      // a short, varying delay keeps every slot busy and answers out of order
      req.on('end', () =>
        setTimeout(
          () => {
            this.received++;
            res.end('ok');
          },
          1 + (this.received % 3),
        ),
      );
    });
    this.server.on('connection', (s: Socket) => {
      this.opened++;
      this.open++;
      this.peak = Math.max(this.peak, this.open);
      this.sockets.add(s);
      s.on('close', () => {
        this.open--;
        this.sockets.delete(s);
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

describe.each(['undici', 'axios'] as const)('connections per receiver (%s transport)', (transport) => {
  let app: INestApplication | undefined;
  let receiver: CountingReceiver;

  beforeAll(async () => {
    receiver = await new CountingReceiver().start();
  });
  afterAll(async () => {
    await receiver.stop();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('never holds more sockets to one origin than concurrency, under 600 parallel sends', async () => {
    const concurrency = 4;
    const moduleRef = await Test.createTestingModule({
      imports: [
        ThornModule.forRoot({
          subscriberEntity: false,
          controller: false,
          transport,
          concurrency,
          recipientValidators: loopback(),
          retry: false,
          subscribers: { 'load.*': `${receiver.url}/in` },
        }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const events = app.get(EventService);
    const results = await Promise.all(Array.from({ length: 600 }, (_, i) => events.send('load.tick', { i })));
    expect(results.flatMap((r) => r.deliveries).filter((d) => d.ok)).toHaveLength(600);
    expect(receiver.received).toBe(600);
    expect(receiver.peak).toBeLessThanOrEqual(concurrency);
    expect(receiver.opened).toBeLessThanOrEqual(concurrency);
  });
});
