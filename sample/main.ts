import 'reflect-metadata';
import { Logger, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule, configFromEnv } from './app.module.js';
import { SEEDED_USERS } from './seed.js';

/** `npm run sample`: the sample app on PORT (default 3000), SQLite + direct dispatcher unless configured otherwise. */
async function main() {
  const config = configFromEnv();
  const app = await NestFactory.create(AppModule.forRoot(config));
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }));
  app.enableShutdownHooks();
  await app.listen(config.port ?? 3000, '127.0.0.1');
  const log = new Logger('sample');
  log.log(
    `listening on http://127.0.0.1:${config.port} (${config.databaseUrl ? 'PostgreSQL' : 'SQLite'}, ${config.dispatcher} dispatcher)`,
  );
  log.log(`tokens: ${SEEDED_USERS.map((u) => `${u.username} → Bearer ${u.token}`).join(', ')}`);
}

void main();
