// The sample app's operations wiring, booted as `npm run sample` does: GET /openapi.json, Swagger UI at /docs,
// GET /health, and THORN_SAMPLE_OTEL=console printing traces and metrics.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from '../../sample/app.module.js';
import { setupOpenApi } from '../../sample/openapi.js';
import { startSampleTelemetry } from '../../sample/telemetry.js';
import { TestReceiver } from '../fixtures/receiver.js';

describe('sample app: OpenAPI, health, console telemetry', () => {
  let app: INestApplication;
  let base: string;
  let receiver: TestReceiver;
  let stopTelemetry: (() => Promise<void>) | null;
  const printed: unknown[] = [];
  const dir = jest.spyOn(console, 'dir').mockImplementation((value: unknown) => void printed.push(value));

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    stopTelemetry = startSampleTelemetry({
      THORN_SAMPLE_OTEL: 'console',
      THORN_SAMPLE_OTEL_INTERVAL: '3600000',
    });
    app = await NestFactory.create(
      AppModule.forRoot({ sqliteFile: ':memory:', dispatcher: 'direct', port: 0 }),
      {
        logger: false,
      },
    );
    app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }));
    setupOpenApi(app);
    await app.listen(0, '127.0.0.1');
    base = await app.getUrl();
  });
  afterAll(async () => {
    await app?.close();
    await stopTelemetry?.();
    dir.mockRestore();
    await receiver.stop();
  });

  it('serves its OpenAPI document at /openapi.json with every /hooks route, and Swagger UI at /docs', async () => {
    const res = await fetch(`${base}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as any;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/hooks', '/hooks/{id}', '/health']));
    expect(Object.keys(doc.paths['/hooks']).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/hooks/{id}']).sort()).toEqual(['delete', 'get', 'patch', 'put']);
    expect(doc.paths['/hooks'].post.security).toEqual([{ bearer: [] }]);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ scheme: 'bearer' });
    const ui = await fetch(`${base}/docs`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toMatch(/swagger-ui/i);
  });

  it('GET /health answers 200 with the database and nestjs-thorn up', async () => {
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.status).toBe('ok');
    expect(body.info.database.status).toBe('up');
    expect(body.info.thorn).toMatchObject({ status: 'up', store: { status: 'up' } });
  });

  it('THORN_SAMPLE_OTEL=console prints the spans of a delivery and the thorn metrics', async () => {
    const call = (method: string, path: string, body: unknown) =>
      fetch(`${base}${path}`, {
        method,
        headers: { authorization: 'Bearer alice-token', 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect(
      (await call('POST', '/hooks', { event: 'article.created', url: `${receiver.url}/in` })).status,
    ).toBe(201);
    expect((await call('POST', '/articles', { title: 'Traced', body: 'x' })).status).toBe(201);
    await receiver.waitFor(1);
    const spanNames = () => printed.map((p) => (p as { name?: string }).name);
    const deadline = Date.now() + 10_000;
    while (!spanNames().includes('POST') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(spanNames()).toEqual(expect.arrayContaining(['send article.created', 'POST']));
    await stopTelemetry!();
    stopTelemetry = null;
    const metricNames = printed.map((p) => (p as { descriptor?: { name: string } }).descriptor?.name);
    expect(metricNames).toEqual(
      expect.arrayContaining(['thorn.deliveries', 'thorn.delivery.attempt.duration']),
    );
  });
});
