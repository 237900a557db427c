import 'reflect-metadata';
import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verify } from 'nestjs-thorn';
import { dirname, join } from 'node:path';
import { AppModule } from './app.module.js';
import { freePort, sampleClient } from './client.js';
import { runCrashDemo } from './crash-demo.js';
import { runDeliveryLogDemo } from './delivery-log-demo.js';

/**
 * `npm run demo`: starts the sample (in-memory SQLite, direct dispatcher) and a local receiver, subscribes the
 * receiver through POST /hooks as alice, then creates, edits, publishes, tags, untags and deletes an article, printing
 * every delivery with its signature verified. Exits 0 when every expected event arrived verified, 1 otherwise.
 */
interface Delivery {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const received: Delivery[] = [];
let notify = () => {};

function startReceiver(): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
      notify();
    });
  });
  server.unref();
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  );
}

/** Waits until an `event` delivery beyond those already seen arrives (10 s at most). */
async function waitForEvent(event: string, seen: Set<Delivery>): Promise<Delivery | undefined> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const hit = received.find((d) => !seen.has(d) && d.headers['hook-event'] === event);
    if (hit) return hit;
    if (Date.now() > deadline) return undefined;
    await new Promise<void>((r) => {
      notify = r;
      setTimeout(r, 100);
    });
  }
}

export async function runDemo(log: (line: string) => void = console.log): Promise<boolean> {
  const receiverUrl = await startReceiver();
  const port = await freePort();
  const app = await NestFactory.create(
    AppModule.forRoot({ sqliteFile: ':memory:', dispatcher: 'direct', port }),
    { logger: ['error', 'warn'] },
  );
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }));
  await app.listen(port, '127.0.0.1');
  const base = `http://127.0.0.1:${port}`;
  const call = sampleClient(base);

  let ok = true;
  try {
    log(`sample on ${base}, receiver on ${receiverUrl}`);
    const sub = await call('POST', '/hooks', { event: 'article.*', url: `${receiverUrl}/webhooks` });
    log(`subscribed ${sub.url} to ${sub.event} as alice (subscription ${sub.id}, ${sub.hmac_digest})\n`);
    const seen = new Set<Delivery>();
    const expect = async (step: string, events: string[]) => {
      log(`▶ ${step}`);
      for (const event of events) {
        const d = await waitForEvent(event, seen);
        if (!d) {
          ok = false;
          log(`  ✗ ${event}: no delivery within 10 s`);
          continue;
        }
        seen.add(d);
        const valid = verify(String(d.headers['hook-hmac'] ?? ''), sub.hmac_digest, sub.hmac_secret, d.body);
        ok &&= valid;
        const msg = JSON.parse(d.body.toString('utf8'));
        log(
          `  ${valid ? '✓' : '✗'} ${event.padEnd(22)} delivery ${d.headers['hook-delivery']}  signature ${valid ? 'verified' : 'INVALID'}`,
        );
        log(`    ref ${msg.ref}  sender ${msg.sender}  data ${JSON.stringify(msg.data)}`);
      }
    };

    const article = await call('POST', '/articles', { title: 'Hello webhooks', body: 'First draft' });
    await expect('create an article', ['article.created']);
    await call('PATCH', `/articles/${article.uuid}`, { title: 'Hello, webhooks' });
    await expect('edit its title', ['article.changed']);
    await call('PATCH', `/articles/${article.uuid}`, { state: 'PUBLISHED' });
    await expect('publish it (PENDING → PUBLISHED)', ['article.changed', 'article.published']);
    await call('PATCH', `/articles/${article.uuid}`, { tags: ['nestjs'] });
    await expect('tag it', ['article.tag_added']);
    await call('PATCH', `/articles/${article.uuid}`, { tags: ['nestjs', 'webhooks'] });
    await expect('add a second tag', ['article.tag_added']);
    await call('PATCH', `/articles/${article.uuid}`, { tags: ['webhooks'] });
    await expect('untag it', ['article.tag_removed']);
    await call('PATCH', `/articles/${article.uuid}`, { tags: [] });
    await expect('clear its tags', ['article.tags_cleared']);
    await call('DELETE', `/articles/${article.uuid}`);
    await expect('delete it', ['article.removed']);
    log(
      `\n${ok ? 'all deliveries arrived with valid signatures' : 'SOME DELIVERIES WERE MISSING OR INVALID'} (${received.length} received)`,
    );
  } catch (err) {
    ok = false;
    log(`demo failed: ${(err as Error).message}`);
  } finally {
    await app.close();
  }
  return ok;
}

// run when executed directly (`node .tmp/sample/demo.js`), not when imported by the sample's e2e test; the crash demo
// runs the built main.js next to this file
if (process.argv[1]?.endsWith('demo.js')) {
  void (async () => {
    const ok = await runDemo();
    const logged = await runDeliveryLogDemo();
    const recovered = await runCrashDemo(join(dirname(process.argv[1]), 'main.js'));
    process.exit(ok && logged && recovered ? 0 : 1);
  })();
}
