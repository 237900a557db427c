// Scenario "otel": what the OpenTelemetry hooks cost. Direct-dispatcher throughput with @opentelemetry/api absent
// (the baseline), installed without an SDK (its no-op: the claim is "no measurable cost"), and with an SDK
// registered. Fresh processes, modes interleaved round by round so drift hits all alike; medians of the rounds.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { median, round } from './lib.mjs';

const run = promisify(execFile);
const MODES = ['absent', 'api', 'sdk'];

async function once(receiverUrl, mode, total) {
  const { stdout } = await run(process.execPath, ['bench/otel-child.mjs'], {
    env: { ...process.env, THORN_BENCH_OTEL: JSON.stringify({ receiverUrl, total, mode }) },
    timeout: 150_000,
  });
  const r = JSON.parse(stdout.trim().split('\n').pop());
  if (r.apiLoaded !== (mode !== 'absent')) throw new Error(`otel bench: mode ${mode} did not take effect`);
  return r;
}

/**
 * The hooks themselves, in this process (the API installed, no SDK): one send + one attempt + one HTTP request around
 * no-op callbacks, against the same callbacks called bare — what the hooks add per delivery, free of network noise.
 */
export async function hookCost(n = 200_000) {
  const { traceSend, traceHttp, observeAttempt, loadTelemetry } =
    await import('../dist/telemetry/telemetry.js');
  await loadTelemetry();
  const sent = { deliveries: [{ ok: true }] };
  const outcome = { verdict: { ok: true, retryable: false, gone: false }, response: { status: 200 } };
  const req = { event: 'a.b', attempts: 1, settings: { retry: true, retryMax: 3 } };
  const info = {
    url: 'https://h.example/in?q=1',
    resendCount: 0,
    event: 'a.b',
    delivery: 'd',
    subscription: 's',
  };
  const answer = async () => ({ status: 200 });
  const hooked = () =>
    traceSend('a.b', async () => {
      await observeAttempt(req, async () => {
        await traceHttp({ ...info, propagate: false }, {}, answer);
        return outcome;
      });
      return sent;
    });
  const bare = async () => {
    await (async () => {
      await answer();
      return outcome;
    })();
    return sent;
  };
  const time = async (fn) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) await fn();
    return ((performance.now() - t) * 1000) / n;
  };
  const b = [];
  const h = [];
  for (let r = 0; r < 7; r++) {
    b.push(await time(bare));
    h.push(await time(hooked));
  }
  return { bare: median(b.slice(2)), hooked: median(h.slice(2)) };
}

export async function otelOverhead(receiver, { total = 20_000, rounds = 3 } = {}) {
  const runs = Object.fromEntries(MODES.map((m) => [m, []]));
  for (let i = 0; i < rounds; i++) {
    // rotate the order each round
    for (const mode of MODES.map((_, j) => MODES[(i + j) % MODES.length])) {
      runs[mode].push(await once(receiver.url, mode, total));
    }
  }
  const results = Object.fromEntries(MODES.map((m) => [m, runs[m].map((r) => r.perSecond)]));
  const cpu = Object.fromEntries(MODES.map((m) => [m, median(runs[m].map((r) => r.cpuUs))]));
  const base = median(results.absent);
  const hooks = await hookCost();
  const added = hooks.hooked - hooks.bare;
  const spread = (xs) => `${round(Math.min(...xs), 0)}–${round(Math.max(...xs), 0)}/s`;
  return [
    {
      scenario: 'otel',
      case: 'hooks per delivery, API installed, no SDK (in-process)',
      value: round(hooks.hooked, 2),
      unit: 'µs',
      baseline: round(hooks.bare, 2),
      ratio: round(hooks.hooked / hooks.bare, 2),
      target: 'no measurable cost',
      note: `adds ${round(added, 2)} µs per delivery = ${round((100 * added) / cpu.absent, 1)} % of the ${round(cpu.absent, 1)} µs sender CPU per delivery measured with the API absent`,
    },
    {
      scenario: 'otel',
      case: 'API installed, no SDK: sender CPU per delivery (vs absent)',
      value: round(cpu.api, 1),
      unit: 'µs CPU/delivery',
      baseline: round(cpu.absent, 1),
      ratio: round(cpu.api / cpu.absent, 3),
      target: 'no measurable cost',
    },
    {
      scenario: 'otel',
      case: 'API installed, no SDK (vs API absent)',
      value: round(median(results.api), 0),
      unit: 'deliveries/s',
      baseline: round(base, 0),
      ratio: round(median(results.api) / base, 3),
      target: 'no measurable cost (ratio within run-to-run spread)',
      senderCpuUs: round(cpu.api, 1),
      note: `rounds: absent ${spread(results.absent)}, api ${spread(results.api)}; sender CPU µs/delivery: absent ${round(cpu.absent, 1)}, api ${round(cpu.api, 1)}`,
    },
    {
      scenario: 'otel',
      case: 'SDK registered, nothing exported (vs API absent)',
      value: round(median(results.sdk), 0),
      unit: 'deliveries/s',
      baseline: round(base, 0),
      ratio: round(median(results.sdk) / base, 3),
      senderCpuUs: round(cpu.sdk, 1),
      note: `rounds: sdk ${spread(results.sdk)}; sender CPU µs/delivery: sdk ${round(cpu.sdk, 1)}`,
    },
  ];
}
