// Scenario 1: direct dispatcher throughput vs a raw undici keep-alive client, same bodies, same concurrency.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Agent } from 'undici';
import { EventService, ThornModule, blockInternalIps, ensureProtocol } from 'nestjs-thorn';
import { bodyOfSize, medianOf, quantile, round } from './lib.mjs';

const CONCURRENCY = 64;

async function rawUndici(receiver, total, body) {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: null });
  const { origin } = new URL(receiver.url);
  const payload = JSON.stringify(body);
  const latencies = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < total) {
        next++;
        const s = performance.now();
        const res = await agent.request({
          origin,
          path: '/raw',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: payload,
        });
        await res.body.dump();
        latencies.push(performance.now() - s);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await agent.close();
  return { perSecond: total / seconds, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
}

async function thorn(receiver, k, total, body, transport) {
  const subscribers = Array.from({ length: k }, (_, i) => ({
    url: `${receiver.url}/s${i}`,
    hmacSecret: `secret-${i}`,
  }));
  class App {}
  Module({
    imports: [
      ThornModule.forRoot({
        subscriberEntity: false,
        controller: false,
        subscribers: { 'article.*': subscribers },
        recipientValidators: [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http')],
        retry: false,
        concurrency: CONCURRENCY,
        ...(transport ? { transport } : {}),
      }),
    ],
  })(App);
  const app = await NestFactory.createApplicationContext(App, { logger: false });
  const events = app.get(EventService);
  const nEvents = Math.ceil(total / k);
  // enough events in flight to keep CONCURRENCY requests busy
  const window = Math.max(1, Math.ceil((2 * CONCURRENCY) / k));
  const latencies = [];
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next < nEvents) {
        next++;
        const s = performance.now();
        const r = await events.send('article.created', body, {
          onSuccess: () => void latencies.push(performance.now() - s),
        });
        failed += r.deliveries.filter((d) => !d.ok).length;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await app.close();
  if (failed) throw new Error(`${failed} deliveries failed`);
  return {
    perSecond: (nEvents * k) / seconds,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
  };
}

/** Rows for K = 1, 10, 100 (and the axios transport if available), each the median of `runs` runs. */
export async function directThroughput(
  receiver,
  { runs = 3, total = 30_000, bodySize = 300, transports = ['undici'] } = {},
) {
  const body = bodyOfSize(bodySize);
  const rows = [];
  // warm up both paths (JIT, connections)
  await rawUndici(receiver, 3000, body);
  await thorn(receiver, 10, 3000, body);
  const baseline = await medianOf(runs, 'perSecond', () => rawUndici(receiver, total, body));
  for (const transport of transports) {
    for (const k of [1, 10, 100]) {
      const r = await medianOf(runs, 'perSecond', () =>
        thorn(receiver, k, total, body, transport === 'undici' ? undefined : transport),
      );
      rows.push({
        scenario: 'direct throughput',
        case: `${transport}, K=${k}, signed`,
        value: round(r.perSecond, 0),
        unit: 'deliveries/s',
        p50ms: round(r.p50, 2),
        p99ms: round(r.p99, 2),
        baseline: round(baseline.perSecond, 0),
        baselineName: `raw undici keep-alive, c=${CONCURRENCY}, unsigned`,
        ratio: round(r.perSecond / baseline.perSecond, 2),
        target: '>= 0.8',
        runs: r.runs,
      });
    }
  }
  return rows;
}
