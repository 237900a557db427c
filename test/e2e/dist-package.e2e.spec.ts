import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
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

  it('CommonJS consumers require() the CommonJS build, which loads no ESM file of the package and no bull', async () => {
    const { stdout } = await run(process.execPath, ['test/fixtures/dist-require.cjs'], { timeout: 60_000 });
    const out = JSON.parse(stdout);
    expect(out.exports).toEqual(['EventService', 'ThornModule', 'sign', 'verify']);
    expect(out.resolved).toBe(resolve('dist/cjs/index.js'));
    expect(out.packageFiles.length).toBeGreaterThan(20);
    expect(out.packageFiles.filter((f: string) => !f.startsWith('dist/cjs/'))).toEqual([]);
    expect(out.bull).toEqual([]);
  });

  it('both builds loaded in one process share one binding and one bufferEvents context', async () => {
    receiver.reply = (req) =>
      req.path === '/__count'
        ? { body: String(receiver.requests.filter((r) => r.path === '/dual').length) }
        : { status: 200 };
    const { stdout } = await run(process.execPath, ['test/fixtures/dist-dual.mjs', receiver.url], {
      timeout: 60_000,
    });
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out.distinctBuilds).toBe(true);
    expect(out.beforeStart).toMatch(/dual\.sent.*ThornModule/);
    // an Event of the CommonJS build sends through the ThornModule the ESM build started
    expect(out.sent).toEqual([true]);
    expect(out.countInsideBuffer).toBe(1);
    expect(out.countAfterBuffer).toBe(2);
    expect(out.afterClose).toMatch(/dual\.sent.*ThornModule/);
    const dual = receiver.requests.filter((r) => r.path === '/dual');
    expect(dual.map((r) => r.json())).toEqual([{ n: 1 }, { n: 2 }]);
    for (const req of dual)
      expect(verify(req.headers['hook-hmac'] as string, 'sha256', 'dual-secret-dual-secret', req.body)).toBe(
        true,
      );
  });

  it('package.json exports: import → the ESM build, require → the CommonJS build, each with its declarations', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    expect(pkg.name).toBe('nestjs-thorn');
    expect(pkg.type).toBe('module');
    const { import: esm, require: cjs } = pkg.exports['.'];
    expect(esm.default).toBe('./dist/index.js');
    expect(cjs.default).toBe('./dist/cjs/index.js');
    expect(readFileSync(esm.types, 'utf8')).toMatch(/ThornModule/);
    expect(readFileSync(cjs.types, 'utf8')).toMatch(/ThornModule/);
    expect(JSON.parse(readFileSync('dist/cjs/package.json', 'utf8'))).toEqual({ type: 'commonjs' });
    expect(readFileSync('dist/cjs/index.js', 'utf8')).toMatch(/^"use strict";/);
    expect(pkg.files).toEqual(expect.arrayContaining(['dist', 'LICENSE']));
    expect(readFileSync('LICENSE', 'utf8')).toMatch(/MIT License/);
  });

  it('source maps of both builds carry the TypeScript sources, so stack traces resolve without lib/ shipped', () => {
    for (const file of ['dist/events/event.js.map', 'dist/cjs/events/event.js.map']) {
      const map = JSON.parse(readFileSync(file, 'utf8'));
      expect(map.sources).toHaveLength(1);
      expect(map.sourcesContent[0]).toBe(readFileSync('lib/events/event.ts', 'utf8'));
    }
  });
});
