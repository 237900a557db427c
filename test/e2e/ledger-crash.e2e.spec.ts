// The ledger's guarantees with real processes (SPEC §9): SIGKILL at any moment loses no committed event, duplicates
// carry the same Hook-Delivery, retries survive a restart, and two processes relaying one database fan every event out
// exactly once. The app processes run the built package (test/fixtures/ledger-app.mjs).
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { Subscriber, THORN_LEDGER_ENTITIES } from '../../lib/index.js';
import { testDatabases, type TestDatabase } from '../fixtures/databases.js';
import { queueFlavours } from '../fixtures/queues.js';
import { TestReceiver } from '../fixtures/receiver.js';
import { until } from '../fixtures/wait.js';

const redisUrl = process.env.THORN_TEST_REDIS_URL;
// child processes start in about a second each, and the leases must expire: more than jest's default 5 s
jest.setTimeout(60_000);

/** A running app process and the lines it printed. */
class AppProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private waiters: { test: (l: string) => boolean; resolve: () => void }[] = [];

  constructor(readonly child: ChildProcess) {
    let buffer = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      for (const line of parts) {
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => (w.test(line) ? (w.resolve(), false) : true));
      }
    });
    child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[ledger app] ${d}`));
    this.exited = new Promise((r) => child.on('exit', (code) => r(code)));
  }

  /** Resolves when a line equal to `line` has been printed; rejects after `ms`. */
  waitLine(line: string, ms = 20_000): Promise<void> {
    if (this.lines.includes(line)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no "${line}" within ${ms} ms; got ${this.lines.slice(-3)}`)),
        ms,
      );
      this.waiters.push({ test: (l) => l === line, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  /** The n of every "sent n" line: events whose send() resolved, i.e. committed. */
  sent(): number[] {
    return this.lines.filter((l) => l.startsWith('sent ')).map((l) => Number(l.slice(5)));
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}

describe.each(testDatabases)('ledger crash safety ($name)', (db: TestDatabase) => {
  const receiver = new TestReceiver();
  const apps: AppProcess[] = [];
  let dbOptions: Record<string, unknown>;
  let admin: DataSource;
  let dir = '';
  let schema = '';

  const start = (name: string, extra: Record<string, unknown> = {}) => {
    const config = {
      name,
      db: dbOptions,
      subscribers: { 'crash.#': `${receiver.url}/hook` },
      ledger: { pollInterval: 100, lease: 3000 },
      timeout: 1000,
      maxRunMs: 45_000,
      ...extra,
    };
    const child = spawn(process.execPath, ['test/fixtures/ledger-app.mjs'], {
      env: { ...process.env, THORN_LEDGER_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const app = new AppProcess(child);
    apps.push(app);
    return app;
  };
  const table = (t: string) => (schema ? `"${schema}".${t}` : t);
  /** The event number of each request the receiver got, with its Hook-Delivery. */
  const received = () =>
    receiver.requests.map((r) => ({ n: r.json().n as number, delivery: r.headers['hook-delivery'] }));
  const waitForAll = async (ns: number[], ms = 30_000) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const got = new Set(received().map((r) => r.n));
      if (ns.every((n) => got.has(n))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    const got = new Set(received().map((r) => r.n));
    throw new Error(`not delivered within ${ms} ms: ${ns.filter((n) => !got.has(n))}`);
  };
  /** Duplicates (after a crash) are the same delivery: one Hook-Delivery per event. */
  const expectOneDeliveryIdPerEvent = () => {
    const ids = new Map<number, Set<string>>();
    for (const r of received()) ids.set(r.n, (ids.get(r.n) ?? new Set()).add(String(r.delivery)));
    for (const [n, set] of ids) expect([n, set.size]).toEqual([n, 1]);
  };

  beforeAll(() => receiver.start());
  afterAll(() => receiver.stop());
  beforeEach(async () => {
    receiver.reset();
    if (db.name === 'postgres') {
      schema = `thorn_crash_${randomUUID().slice(0, 8)}`;
      const base = new DataSource({ type: 'postgres', url: process.env.THORN_TEST_PG_URL });
      await base.initialize();
      await base.query(`CREATE SCHEMA "${schema}"`);
      await base.destroy();
      dbOptions = { type: 'postgres', url: process.env.THORN_TEST_PG_URL, schema };
    } else {
      schema = '';
      dir = mkdtempSync(join(tmpdir(), 'thorn-ledger-'));
      dbOptions = { type: 'better-sqlite3', database: join(dir, 'app.db') };
    }
    const options = {
      ...dbOptions,
      entities: [Subscriber, ...THORN_LEDGER_ENTITIES],
      synchronize: true,
    } as unknown as DataSourceOptions;
    admin = new DataSource(options);
    await admin.initialize();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.kill('SIGKILL')));
    if (schema) await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
    await admin.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = '';
  });

  it('SIGKILL mid-stream loses no committed event; the next process delivers the backlog under the same ids', async () => {
    // a slow receiver and two requests at a time: a backlog builds up behind the stream of commits
    receiver.reply = () => ({ status: 200, delayMs: 40 });
    const a = start('a', { concurrency: 2, produce: { count: 200, intervalMs: 2, name: 'crash.event' } });
    await a.waitLine('sent 60');
    await a.kill('SIGKILL');
    const committed = a.sent();
    // the kill came mid-stream: committed events were still waiting for their request
    expect(new Set(received().map((r) => r.n)).size).toBeLessThan(committed.length);
    start('b', { concurrency: 8 });
    await waitForAll(committed);
    expectOneDeliveryIdPerEvent();
    // every event was fanned out once: one delivery row each
    const perEvent = await admin.query(
      `SELECT event_id, count(*) AS n FROM ${table('thorn_delivery')} GROUP BY event_id HAVING count(*) > 1`,
    );
    expect(perEvent).toEqual([]);
  });

  it('a retry scheduled before a graceful restart is made after it, by the new process, under the same id', async () => {
    receiver.reply = (_req, i) => (i === 0 ? { status: 503 } : { status: 200 });
    const a = start('first', { retryDelay: 1500, produce: { count: 1, name: 'crash.retry' } });
    await receiver.waitFor(1);
    // graceful: Nest's shutdown hooks run (the ledger stops, the retry stays scheduled in thorn_delivery)
    await a.kill('SIGTERM');
    start('second');
    await receiver.waitFor(2, 15_000);
    const [first, second] = receiver.requests;
    expect(second.headers['hook-delivery']).toBe(first.headers['hook-delivery']);
    expect(second.headers['user-agent']).toBe('thorn-ledger-app/second');
    // the second attempt's record is written just after its answer
    await until(
      async () =>
        (await admin.query(`SELECT status FROM ${table('thorn_delivery')}`))[0].status === 'succeeded',
    );
    const [row] = await admin.query(`SELECT status, attempts FROM ${table('thorn_delivery')}`);
    expect([row.status, Number(row.attempts)]).toEqual(['succeeded', 2]);
  });

  it('two processes relaying one database fan every left-behind event out exactly once', async () => {
    // 300 events recorded by a process that died before fanning any out
    const now = Date.now() - 5000;
    for (let i = 0; i < 300; i += 100) {
      const rows = Array.from({ length: 100 }, (_, k) => [
        randomUUID(),
        'crash.left',
        JSON.stringify({ n: i + k }),
        now,
      ]);
      const values = rows.map((_, k) =>
        db.name === 'postgres'
          ? `($${4 * k + 1}, $${4 * k + 2}, $${4 * k + 3}, $${4 * k + 4})`
          : '(?, ?, ?, ?)',
      );
      await admin.query(
        `INSERT INTO ${table('thorn_event')} (id, name, payload, created_at) VALUES ${values.join(', ')}`,
        rows.flat(),
      );
    }
    const ledger = { pollInterval: 20, lease: 3000, batchSize: 25 };
    start('one', { ledger });
    start('two', { ledger });
    await waitForAll(Array.from({ length: 300 }, (_, n) => n));
    const counts = await admin.query(
      `SELECT count(*) AS n, count(DISTINCT event_id) AS events FROM ${table('thorn_delivery')}`,
    );
    expect([Number(counts[0].n), Number(counts[0].events)]).toEqual([300, 300]);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.requests).toHaveLength(300);
  });

  describe.each(redisUrl ? queueFlavours : [])('with %s', (_name, flavour) => {
    const queue = () => ({
      dispatcher: flavour.dispatcher,
      redisUrl,
      prefix: `thorn-crash-${randomUUID().slice(0, 8)}`,
    });

    it('a producer killed between commit and enqueue (Redis away) loses nothing; jobs carry delivery ids only', async () => {
      const q = queue();
      // Redis unreachable for the producer: events are committed, never enqueued
      const a = start('producer', {
        ...q,
        redisUrl: 'redis://127.0.0.1:1',
        worker: false,
        produce: { count: 20, name: 'crash.q' },
      });
      await a.waitLine('produced');
      await a.kill('SIGKILL');
      expect(receiver.requests).toHaveLength(0);
      start('worker', { ...q, worker: true });
      await waitForAll(Array.from({ length: 20 }, (_, n) => n));
      const opened = flavour.open(redisUrl!, q.prefix);
      const jobs = await opened.getJobs(['completed']).finally(() => opened.close());
      expect(jobs.length).toBeGreaterThan(0);
      for (const job of jobs) {
        expect(job.name).toBe('deliveries');
        expect(Object.keys(job.data).sort()).toEqual(['claim', 'ids']);
      }
      expect(JSON.stringify(jobs.map((j) => j.data))).not.toContain('static-secret');
    });

    it('a worker killed mid-job loses nothing: another worker delivers the rest under the same ids', async () => {
      const q = queue();
      receiver.reply = () => ({ status: 200, delayMs: 50 });
      const a = start('w1', { ...q, worker: true, concurrency: 2, produce: { count: 40, name: 'crash.w' } });
      await a.waitLine('produced');
      await receiver.waitFor(4);
      await a.kill('SIGKILL');
      expect(new Set(received().map((r) => r.n)).size).toBeLessThan(40);
      start('w2', {
        ...q,
        worker: true,
        concurrency: 8,
        settings: { stalledInterval: 1000, lockDuration: 2000 },
      });
      await waitForAll(Array.from({ length: 40 }, (_, n) => n));
      expectOneDeliveryIdPerEvent();
    });
  });
});
