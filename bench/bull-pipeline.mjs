// Scenario 4: the queue pipelines end to end, bull and bullmq in the same run. A producer (this process, `worker: false`)
// enqueues events; 1 or 2 worker processes (bench/bull-worker.mjs: the built package, `worker: true`, no database,
// dispatcher 'bull' or 'bullmq') resolve K = 10 static signed
// subscribers each and deliver to a loopback receiver process. Baseline: the direct dispatcher delivering the same
// events to the same receiver from this one process, measured in the same run, runs interleaved.
//
// Two measurements per setup:
//   - throughput: E events enqueued as fast as the producer can, deliveries/s = E·K / (last receipt − first send());
//   - latency at a fixed offered load (below every setup's capacity): every `interval` ms a batch of B events goes
//     out, each with one send(), all under an event name of its own; latency = the receiver's last receipt of the
//     batch's B·K deliveries − the batch's first send(). p50/p99 over the batches.
// Each setup runs on its own queue (Redis key prefix), so idle workers of the other setup stay blocked in Redis.
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { EventService } from 'nestjs-thorn';
import { freePort } from '../test/services.mjs';
import { bodyOfSize, median, quantile, round, thornContext } from './lib.mjs';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const epochNow = () => performance.timeOrigin + performance.now();

/** The batch receiver in its own process. */
async function startBatchReceiver() {
  const port = await freePort();
  const child = spawn(process.execPath, [here('./batch-receiver.mjs'), '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('listening') && resolve());
    child.once('exit', (c) => reject(new Error(`batch receiver exited with ${c}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  const get = async (path) => (await fetch(url + path)).json();
  return {
    url,
    pid: child.pid,
    stats: () => get('/stats'),
    events: (prefix) => get(`/events?prefix=${encodeURIComponent(prefix)}`),
    reset: () => fetch(`${url}/reset`, { method: 'POST' }).then((r) => r.text()),
    async waitFor(n, ms) {
      const end = Date.now() + ms;
      for (;;) {
        const s = await this.stats();
        if (s.requests >= n) return s;
        if (Date.now() > end) throw new Error(`receiver got ${s.requests} of ${n} in ${ms} ms`);
        await sleep(10);
      }
    },
    stop: () => child.kill('SIGTERM'),
  };
}

/** CPU ms (user + system) a process used so far, from /proc (Linux); null elsewhere. */
function cpuMsOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, at USER_HZ 100
  } catch {
    return null;
  }
}

function startWorker(config, nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeArgs, here('./bull-worker.mjs')], {
    env: { ...process.env, NODE_OPTIONS: '', THORN_BENCH_WORKER: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('ready') && resolve());
    child.once('exit', (c, s) => reject(new Error(`bench worker exited (${c ?? s}) before ready`)));
  });
  return {
    child,
    ready,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function bootApp(options) {
  const app = await thornContext(options);
  return { app, events: app.get(EventService) };
}

/**
 * Enqueues/sends `n` events named `name`. Bull producer: buffered (`bufferEvents`, flushed every `flushEvery` sends,
 * so each flush is one addBulk of event jobs) or one send() each, `window` at a time. Direct: one send() each, `window`
 * events at a time (resolves once delivered).
 */
async function sendAll(events, n, name, body, { buffered, flushEvery, window }) {
  if (buffered) {
    await events.bufferEvents(
      async (buffer) => {
        for (let i = 0; i < n; i++) {
          await events.send(name, body);
          await buffer.maybeFlush();
        }
      },
      { flushFreq: flushEvery },
    );
    return;
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next < n) {
        next++;
        await events.send(name, body);
      }
    }),
  );
}

/** One throughput run: E events → E·K receipts. */
async function throughput(setup, receiver, n, k, body, redisCpu) {
  await receiver.reset();
  const redis0 = await redisCpu();
  const cpu0 = setup.pids.map(cpuMsOf);
  const self0 = process.cpuUsage();
  const t0 = epochNow();
  await sendAll(setup.events, n, 'bench.load', body, setup.send);
  const enqueuedMs = epochNow() - t0;
  const s = await receiver.waitFor(n * k, 60_000);
  const seconds = (s.lastAt - t0) / 1000;
  const self = process.cpuUsage(self0);
  const cpu = setup.pids.map((p, i) => (cpuMsOf(p) ?? NaN) - (cpu0[i] ?? NaN));
  const redisMs = (await redisCpu()) - redis0;
  if (s.signed < n * k) throw new Error(`${n * k - s.signed} deliveries arrived unsigned`);
  return {
    perSecond: (n * k) / seconds,
    enqueuedMs,
    seconds,
    // CPU µs per delivery: this process (producer or direct sender) and each worker
    producerUs: (self.user + self.system) / (n * k),
    workerUs: cpu.map((ms) => (ms * 1000) / (n * k)),
    receiverUs: ((s.cpuUserMs + s.cpuSystemMs) * 1000) / (n * k),
    redisUs: (redisMs * 1000) / (n * k),
  };
}

/** Latency at a fixed offered load: `batches` batches of `b` events, one every `interval` ms. */
async function latency(setup, receiver, k, body, { batches, b, interval }, tag) {
  await receiver.reset();
  const sentAt = [];
  const pending = [];
  const t0 = performance.now();
  for (let i = 0; i < batches; i++) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 0) await sleep(wait);
    sentAt.push(epochNow());
    const name = `bench.b${tag}-${i}`;
    for (let j = 0; j < b; j++) pending.push(setup.events.send(name, body));
  }
  await Promise.all(pending);
  await receiver.waitFor(batches * b * k, 60_000);
  const got = await receiver.events(`bench.b${tag}-`);
  const lat = sentAt.map((s, i) => {
    const e = got[`bench.b${tag}-${i}`];
    if (!e || e.n !== b * k) throw new Error(`batch ${i}: ${e?.n ?? 0} of ${b * k} deliveries`);
    return e.lastAt - s;
  });
  return { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99) };
}

export async function bullPipeline(
  { redisUrl },
  {
    runs = 5,
    k = 10,
    events = 6000,
    // measured on this machine: 32 in flight per process beat 8, 16, 64 and 128; chunkSize 10 (the default: one
    // event job holds its K = 10 requests, no fan-out) matched 20/50/100 with buffered producers, at lower latency
    concurrency = 32,
    chunkSize = 10,
    // producer: one send() per event, 32 at a time (`{ buffered: true, flushEvery: 100 }` = bufferEvents + addBulk)
    send = { buffered: false, window: 32 },
    load = { batches: 150, b: 5, interval: 10 },
    // extra node flags for the workers, e.g. ['--cpu-prof'] to profile them
    workerNodeArgs = [],
    // the queue dispatchers measured side by side (bull first: its client reads Redis' CPU counter)
    dispatchers = ['bull', 'bullmq'],
  } = {},
) {
  const receiver = await startBatchReceiver();
  const body = bodyOfSize(300);
  const subscribers = Array.from({ length: k }, (_, i) => ({
    url: `${receiver.url}/s${i}`,
    hmacSecret: `secret-${i}`,
  }));
  const workers = [];
  const apps = [];
  const setups = [];
  const tag = `bench-bull-${process.pid}`;
  try {
    // baseline: direct dispatcher, same subscribers, this process
    const direct = await bootApp({
      dispatcher: 'direct',
      concurrency,
      subscribers: { 'bench.*': subscribers },
    });
    apps.push(direct.app);
    setups.push({
      name: 'baseline: direct dispatcher, one process',
      events: direct.events,
      pids: [],
      send: { buffered: false, window: Math.max(1, Math.ceil((2 * concurrency) / k)) },
    });
    for (const dispatcher of dispatchers) {
      for (const n of [1, 2]) {
        const prefix = `${tag}-${dispatcher}-${n}w`;
        const producer = await bootApp({
          dispatcher,
          [dispatcher]: { url: redisUrl, prefix },
          worker: false,
        });
        apps.push(producer.app);
        const queue = producer.events.dispatcher.queue;
        await queue.obliterate({ force: true });
        const ws = Array.from({ length: n }, () =>
          startWorker(
            {
              dispatcher,
              redisUrl,
              prefix,
              receiverUrl: receiver.url,
              k,
              concurrency,
              chunkSize,
              maxRunMs: 300_000,
            },
            workerNodeArgs,
          ),
        );
        workers.push(...ws);
        await Promise.all(ws.map((w) => w.ready));
        setups.push({
          name: `${n} worker process${n > 1 ? 'es' : ''}`,
          dispatcher,
          workers: n,
          events: producer.events,
          queue,
          // drops finished jobs: Bull's clean(grace, status), BullMQ's clean(grace, limit, type)
          clean: () => (dispatcher === 'bull' ? queue.clean(0, 'completed') : queue.clean(0, 0, 'completed')),
          pids: ws.map((w) => w.child.pid),
          send,
        });
      }
    }
    // Redis' own CPU counter (INFO cpu), for the CPU budget per delivery
    const info =
      setups.find((x) => x.dispatcher === 'bull')?.queue.client ??
      (await setups[1].queue.getBackend().client);
    const redisCpu = async () => {
      const text = await info.info('cpu');
      const v = (key) => Number(new RegExp(`${key}:([\\d.]+)`).exec(text)?.[1] ?? NaN);
      return (v('used_cpu_sys') + v('used_cpu_user')) * 1000;
    };
    // warm-up: JIT, connections, the queue clients
    for (const s of setups) await throughput(s, receiver, 500, k, body, redisCpu);

    const results = new Map(setups.map((s) => [s, []]));
    for (let r = 0; r < runs; r++) {
      // rotate the order so no setup always runs first or last
      for (let i = 0; i < setups.length; i++) {
        const s = setups[(i + r) % setups.length];
        results.get(s).push(await throughput(s, receiver, events, k, body, redisCpu));
        // drop finished jobs (outside the timing) so Redis does not grow
        if (s.clean) await s.clean();
      }
    }
    const lat = new Map();
    for (const [i, s] of setups.entries()) lat.set(s, await latency(s, receiver, k, body, load, i));

    const base = results.get(setups[0]);
    const baseRate = median(base.map((x) => x.perSecond));
    const rows = [];
    const offered = (load.b * k * 1000) / load.interval;
    for (const s of setups) {
      const rs = results.get(s);
      const rate = median(rs.map((x) => x.perSecond));
      const l = lat.get(s);
      const w = s.workers;
      const m = (f) => round(median(rs.map(f)), 1);
      const cpu = `CPU µs/delivery: ${w ? 'producer' : 'sender'} ${m((x) => x.producerUs)}${
        w
          ? `, workers ${rs[0].workerUs.map((_, j) => m((x) => x.workerUs[j])).join(' + ')}, redis ${m((x) => x.redisUs)}`
          : ''
      }, receiver ${m((x) => x.receiverUs)}`;
      const total = median(
        rs.map(
          (x) => x.producerUs + x.receiverUs + (w ? x.redisUs + x.workerUs.reduce((a, c) => a + c, 0) : 0),
        ),
      );
      const ceiling = `all processes ${round(total, 1)} µs CPU/delivery → ${os.cpus().length} cores cap ≈ ${round((os.cpus().length * 1e6) / total, -2)}/s`;
      const rateOf = (setup) => median(results.get(setup).map((x) => x.perSecond));
      const oneWorker = setups.find((x) => x.dispatcher === s.dispatcher && x.workers === 1);
      // bullmq next to bull with as many workers, same run
      const bull =
        s.dispatcher === 'bullmq' && setups.find((x) => x.dispatcher === 'bull' && x.workers === w);
      rows.push({
        scenario: `${s.dispatcher ?? 'bull'} pipeline`,
        case: `K=${k}, ${s.name}`,
        value: round(rate, 0),
        unit: 'deliveries/s',
        p50ms: round(l.p50, 1),
        p99ms: round(l.p99, 1),
        baseline: round(baseRate, 0),
        baselineName: 'direct dispatcher delivering the same events from one process, same run',
        ratio: round(rate / baseRate, 2),
        ...(w === 1 && !bull ? { target: '≥ 10,000 deliveries/s', met: rate >= 10_000 } : {}),
        ...(w === 1 && bull
          ? {
              target: "≥ 10,000 deliveries/s and ≥ bull's",
              met: rate >= 10_000 && rate >= rateOf(bull),
            }
          : {}),
        ...(w === 2 ? { target: 'faster than 1 worker', met: rate > rateOf(oneWorker) } : {}),
        ...(bull ? { bull: round(rateOf(bull), 0), ratioToBull: round(rate / rateOf(bull), 2) } : {}),
        runs: rs.map((x) => round(x.perSecond, 0)),
        options: w ? { concurrency, chunkSize, producer: s.send } : { concurrency },
        note: `${bull ? `${round(rate / rateOf(bull), 2)} × bull with ${w} worker${w > 1 ? 's' : ''} (${round(rateOf(bull), 0)}/s); ` : ''}${w ? `concurrency ${concurrency}, chunkSize ${chunkSize}; ` : ''}p50/p99: a batch of ${load.b} events (${
          load.b * k
        } deliveries) every ${load.interval} ms (${offered}/s offered), first send() → its last receipt; throughput: ${events} events × K=${k} per run; ${cpu}; ${ceiling}`,
      });
    }
    return rows;
  } finally {
    for (const s of setups) if (s.queue) await s.queue.obliterate({ force: true }).catch(() => undefined);
    await Promise.all(workers.map((w) => w.stop()));
    for (const a of apps) await a.close();
    receiver.stop();
  }
}
