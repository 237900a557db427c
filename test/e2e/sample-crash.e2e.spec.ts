// The demo's crash-and-recovery part (`npm run demo`): the built sample app, killed with SIGKILL mid-stream and
// started again on the same SQLite file, delivers every committed event, duplicates under the same Hook-Delivery.
import { describe, expect, it, jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { runCrashDemo } from '../../sample/crash-demo.js';

jest.setTimeout(120_000);

describe('sample app crash demo', () => {
  it('delivers every committed event after a SIGKILL and a restart', async () => {
    // the demo runs the built sample, as `npm run demo` does (the package itself is built by `npm test`)
    const tsc = spawnSync(
      process.execPath,
      ['node_modules/typescript/bin/tsc', '-p', 'sample/tsconfig.json'],
      {
        encoding: 'utf8',
      },
    );
    expect(tsc.stdout + tsc.stderr).toBe('');
    const lines: string[] = [];
    const ok = await runCrashDemo('.tmp/sample/main.js', (l) => lines.push(l));
    const output = lines.join('\n');
    expect(output).toMatch(/✓ 60 of 60 committed events delivered after the restart/);
    // the kill really came mid-stream: some webhooks were still waiting
    const killedWith = Number(/app killed with (\d+) of their webhooks/.exec(output)?.[1]);
    expect(killedWith).toBeLessThan(60);
    expect(ok).toBe(true);
  });
});
