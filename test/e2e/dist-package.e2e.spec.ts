import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { verify } from '../../lib/index.js';
import { TestReceiver } from '../fixtures/receiver.js';

const run = promisify(execFile);

// `npm test` builds dist/ before running jest; these tests use the package exactly as an app does.
describe('the built package (dist/)', () => {
  let receiver: TestReceiver;
  beforeAll(async () => {
    receiver = await new TestReceiver().start();
  });
  afterAll(async () => {
    await receiver.stop();
  });

  it("an app importing nestjs-thorn by name delivers one POST whose Hook-HMAC verifies with the row's secret and digest", async () => {
    const { stdout } = await run(process.execPath, ['test/fixtures/dist-smoke.mjs', receiver.url], {
      timeout: 60_000,
    });
    const row = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(row.ok).toBe(true);
    expect(receiver.requests).toHaveLength(1);
    const req = receiver.requests[0];
    expect(req.path).toBe('/smoke');
    expect(req.headers['hook-subscription']).toBe(row.id);
    expect(req.json()).toEqual({ id: 1, title: 'From dist' });
    expect(verify(req.headers['hook-hmac'] as string, row.hmacDigest, row.hmacSecret, req.body)).toBe(true);
  });

  it('CommonJS consumers can require() it', async () => {
    const { stdout } = await run(process.execPath, ['test/fixtures/dist-require.cjs'], { timeout: 60_000 });
    expect(JSON.parse(stdout)).toEqual(['EventService', 'ThornModule', 'sign', 'verify']);
  });

  it('package.json exports point at built files', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    expect(pkg.name).toBe('nestjs-thorn');
    expect(pkg.type).toBe('module');
    expect(pkg.exports['.'].import).toBe('./dist/index.js');
    expect(readFileSync(pkg.exports['.'].types, 'utf8')).toMatch(/ThornModule/);
  });
});
