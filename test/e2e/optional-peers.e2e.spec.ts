// An app without @opentelemetry/api, @nestjs/terminus and @nestjs/swagger installed: nothing changes and nothing is
// required until it asks for the health indicator. Runs the BUILT package in a child process that hides them.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestReceiver } from '../fixtures/receiver.js';

const run = promisify(execFile);

describe('without the operations peers installed', () => {
  let receiver: TestReceiver;
  beforeAll(async () => {
    receiver = await new TestReceiver().start();
  });
  afterAll(async () => {
    await receiver.stop();
  });

  it('/hooks, delivery and trace propagation work as before; no swagger metadata; the health indicator says what to install', async () => {
    const { stdout } = await run(process.execPath, ['test/fixtures/ops-missing.mjs', receiver.url], {
      env: { ...process.env, NODE_OPTIONS: '' },
      timeout: 60_000,
    });
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out.error).toBeUndefined();
    expect(out.hidden).toBe(true);
    expect(out.hooks).toBe(201);
    expect(out.delivered).toEqual([true]);
    expect(out.swaggerMetadata).toEqual([]);
    expect(out.health).toMatch(
      /needs the optional package "@nestjs\/terminus": npm install @nestjs\/terminus/,
    );
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.requests[0].headers.traceparent).toBeUndefined();
    expect(receiver.requests[0].headers['hook-event']).toBe('ops.check');
  });
});
