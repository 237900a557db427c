import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, sampleClient } from './client.js';

/**
 * The ledger's promise, shown with real processes: the sample app (built `main.js`, a SQLite file) takes a stream of
 * article creations while a slow receiver builds a backlog; the app is killed with SIGKILL mid-stream, started again
 * on the same database, and every article whose creation was answered 201 (committed) arrives. Duplicates, if any,
 * carry the same Hook-Delivery. Returns whether every committed event arrived.
 */
export async function runCrashDemo(
  mainJs: string,
  log: (line: string) => void = console.log,
): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), 'thorn-crash-demo-'));
  const received: { headers: IncomingHttpHeaders; uuid: string }[] = [];
  let busy = Promise.resolve();
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      // a slow receiver: one request at a time, 30 ms each, so a backlog builds up behind the stream of commits
      busy = busy.then(
        () =>
          new Promise<void>((r) =>
            setTimeout(() => {
              received.push({ headers: req.headers, uuid: String(body.ref).split('/').pop()! });
              res.writeHead(204).end();
              r();
            }, 30),
          ),
      );
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let app: ChildProcess | undefined;
  const start = async () => {
    app = spawn(process.execPath, [mainJs], {
      env: {
        ...process.env,
        SQLITE_FILE: join(dir, 'sample.sqlite'),
        PORT: String(port),
        THORN_LEDGER_LEASE: '7000',
        THORN_SAMPLE_OTEL: '',
      },
      stdio: 'ignore',
    });
    for (const deadline = Date.now() + 15_000; Date.now() < deadline;) {
      if (
        await fetch(`${base}/health`).then(
          (r) => r.ok,
          () => false,
        )
      )
        return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the sample did not start within 15 s');
  };
  const call = sampleClient(base);

  let ok = false;
  try {
    log('\n▶ crash and recovery (ledger on): SIGKILL the app mid-stream, start it again');
    await start();
    await call('POST', '/hooks', { event: 'article.created', url: `${receiverUrl}/webhooks` });
    // 60 articles, 6 requests at a time; each 201 means its change and its event are committed
    const committed: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        while (next < 60) {
          const article = await call('POST', '/articles', { title: `crash demo ${next++}`, body: 'x' });
          committed.push(article.uuid);
        }
      }),
    );
    app!.kill('SIGKILL');
    await new Promise((r) => app!.once('exit', r));
    const before = new Set(received.map((r) => r.uuid)).size;
    log(`  60 articles committed; app killed with ${before} of their webhooks delivered`);
    await start();
    log(
      '  app restarted on the same database; its ledger resumes the backlog (claims of the dead process expire after 7 s)',
    );
    for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
      const got = new Set(received.map((r) => r.uuid));
      if (committed.every((uuid) => got.has(uuid))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const got = new Set(received.map((r) => r.uuid));
    const missing = committed.filter((uuid) => !got.has(uuid));
    const ids = new Map<string, Set<string>>();
    for (const r of received)
      ids.set(r.uuid, (ids.get(r.uuid) ?? new Set()).add(String(r.headers['hook-delivery'])));
    const sameId = [...ids.values()].every((s) => s.size === 1);
    const duplicates = received.length - got.size;
    ok = missing.length === 0 && sameId;
    log(
      `  ${ok ? '✓' : '✗'} ${committed.length - missing.length} of ${committed.length} committed events delivered after the restart` +
        ` (${duplicates} sent twice, ${sameId ? 'each with the same Hook-Delivery' : 'WITH DIFFERENT Hook-Delivery ids'})`,
    );
  } catch (err) {
    log(`  ✗ crash demo failed: ${(err as Error).message}`);
  } finally {
    app?.kill('SIGTERM');
    if (app && app.exitCode === null) await new Promise((r) => app!.once('exit', r));
    receiver.closeAllConnections();
    receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return ok;
}
