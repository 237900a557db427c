// Scenario: the package's own CPU per delivery, without I/O. The HTTP transport is replaced by one that answers 200
// on the next turn (setImmediate), so what is measured is send() → recipients → body → signing → attempt bookkeeping →
// result, at K = 1 and K = 10 static subscribers per event. Baseline (same run): the same closed loop calling that
// stub transport directly, i.e. the cost of the harness and the stub. Far less sensitive to other load on the machine
// than the end-to-end rows (no receiver, no sockets), so it is the row to compare between versions.
import 'reflect-metadata';
import { EventService } from 'nestjs-thorn';
import { bodyOfSize, medianOf, round, thornContext } from './lib.mjs';

const RESPONSE = { status: 200, headers: {}, body: '' };
const answerNextTurn = () => new Promise((r) => setImmediate(() => r(RESPONSE)));

/** `window` lanes, each calling `fn` until `total` calls; this process's CPU µs per unit of `per`. */
async function cpuLoop(total, window, per, fn) {
  let next = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next < total) {
        next++;
        await fn();
      }
    }),
  );
  const c = process.cpuUsage(c0);
  const seconds = (performance.now() - t0) / 1000;
  return { cpuUs: (c.user + c.system) / (total * per), perSecond: (total * per) / seconds };
}

export async function cpuPath({ runs = 5, total = 100_000, bodySize = 300 } = {}) {
  const body = bodyOfSize(bodySize);
  const payload = JSON.stringify(body);
  const stubOnly = () =>
    cpuLoop(total, 128, 1, () => answerNextTurn({ url: 'http://127.0.0.1:9/s0', body: payload }));
  await stubOnly();
  const base = await medianOf(runs, 'cpuUs', stubOnly);
  const rows = [
    {
      scenario: 'cpu path',
      case: 'baseline: the stub transport called directly (harness cost)',
      value: round(base.cpuUs, 2),
      unit: 'µs CPU/request',
      baseline: round(base.cpuUs, 2),
      ratio: 1,
      runs: base.runs,
    },
  ];
  for (const k of [1, 10]) {
    const subscribers = Array.from({ length: k }, (_, i) => ({
      url: `http://127.0.0.1:9/s${i}`,
      hmacSecret: `secret-${i}`,
    }));
    const app = await thornContext({ subscribers: { 'article.*': subscribers }, concurrency: 64 }, false);
    const events = app.get(EventService);
    // bench only: the module's transport, answered in-process
    events.delivery.transport.send = answerNextTurn;
    const window = Math.max(1, Math.ceil(128 / k));
    const nEvents = Math.ceil(total / k);
    const once = () => cpuLoop(nEvents, window, k, () => events.send('article.created', body));
    await once();
    const r = await medianOf(runs, 'cpuUs', once);
    await app.close();
    rows.push({
      scenario: 'cpu path',
      case: `K=${k}, signed: package CPU per delivery, no I/O`,
      value: round(r.cpuUs, 2),
      unit: 'µs CPU/delivery',
      baseline: round(base.cpuUs, 2),
      ratio: round(r.cpuUs / base.cpuUs, 2),
      runs: r.runs,
      note: `above the harness: ${round(r.cpuUs - base.cpuUs, 2)} µs per delivery`,
    });
  }
  return rows;
}
