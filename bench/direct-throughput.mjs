// Scenario 1: direct dispatcher throughput vs a raw undici keep-alive client, same bodies, same concurrency.
import 'reflect-metadata';
import http from 'node:http';
import { Agent } from 'undici';
import { EventService } from 'nestjs-thorn';
import { bodyOfSize, closedLoop, medianOf, quantile, round, thornContext } from './lib.mjs';

const CONCURRENCY = 64;

async function rawUndici(receiver, total, body, extraHeaders = {}) {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: null });
  const { origin } = new URL(receiver.url);
  const payload = JSON.stringify(body);
  const headers = { 'content-type': 'application/json', ...extraHeaders };
  const r = await closedLoop(total, CONCURRENCY, async () => {
    const res = await agent.request({ origin, path: '/raw', method: 'POST', headers, body: payload });
    await res.body.dump();
  });
  await agent.close();
  return r;
}

async function thorn(receiver, k, total, body, transport) {
  const subscribers = Array.from({ length: k }, (_, i) => ({
    url: `${receiver.url}/s${i}`,
    hmacSecret: `secret-${i}`,
  }));
  const app = await thornContext(
    {
      subscribers: { 'article.*': subscribers },
      concurrency: CONCURRENCY,
      ...(transport ? { transport } : {}),
    },
    false,
  );
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

/** Runs `fn` and adds the receiver's CPU use during it (1.0 = one core busy) and the sender's CPU µs per request. */
async function withReceiverCpu(receiver, fn) {
  const a = await receiver.stats();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = await fn();
  const c = process.cpuUsage(c0);
  const b = await receiver.stats();
  const cpu = b.cpuUserMs + b.cpuSystemMs - (a.cpuUserMs + a.cpuSystemMs);
  const count = b.requests - a.requests;
  return { ...r, receiverCpu: cpu / (performance.now() - t0), senderCpuUs: (c.user + c.system) / count };
}

// What a delivery carries besides the body: the raw client sends the same header bytes in the second baseline.
const SAME_HEADERS = {
  'user-agent': 'nestjs-thorn/0.1.0',
  'hook-event': 'article.created',
  'hook-delivery': '3f1c8a0e-8d6f-4f55-9d0b-1a4a7f0e2b61',
  'hook-subscription': '0b6f0c1e-5c55-4a8b-9b39-2a5b0f6e4d11',
  'hook-hmac': 'NoW4PnbIMVpqi579pkYHK2uiHnILE/kWwJ6U+89ZOxg=',
};

/** The raw axios baseline: one keep-alive agent, the same concurrency and bodies, no signing. */
async function rawAxios(receiver, total, body) {
  const { default: axios } = await import('axios');
  const agent = new http.Agent({ keepAlive: true });
  const client = axios.create({
    httpAgent: agent,
    proxy: false,
    maxRedirects: 0,
    validateStatus: () => true,
  });
  const payload = JSON.stringify(body);
  const headers = { 'content-type': 'application/json' };
  const r = await closedLoop(total, CONCURRENCY, () =>
    client.post(`${receiver.url}/raw`, payload, { headers }),
  );
  agent.destroy();
  return r;
}

/** One result row; `base` is the baseline measured in the same run. */
function row(caseName, unit, r, base, extra = {}) {
  return {
    scenario: 'direct throughput',
    case: caseName,
    value: round(r.perSecond, 0),
    unit,
    p50ms: round(r.p50, 2),
    p99ms: round(r.p99, 2),
    baseline: round(base.perSecond, 0),
    ratio: round(r.perSecond / base.perSecond, 2),
    receiverCpu: round(r.receiverCpu, 2),
    senderCpuUs: round(r.senderCpuUs, 1),
    runs: r.runs,
    ...extra,
  };
}

/** The axios transport (K = 10) against a raw axios client, both measured now: axios's own cost is the limit. */
export async function axiosThroughput(receiver, { runs = 3, total = 10_000, bodySize = 300 } = {}) {
  const body = bodyOfSize(bodySize);
  await rawAxios(receiver, 1000, body);
  await thorn(receiver, 10, 1000, body, 'axios');
  const base = await medianOf(runs, 'perSecond', () =>
    withReceiverCpu(receiver, () => rawAxios(receiver, total, body)),
  );
  const r = await medianOf(runs, 'perSecond', () =>
    withReceiverCpu(receiver, () => thorn(receiver, 10, total, body, 'axios')),
  );
  const baseName = `raw axios keep-alive, c=${CONCURRENCY}, body only`;
  return [
    row(`baseline: ${baseName}`, 'requests/s', base, base),
    row('axios transport, K=10, signed', 'deliveries/s', r, base, {
      baselineName: baseName,
      target: '>= 0.8',
    }),
  ];
}

/** Rows for K = 1, 10, 100, each the median of `runs` runs, against two raw-undici baselines measured in this run. */
export async function directThroughput(receiver, { runs = 3, total = 30_000, bodySize = 300 } = {}) {
  const body = bodyOfSize(bodySize);
  // warm up both paths (JIT, connections)
  await rawUndici(receiver, 3000, body);
  await thorn(receiver, 10, 3000, body);
  const baseline = await medianOf(runs, 'perSecond', () =>
    withReceiverCpu(receiver, () => rawUndici(receiver, total, body)),
  );
  const sameHeaders = await medianOf(runs, 'perSecond', () =>
    withReceiverCpu(receiver, () => rawUndici(receiver, total, body, SAME_HEADERS)),
  );
  const baseName = `raw undici keep-alive, c=${CONCURRENCY}, body only`;
  const rows = [
    row(`baseline: ${baseName}`, 'requests/s', baseline, baseline),
    row(
      `baseline: raw undici keep-alive, c=${CONCURRENCY}, same headers as a delivery`,
      'requests/s',
      sameHeaders,
      baseline,
    ),
  ];
  for (const k of [1, 10, 100]) {
    const r = await medianOf(runs, 'perSecond', () =>
      withReceiverCpu(receiver, () => thorn(receiver, k, total, body)),
    );
    rows.push(
      row(`undici, K=${k}, signed`, 'deliveries/s', r, baseline, {
        baselineName: baseName,
        ratioSameHeaders: round(r.perSecond / sameHeaders.perSecond, 2),
        target: '>= 0.8',
      }),
    );
  }
  return rows;
}
