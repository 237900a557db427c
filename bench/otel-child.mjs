// One telemetry-overhead run in a fresh process: `total` events to one signed static subscriber through the direct
// dispatcher, in one of three modes (THORN_BENCH_OTEL JSON: { receiverUrl, total, mode }):
//   'absent' — @opentelemetry/api hidden, as in an app that does not install it;
//   'api'    — the API installed, no SDK registered (its no-op);
//   'sdk'    — the SDK registered (spans sampled and ended, metrics aggregated, nothing exported).
// Prints one JSON line: { perSecond, cpuUs (sender CPU µs per delivery), apiLoaded }.
import 'reflect-metadata';
import Module, { createRequire } from 'node:module';

const cfg = JSON.parse(process.env.THORN_BENCH_OTEL ?? '{}');
if (cfg.mode === 'absent') {
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    if (request.startsWith('@opentelemetry/'))
      throw Object.assign(new Error(`hidden ${request}`), { code: 'MODULE_NOT_FOUND' });
    return resolve.call(this, request, ...rest);
  };
}
if (cfg.mode === 'sdk') {
  const require = createRequire(import.meta.url);
  const api = require('@opentelemetry/api');
  const { BasicTracerProvider } = require('@opentelemetry/sdk-trace-base');
  const { MeterProvider } = require('@opentelemetry/sdk-metrics');
  const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  api.trace.setGlobalTracerProvider(new BasicTracerProvider());
  api.metrics.setGlobalMeterProvider(new MeterProvider());
}
setTimeout(() => process.exit(3), 120_000).unref();

const { EventService } = await import('nestjs-thorn');
const { bodyOfSize, thornContext } = await import('./lib.mjs');
const app = await thornContext({
  subscribers: { 'otel.*': [{ url: `${cfg.receiverUrl}/otel`, hmacSecret: 'otel-secret' }] },
  concurrency: 64,
});
const events = app.get(EventService);
const body = bodyOfSize(300);
let failed = 0;
const run = async (n) => {
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next++ < n)
        failed += (await events.send('otel.sent', body)).deliveries.filter((d) => !d.ok).length;
    }),
  );
};
await run(Math.min(2000, cfg.total)); // warm-up: JIT, connections
const t0 = performance.now();
const c0 = process.cpuUsage();
await run(cfg.total);
const perSecond = cfg.total / ((performance.now() - t0) / 1000);
const cpu = process.cpuUsage(c0);
const cpuUs = (cpu.user + cpu.system) / cfg.total;
await app.close();
let apiLoaded = true;
try {
  createRequire(import.meta.url)('@opentelemetry/api');
} catch {
  apiLoaded = false;
}
if (failed) throw new Error(`${failed} deliveries failed`);
console.log(JSON.stringify({ perSecond, cpuUs, apiLoaded }));
