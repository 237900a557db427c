// Scenario 5: memory while 100,000 events pass through eventService.bufferEvents() (maybeFlush every N sends) and the
// direct dispatcher (K = 1, loopback receiver). Each run is a fresh process (bench/memory-child.mjs), so its peak RSS is
// its own. Baseline: the same process's RSS idle after app start and a warm-up (after GC).
//   - peak RSS and growth over idle with N = 10,000 events per flush;
//   - MB per 10,000 events flushed at once (the direct dispatcher starts at most `concurrency` of them at a time): the slope of peak RSS between N = 1,000 and N = 10,000;
//   - bounded: RSS after 50,000 vs after 100,000 events.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median, round } from './lib.mjs';

const child = fileURLToPath(new URL('./memory-child.mjs', import.meta.url));

function runChild(config) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', child], {
      env: { ...process.env, NODE_OPTIONS: '', THORN_BENCH_MEMORY: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`memory run exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch (err) {
        reject(err);
      }
    });
  });
}

export async function memory(receiver, { runs = 3, total = 100_000, small = 1_000, large = 10_000 } = {}) {
  const results = { [small]: [], [large]: [] };
  for (let r = 0; r < runs; r++) {
    // alternate which size goes first
    for (const n of r % 2 ? [large, small] : [small, large]) {
      const res = await runChild({ receiverUrl: receiver.url, total, flushEvery: n, maxRunMs: 120_000 });
      if (res.failed) throw new Error(`memory run: ${res.failed} deliveries failed`);
      results[n].push(res);
    }
  }
  const m = (n, f) => median(results[n].map(f));
  const mb = (x) => round(x, 1);
  const idle = m(large, (x) => x.idle);
  const peak = m(large, (x) => x.peak);
  const growth = m(large, (x) => x.peak - x.idle);
  const growthSmall = m(small, (x) => x.peak - x.idle);
  const per10k = ((growth - growthSmall) / (large - small)) * 10_000;
  const live10k = (m(large, (x) => x.liveKbPerInFlight) * 10_000) / 1024;
  const heapIdle = m(large, (x) => x.heapIdle);
  const heapEnd = m(large, (x) => x.heapAfterGc);
  const rate = m(large, (x) => x.perSecond);
  const fmt = (n) => n.toLocaleString('en-US');
  const base = {
    scenario: 'memory',
    baselineName: 'RSS of the same process idle after app start and warm-up (after GC)',
    note: `${fmt(total)} events, K=1, direct dispatcher, ${fmt(round(rate, 0))} events/s`,
  };
  return [
    {
      ...base,
      case: `peak RSS, maybeFlush every ${fmt(large)} (that many per flush)`,
      value: mb(peak),
      unit: 'MB',
      baseline: mb(idle),
      ratio: round(peak / idle, 2),
      runs: results[large].map((x) => mb(x.peak)),
      note: `growth ${mb(growth)} MB (${mb(growthSmall)} MB with ${fmt(small)} per flush); ${base.note}`,
    },
    {
      ...base,
      case: 'RSS per 10,000 events flushed at once',
      value: mb(per10k),
      unit: 'MB',
      baseline: mb(idle),
      ratio: round(per10k / idle, 2),
      note: `slope of peak RSS growth between flushes of ${fmt(small)} and ${fmt(large)} events; ${base.note}`,
    },
    {
      ...base,
      case: 'live heap per 10,000 events flushed at once',
      value: mb(live10k),
      unit: 'MB',
      baseline: mb(heapIdle),
      baselineName: 'heap used, same process idle after app start',
      ratio: round(live10k / heapIdle, 2),
      runs: results[large].map((x) => mb((x.liveKbPerInFlight * 10_000) / 1024)),
      note: `heap still reachable (after GC) while ${fmt(large)} deliveries wait for a connection slot; the rest of the RSS growth is V8 heap headroom and garbage between GCs`,
    },
    {
      ...base,
      case: 'bounded: peak RSS, events 50k-100k vs 0-50k',
      value: mb(m(large, (x) => x.secondHalfPeak)),
      unit: 'MB',
      baseline: mb(m(large, (x) => x.firstHalfPeak)),
      baselineName: 'peak RSS over the first 50,000 events, same run',
      ratio: round(
        m(large, (x) => x.secondHalfPeak / x.firstHalfPeak),
        2,
      ),
      target: '≤ 1.1 (bounded)',
      met: m(large, (x) => x.secondHalfPeak / x.firstHalfPeak) <= 1.1,
      runs: results[large].map((x) => round(x.secondHalfPeak / x.firstHalfPeak, 2)),
    },
    {
      ...base,
      case: 'no leak: heap after 100,000 events (after GC) vs idle',
      value: mb(heapEnd),
      unit: 'MB',
      baseline: mb(heapIdle),
      baselineName: 'heap used, same process idle after app start',
      ratio: round(heapEnd / heapIdle, 2),
      target: '≤ 1.1',
      met: heapEnd / heapIdle <= 1.1,
      runs: results[large].map((x) => round(x.heapAfterGc / x.heapIdle, 2)),
    },
  ];
}
