// `npm test`: starts throwaway PostgreSQL and Redis, runs jest (ESM mode) against them, stops them.
// Extra arguments go to jest: `npm test -- test/unit`.
import { spawn, spawnSync } from 'node:child_process';
import { startPostgres, startRedis } from './services.mjs';

// Child-process tests (bull workers, the sample, both builds of dist/) run the built package: build it first so they
// never test stale code.
const build = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(1);

const services = [];
let code = 1;
try {
  const pg = await startPostgres();
  services.push(pg);
  const redis = await startRedis();
  services.push(redis);
  console.log(`test services: ${pg.url} ${redis.url}`);
  const env = {
    ...process.env,
    THORN_TEST_PG_URL: pg.url,
    THORN_TEST_REDIS_URL: redis.url,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules --no-warnings`.trim(),
  };
  const jest = spawn(
    process.execPath,
    ['node_modules/jest/bin/jest.js', '--runInBand', ...process.argv.slice(2)],
    {
      stdio: 'inherit',
      env,
    },
  );
  const stopOnSignal = () => jest.kill('SIGTERM');
  process.on('SIGINT', stopOnSignal);
  process.on('SIGTERM', stopOnSignal);
  code = await new Promise((resolve) => jest.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
} finally {
  for (const s of services.reverse()) await s.stop().catch(() => undefined);
}
process.exit(code);
