// `npm run bench`: every scenario next to a baseline measured in the same run. Writes bench/results/latest.json.
// Starts its own PostgreSQL/Redis (throwaway) and a loopback receiver; bounded in count and time.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { startReceiver } from './lib.mjs';
import { directThroughput } from './direct-throughput.mjs';
import { lookupScale } from './lookup-scale.mjs';
import { startPostgres } from '../test/services.mjs';

const only = process.argv.slice(2);
const want = (name) => only.length === 0 || only.includes(name);
const deadline = setTimeout(() => {
  console.error('bench: 10-minute limit reached, stopping');
  process.exit(2);
}, 10 * 60_000);

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
try {
  const receiver = await startReceiver();
  cleanups.push(() => receiver.stop());
  if (want('direct')) for (const r of await directThroughput(receiver)) record(r);
  if (want('lookup')) {
    const pg = await startPostgres();
    cleanups.push(() => pg.stop());
    for (const r of await lookupScale(pg.url)) record(r);
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
writeFileSync(
  'bench/results/latest.json',
  JSON.stringify({ at: new Date().toISOString(), machine, rows }, null, 2),
);
console.log(
  `\nmachine: ${machine.cores} cores, ${machine.cpu}, Node ${machine.node}; results in bench/results/latest.json`,
);
clearTimeout(deadline);
process.exit(0);
