// One memory run in a fresh process (so peak RSS belongs to this run only): `total` events through
// eventService.bufferEvents() with maybeFlush() every `flushEvery` sends, delivered by the direct dispatcher to one
// signed static subscriber (the loopback receiver). Config in THORN_BENCH_MEMORY (JSON):
// { receiverUrl, total, flushEvery, concurrency }. Prints one JSON line of MB figures. Run with --expose-gc.
import 'reflect-metadata';
import { EventService } from 'nestjs-thorn';
import { bodyOfSize, thornContext } from './lib.mjs';

const cfg = JSON.parse(process.env.THORN_BENCH_MEMORY ?? '{}');
const MB = 2 ** 20;
const rss = () => process.memoryUsage.rss() / MB;
const settle = async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 20));
  }
};
setTimeout(() => {
  console.error('memory run: time limit');
  process.exit(3);
}, cfg.maxRunMs ?? 120_000).unref();

const app = await thornContext({
  subscribers: { 'mem.*': [{ url: `${cfg.receiverUrl}/mem`, hmacSecret: 'memory-secret' }] },
  concurrency: cfg.concurrency ?? 64,
});
const events = app.get(EventService);
const body = bodyOfSize(300);

let failed = 0;
async function pass(n, onFlushed) {
  let sent = 0;
  await events.bufferEvents(
    async (buffer) => {
      for (let i = 0; i < n; i++) {
        await events.send('mem.created', body);
        sent++;
        const before = buffer.size;
        const results = await buffer.maybeFlush();
        if (results) {
          for (const r of results) for (const d of r.deliveries) if (!d.ok) failed++;
          await onFlushed?.(sent, before);
        }
      }
    },
    { flushFreq: cfg.flushEvery },
  );
}

// warm up (JIT, keep-alive connections), then the idle baseline
await pass(Math.min(2000, cfg.flushEvery * 2));
await settle();
const idle = rss();

// sample RSS every 5 ms while events pass through
let peakSampled = idle;
const heap0 = process.memoryUsage();
const peakMem = { heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  peakSampled = Math.max(peakSampled, m.rss / MB);
  for (const k of Object.keys(peakMem)) peakMem[k] = Math.max(peakMem[k], m[k] / MB);
}, 5);
const marks = {};
const t0 = performance.now();
await pass(cfg.total, async (sent) => {
  if (sent === cfg.total / 2) {
    // peak of the first half; the sampler's peak from here on is the second half's
    marks.firstHalfPeak = peakSampled;
    peakSampled = rss();
  }
});
marks.secondHalfPeak = peakSampled;
peakSampled = Math.max(marks.firstHalfPeak, marks.secondHalfPeak);
const seconds = (performance.now() - t0) / 1000;
clearInterval(sampler);
await settle();
const after = rss();
const heapAfterGc = process.memoryUsage().heapUsed / MB;

// live heap held per in-flight delivery: GC while `flushEvery` deliveries are in flight (after the measured pass, so
// the forced GCs do not change its RSS)
let liveKb = NaN;
if (globalThis.gc) {
  const h0 = process.memoryUsage().heapUsed;
  await events.bufferEvents(async (buffer) => {
    for (let i = 0; i < cfg.flushEvery; i++) await events.send('mem.created', body);
    const flushing = buffer.flush();
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    globalThis.gc();
    liveKb = (process.memoryUsage().heapUsed - h0) / 1024 / cfg.flushEvery;
    await flushing;
  });
}
const out = {
  idle,
  peak: Math.max(peakSampled, process.resourceUsage().maxRSS / 1024),
  peakSampled,
  firstHalfPeak: marks.firstHalfPeak,
  secondHalfPeak: marks.secondHalfPeak,
  afterGc: after,
  heapAfterGc,
  heapIdle: heap0.heapUsed / MB,
  peakHeapUsed: peakMem.heapUsed,
  peakHeapTotal: peakMem.heapTotal,
  peakExternal: peakMem.external,
  perSecond: cfg.total / seconds,
  liveKbPerInFlight: liveKb,
  failed,
};
await app.close();
console.log(JSON.stringify(out));
process.exit(0);
