// `npm run bench`: every scenario next to a baseline measured in the same run. Writes bench/results/latest.json.
// Starts its own PostgreSQL/Redis (throwaway) and a loopback receiver; bounded in count and time.
// `node bench/run.mjs <scenario...>` runs some of: direct, axios, save, lookup, bull (the bull and bullmq pipelines),
// memory, otel, ledger, deliveries, cpu.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { startReceiver } from './lib.mjs';
import { axiosThroughput, directThroughput } from './direct-throughput.mjs';
import { saveOverhead } from './save-overhead.mjs';
import { lookupScale } from './lookup-scale.mjs';
import { deliveriesPage } from './deliveries-page.mjs';
import { bullPipeline } from './bull-pipeline.mjs';
import { memory } from './memory.mjs';
import { otelOverhead } from './otel-overhead.mjs';
import { ledgerBench } from './ledger.mjs';
import { cpuPath } from './cpu-path.mjs';
import { startPostgres, startRedis } from '../test/services.mjs';

const SCENARIOS = ['direct', 'cpu', 'axios', 'save', 'lookup', 'deliveries', 'bull', 'memory', 'otel', 'ledger'];
const only = process.argv.slice(2);
for (const o of only) {
  if (!SCENARIOS.includes(o)) {
    console.error(`unknown scenario "${o}": use ${SCENARIOS.join(', ')}`);
    process.exit(2);
  }
}
const want = (name) => only.length === 0 || only.includes(name);
const started = performance.now();
const deadline = setTimeout(() => {
  console.error('bench: 30-minute limit reached, stopping');
  process.exit(2);
}, 30 * 60_000);

const rows = [];
const cleanups = [];
const print = (r) =>
  console.log(
    [
      r.scenario.padEnd(18),
      r.case.padEnd(44),
      `${r.value} ${r.unit}`.padEnd(24),
      `baseline ${r.baseline}`.padEnd(18),
      `ratio ${r.ratio}`.padEnd(12),
      r.p99ms !== undefined ? `p50 ${r.p50ms} ms p99 ${r.p99ms} ms` : '',
      r.target ? `target ${r.target}` : '',
      r.ratioSameHeaders !== undefined ? `(vs same-headers baseline ${r.ratioSameHeaders})` : '',
      r.receiverCpu !== undefined ? `receiver CPU ${r.receiverCpu}` : '',
      r.senderCpuUs !== undefined ? `sender ${r.senderCpuUs} µs CPU/request` : '',
      r.note ?? '',
    ]
      .filter(Boolean)
      .join(' '),
  );
const record = (r) => {
  rows.push(r);
  print(r);
};
const elapsed = () => `${Math.round((performance.now() - started) / 1000)} s`;

// services, started once on first use and stopped at the end
let pg;
let redis;
const postgres = async () => {
  if (!pg) {
    pg = await startPostgres();
    cleanups.push(() => pg.stop());
  }
  return pg;
};
const redisServer = async () => {
  if (!redis) {
    redis = await startRedis();
    cleanups.push(() => redis.stop());
  }
  return redis;
};

try {
  const receiver = await startReceiver();
  cleanups.push(() => receiver.stop());
  if (want('direct')) for (const r of await directThroughput(receiver)) record(r);
  if (want('cpu')) for (const r of await cpuPath()) record(r);
  if (want('axios')) for (const r of await axiosThroughput(receiver)) record(r);
  if (want('save')) {
    const [p, r] = await Promise.all([postgres(), redisServer()]);
    for (const row of await saveOverhead({ pgUrl: p.url, redisUrl: r.url, receiverUrl: receiver.url }))
      record(row);
    console.log(`  (save done at ${elapsed()})`);
  }
  if (want('lookup')) {
    for (const r of await lookupScale((await postgres()).url)) record(r);
    console.log(`  (lookup done at ${elapsed()})`);
  }
  if (want('deliveries')) {
    for (const r of await deliveriesPage((await postgres()).url)) record(r);
    console.log(`  (deliveries done at ${elapsed()})`);
  }
  if (want('bull')) {
    for (const r of await bullPipeline({ redisUrl: (await redisServer()).url })) record(r);
    console.log(`  (bull done at ${elapsed()})`);
  }
  if (want('memory')) {
    for (const r of await memory(receiver)) record(r);
    console.log(`  (memory done at ${elapsed()})`);
  }
  if (want('otel')) {
    for (const r of await otelOverhead(receiver)) record(r);
    console.log(`  (otel done at ${elapsed()})`);
  }
  if (want('ledger')) {
    const [p, r] = await Promise.all([postgres(), redisServer()]);
    for (const row of await ledgerBench({ pgUrl: p.url, redisUrl: r.url, receiver })) record(row);
    console.log(`  (ledger done at ${elapsed()})`);
  }
} finally {
  for (const c of cleanups.reverse()) await c();
}

mkdirSync('bench/results', { recursive: true });
const machine = {
  cores: os.cpus().length,
  cpu: os.cpus()[0]?.model,
  node: process.version,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
};
const at = new Date().toISOString();
const durationSeconds = Math.round((performance.now() - started) / 1000);
writeFileSync(
  'bench/results/latest.json',
  JSON.stringify({ at, machine, durationSeconds, scenarios: only.length ? only : SCENARIOS, rows }, null, 2),
);

// Summary: one line per row, the value next to its same-run baseline, the ratio and the target.
const fmt = (v) => (typeof v === 'number' ? v.toLocaleString('en-US') : String(v ?? ''));
const table = rows.map((r) => [
  r.scenario,
  r.case,
  `${fmt(r.value)} ${r.unit}`,
  fmt(r.baseline),
  fmt(r.ratio),
  r.p99ms !== undefined ? `${r.p50ms} / ${r.p99ms}` : '',
  r.target ? `${r.target}${r.met === undefined ? '' : r.met ? ' ✓' : ' ✗'}` : '',
]);
const head = ['scenario', 'case', 'value', 'baseline', 'ratio', 'p50 / p99 ms', 'target'];
const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join(' | ');
console.log(`\nSummary (${at}, ${durationSeconds} s)`);
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
for (const t of table) console.log(line(t));
console.log(
  `\nmachine: ${machine.cores} cores, ${machine.cpu}, Node ${machine.node}; results in bench/results/latest.json`,
);
clearTimeout(deadline);
process.exit(0);
