import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppModule } from './app.module.js';
import { freePort, sampleClient } from './client.js';

/**
 * The delivery-log part of `npm run demo` (SPEC §10): a receiver that is down, the log of the failed delivery with
 * every attempt, a redelivery once it is back, and the recovery of everything that failed meanwhile, all through the
 * sample's /hooks routes. Its own sample instance (in-memory SQLite, ledger on, one retry) so failures end quickly.
 * Resolves to whether every step did what it should.
 */
export async function runDeliveryLogDemo(log: (line: string) => void = console.log): Promise<boolean> {
  let down = true;
  const received: string[] = [];
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push(String(req.headers['hook-delivery']));
      if (down) res.writeHead(503, { 'content-type': 'text/plain' }).end('receiver down for maintenance');
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const port = await freePort();
  const app = await NestFactory.create(
    AppModule.forRoot({ sqliteFile: ':memory:', dispatcher: 'direct', port, retryMax: 1 }),
    { logger: ['error'] },
  );
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }));
  await app.listen(port, '127.0.0.1');
  const base = `http://127.0.0.1:${port}`;
  const call = sampleClient(base);
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 20_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`no ${what} within 20 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  let ok = true;
  const step = (good: boolean, line: string) => {
    ok &&= good;
    log(`  ${good ? '✓' : '✗'} ${line}`);
  };
  try {
    log(`\n▶ delivery log: sample on ${base}, a receiver on ${receiverUrl} that answers 503`);
    const sub = await call('POST', '/hooks', { event: 'article.created', url: `${receiverUrl}/down` });
    const deliveries = (query = '') => call('GET', `/hooks/${sub.id}/deliveries${query}`);

    await call('POST', '/articles', { title: 'Sent while the receiver is down' });
    log('  created an article; its delivery is attempted, retried once, then fails');
    await until('failed delivery', async () => (await deliveries('?status=failed')).length === 1);
    const [failed] = await deliveries();
    step(
      failed.status === 'failed' && failed.attempts === 2,
      `GET /hooks/${sub.id.slice(0, 8)}…/deliveries → ${failed.status}, ${failed.attempts} attempts, last: ${failed.error}`,
    );
    const detail = await call('GET', new URL(failed.delivery).pathname);
    for (const a of detail.attempt_log) {
      log(
        `    attempt ${a.number} at ${a.started_at}: ${a.response_status} in ${a.duration_ms} ms, body "${a.response_body}"`,
      );
    }
    log(`    payload ${detail.payload.slice(0, 90)}…`);

    down = false;
    log('  the receiver is back: redeliver it');
    await call('POST', `${new URL(failed.delivery).pathname}/redeliver`);
    await until(
      'redelivery',
      async () => (await call('GET', new URL(failed.delivery).pathname)).status === 'succeeded',
    );
    const redelivered = await call('GET', new URL(failed.delivery).pathname);
    step(
      redelivered.attempts === 3 && received.filter((id) => id === failed.id).length === 3,
      `POST …/redeliver → 202; attempt ${redelivered.attempts} ${redelivered.status} with the same Hook-Delivery ${failed.id}`,
    );

    down = true;
    const since = new Date().toISOString();
    for (const title of ['Outage one', 'Outage two']) await call('POST', '/articles', { title });
    log(`  the receiver goes down again; two more articles fail (since ${since})`);
    await until('two more failures', async () => (await deliveries('?status=failed')).length === 2);
    down = false;
    const recovered = await call('POST', `/hooks/${sub.id}/recover`, { since });
    await until('recovery', async () => (await deliveries('?status=succeeded')).length === 3);
    step(
      recovered.redelivering === 2,
      `POST /hooks/${sub.id.slice(0, 8)}…/recover → 202 ${JSON.stringify(recovered)}`,
    );
    const page = await fetch(`${base}/hooks/${sub.id}/deliveries?limit=2`, {
      headers: { authorization: 'Bearer alice-token' },
    });
    const link = page.headers.get('link');
    step(
      ((await page.json()) as unknown[]).length === 2 && !!link,
      `GET …/deliveries?limit=2 → 2 rows, Link: ${link?.replace(/cursor=[^>&]+/, 'cursor=…')}`,
    );
  } catch (err) {
    ok = false;
    log(`  ✗ delivery-log demo failed: ${(err as Error).message}`);
  } finally {
    await app.close();
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
  }
  return ok;
}
