import 'reflect-metadata';
import { Logger, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule, configFromEnv } from './app.module.js';
import { setupOpenApi } from './openapi.js';
import { SEEDED_USERS } from './seed.js';
import { startSampleTelemetry } from './telemetry.js';

/**
 * `npm run sample`: the sample app on PORT (default 3000), SQLite + direct dispatcher unless configured otherwise.
 * OpenAPI document at /openapi.json, Swagger UI at /docs, health at /health; `THORN_SAMPLE_OTEL=console` prints
 * traces and metrics.
 */
async function main() {
  const config = configFromEnv();
  startSampleTelemetry(); // before the app, as OpenTelemetry requires
  const app = await NestFactory.create(AppModule.forRoot(config));
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }));
  app.enableShutdownHooks();
  setupOpenApi(app);
  await app.listen(config.port ?? 3000, '127.0.0.1');
  const log = new Logger('sample');
  log.log(
    `listening on http://127.0.0.1:${config.port} (${config.databaseUrl ? 'PostgreSQL' : 'SQLite'}, ${config.dispatcher} dispatcher, ledger ${config.ledger === false ? 'off' : 'on'})`,
  );
  log.log(`OpenAPI: /openapi.json, Swagger UI: /docs, health: /health`);
  log.log(`tokens: ${SEEDED_USERS.map((u) => `${u.username} → Bearer ${u.token}`).join(', ')}`);
}

void main();
