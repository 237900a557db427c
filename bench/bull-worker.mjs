// One bull or bullmq worker process for the pipeline scenario: the built package (by name), `worker: true`, K static
// signed subscribers, no database. Config in THORN_BENCH_WORKER (JSON): { dispatcher ('bull' default, 'bullmq'),
// redisUrl, prefix, receiverUrl, k, concurrency, chunkSize, maxRunMs }. Prints "ready"; SIGTERM closes it
// gracefully; it stops itself after maxRunMs.
import 'reflect-metadata';
import { thornContext } from './lib.mjs';

const cfg = JSON.parse(process.env.THORN_BENCH_WORKER ?? '{}');
const subscribers = Array.from({ length: cfg.k }, (_, i) => ({
  url: `${cfg.receiverUrl}/s${i}`,
  hmacSecret: `secret-${i}`,
}));
const app = await thornContext({
  dispatcher: cfg.dispatcher ?? 'bull',
  [cfg.dispatcher ?? 'bull']: { url: cfg.redisUrl, prefix: cfg.prefix },
  worker: true,
  concurrency: cfg.concurrency,
  chunkSize: cfg.chunkSize,
  subscribers: { 'bench.*': subscribers },
});
app.enableShutdownHooks();
setTimeout(() => process.kill(process.pid, 'SIGTERM'), cfg.maxRunMs ?? 300_000).unref();
console.log('ready');
