// Throwaway PostgreSQL and Redis for tests and benchmarks: system binaries, temp data dirs, free loopback ports.
// Used by test/run-tests.mjs and bench/run.mjs. Never touches a system-wide instance.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, chownSync, existsSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function findBinary(name, extraDirs) {
  const dirs = [...(process.env.PATH ?? '').split(':'), ...extraDirs];
  for (const d of dirs) if (d && existsSync(join(d, name))) return join(d, name);
  return null;
}

function pgBinDirs() {
  const dirs = [];
  for (const v of ['18', '17', '16', '15', '14', '13']) dirs.push(`/usr/lib/postgresql/${v}/bin`);
  return dirs;
}

function waitForPort(port, ms) {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listening on 127.0.0.1:${port} after ${ms} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Starts a throwaway PostgreSQL; resolves to { url, stop() }. */
export async function startPostgres() {
  const initdb = findBinary('initdb', pgBinDirs());
  const pgCtl = findBinary('pg_ctl', pgBinDirs());
  if (!initdb || !pgCtl) {
    throw new Error(
      'PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package "postgresql" (apt-get install -y postgresql)',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'thorn-pg-'));
  const data = join(dir, 'data');
  const port = await freePort();
  // PostgreSQL refuses to run as root: run it as the "postgres" system user when we are root.
  const asUser = (cmd, args) => (isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  if (isRoot)
    chownSync(
      dir,
      Number(execFileSync('id', ['-u', 'postgres']).toString()),
      Number(execFileSync('id', ['-g', 'postgres']).toString()),
    );
  const run = (cmd, args) => {
    const [c, a] = asUser(cmd, args);
    const r = spawnSync(c, a, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.stdout}`);
  };
  run(initdb, ['-D', data, '-U', 'thorn', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  writeFileSync(join(dir, 'note'), 'nestjs-thorn throwaway test database\n');
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  run(pgCtl, ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
  await waitForPort(port, 30000);
  return {
    url: `postgres://thorn@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      try {
        run(pgCtl, ['-D', data, '-m', 'immediate', 'stop']);
      } catch {
        /* already gone */
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts a throwaway Redis; resolves to { url, stop() }. */
export async function startRedis() {
  const bin = findBinary('redis-server', ['/usr/bin', '/usr/sbin']);
  if (!bin)
    throw new Error(
      'redis-server not found: install the Debian package "redis-server" (apt-get install -y redis-server)',
    );
  const dir = mkdtempSync(join(tmpdir(), 'thorn-redis-'));
  const port = await freePort();
  const child = spawn(
    bin,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    {
      stdio: 'ignore',
    },
  );
  await waitForPort(port, 15000);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
