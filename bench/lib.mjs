// Shared helpers for the benchmark scenarios: a receiver process, stats, timing. Loopback only, bounded loops.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/services.mjs';

const sharedReceiver = fileURLToPath(new URL('../../shared/bench/receiver.mjs', import.meta.url));
const localReceiver = fileURLToPath(new URL('./receiver.mjs', import.meta.url));

/** Starts the loopback receiver in its own process; resolves to { url, stats(), reset(), stop() }. */
export async function startReceiver(args = []) {
  // the project's loopback receiver (a copy of the one in shared/bench, so a plain clone can run the bench)
  const script = existsSync(localReceiver) ? localReceiver : sharedReceiver;
  const port = await freePort();
  const child = spawn(process.execPath, [script, '--port', String(port), '--max-seconds', '900', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('listening') && resolve());
    child.once('exit', (c) => reject(new Error(`receiver exited with ${c}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    async stats() {
      return (await fetch(`${url}/stats`)).json();
    },
    async reset() {
      await fetch(`${url}/reset`, { method: 'POST' });
    },
    async waitFor(n, ms = 60_000) {
      const end = Date.now() + ms;
      for (;;) {
        const s = await this.stats();
        if (s.requests >= n) return s;
        if (Date.now() > end) throw new Error(`receiver got ${s.requests} of ${n} in ${ms} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop() {
      child.kill('SIGTERM');
    },
  };
}

/** The value at quantile q (0..1) of an array of numbers. */
export function quantile(values, q) {
  if (!values.length) return NaN;
  const s = Float64Array.from(values).sort();
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** Median of a list. */
export const median = (xs) => quantile(xs, 0.5);

/** Runs `fn` `runs` times and returns the run whose `key` is the median. */
export async function medianOf(runs, key, fn) {
  const out = [];
  for (let i = 0; i < runs; i++) out.push(await fn(i));
  out.sort((a, b) => a[key] - b[key]);
  return { ...out[Math.floor(out.length / 2)], runs: out.map((o) => round(o[key])) };
}

export const round = (x, d = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

/** A JSON body of about `size` bytes. */
export function bodyOfSize(size) {
  const base = {
    event: 'article.created',
    ref: 'https://example.com/articles/1',
    sender: 42,
    data: { title: '' },
  };
  const pad = Math.max(0, size - JSON.stringify(base).length);
  base.data.title = 'x'.repeat(pad);
  return base;
}

/**
 * `concurrency` lanes that each call `fn()` until `total` calls were made; throughput and per-call latency.
 * The same closed loop drives the raw-client baselines and the package, so they are measured alike.
 */
export async function closedLoop(total, concurrency, fn) {
  const latencies = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        const s = performance.now();
        await fn();
        latencies.push(performance.now() - s);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { perSecond: total / seconds, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
}

/** A Nest application context with ThornModule only (no TypeORM, no controller) and loopback receivers allowed. */
export async function thornContext(options, logger = ['error', 'warn']) {
  const [{ Module }, { NestFactory }, thorn] = await Promise.all([
    import('@nestjs/common'),
    import('@nestjs/core'),
    import('nestjs-thorn'),
  ]);
  class App {}
  Module({
    imports: [
      thorn.ThornModule.forRoot({
        subscriberEntity: false,
        controller: false,
        recipientValidators: [
          thorn.blockInternalIps({ allow: ['127.0.0.0/8'] }),
          thorn.ensureProtocol('http'),
        ],
        retry: false,
        ...options,
      }),
    ],
  })(App);
  return NestFactory.createApplicationContext(App, { logger });
}
