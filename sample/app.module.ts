import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { DataSourceOptions } from 'typeorm';
import {
  Subscriber,
  THORN_LEDGER_ENTITIES,
  ThornModule,
  blockInternalIps,
  ensureProtocol,
  type DispatcherOption,
} from 'nestjs-thorn';
import { ArticlesController } from './articles.controller.js';
import { BearerAuthGuard } from './auth.js';
import { HealthController } from './health.controller.js';
import { Account, Article, Author, Tag, User } from './entities.js';
import { SeedService } from './seed.js';

/** The sample's settings, from the environment (all optional). */
export interface SampleConfig {
  /** PostgreSQL URL; without it a SQLite file is used. */
  databaseUrl?: string;
  /** SQLite file (default `sample.sqlite`; `:memory:` for tests). */
  sqliteFile?: string;
  dispatcher?: DispatcherOption;
  /** Retries after a failed attempt (the module's `retryMax`, default 10); the delivery-log demo uses 1. */
  retryMax?: number;
  redisUrl?: string;
  port?: number;
  /** The delivery ledger (default on; `THORN_LEDGER=false` turns it off). */
  ledger?: boolean;
  /** How long (ms) a killed process's claimed deliveries wait before another process takes them (`ledger.lease`). */
  ledgerLease?: number;
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): SampleConfig {
  return {
    databaseUrl: env.DATABASE_URL,
    sqliteFile: env.SQLITE_FILE,
    dispatcher: (env.THORN_DISPATCHER as DispatcherOption | undefined) ?? 'direct',
    redisUrl: env.REDIS_URL,
    port: env.PORT ? Number(env.PORT) : 3000,
    ledger: env.THORN_LEDGER !== 'false',
    ledgerLease: env.THORN_LEDGER_LEASE ? Number(env.THORN_LEDGER_LEASE) : undefined,
  };
}

// the ledger's tables (thorn_event, thorn_delivery, thorn_attempt) are created with the others (synchronize); a real app
// runs the CreateThornLedger migration instead
const entities = [User, Account, Author, Tag, Article, Subscriber, ...THORN_LEDGER_ENTITIES];

@Module({})
export class AppModule {
  static forRoot(config: SampleConfig = configFromEnv()): DynamicModule {
    const database: DataSourceOptions = config.databaseUrl
      ? { type: 'postgres', url: config.databaseUrl, entities, synchronize: true }
      : {
          type: 'better-sqlite3',
          database: config.sqliteFile ?? 'sample.sqlite',
          entities,
          synchronize: true,
        };
    return {
      module: AppModule,
      imports: [
        TypeOrmModule.forRoot(database),
        TypeOrmModule.forFeature([User, Author, Tag, Article]),
        TerminusModule,
        ThornModule.forRoot({
          dispatcher: config.dispatcher ?? 'direct',
          ...(config.retryMax !== undefined ? { retryMax: config.retryMax } : {}),
          ...(config.dispatcher === 'bull' ? { bull: config.redisUrl ?? 'redis://127.0.0.1:6379' } : {}),
          baseUrl: `http://localhost:${config.port ?? 3000}`,
          timeout: 5_000,
          retryDelay: 2_000,
          retryBackoff: 'exponential',
          // every event recorded in the save's transaction, every delivery and attempt in the database
          ledger:
            config.ledger === false
              ? false
              : { pollInterval: 500, ...(config.ledgerLease ? { lease: config.ledgerLease } : {}) },
          // SAMPLE ONLY: the demo's receiver runs on this machine, so loopback targets are allowed here.
          // A real app keeps the default validators (no internal addresses, ports 80/443 only).
          recipientValidators: [
            blockInternalIps({ allow: ['127.0.0.0/8', '::1/128'] }),
            ensureProtocol('http', 'https'),
          ],
        }),
      ],
      controllers: [ArticlesController, HealthController],
      providers: [SeedService, { provide: APP_GUARD, useClass: BearerAuthGuard }],
    };
  }
}
