import type { ModuleRef } from '@nestjs/core';
import { Queue, type DefaultJobOptions, type QueueOptions, type WorkerOptions } from 'bullmq';
import { messages } from '../../messages.js';
import { THORN_QUEUE } from '../../thorn.constants.js';
import type { ThornBullMQOptions } from './bullmq.types.js';

/**
 * Job defaults of the `thorn` queue; `defaultJobOptions` in the `bullmq` option (or `BullModule.forRoot`) win.
 * `attempts` only matters when a job throws (the database or Redis is unreachable): failed deliveries are retried as
 * their own jobs, never by rerunning a job.
 */
export const THORN_JOB_DEFAULTS: DefaultJobOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 2000 },
  removeOnComplete: 1000,
  removeOnFail: false,
};

/** The `thorn` queue and what a worker of this app needs to open on the same Redis. */
export interface ThornBullMQ {
  queue: Queue;
  /** Options for this app's `Worker` (connection, prefix and `workerOptions`; the caller sets `concurrency`). */
  workerOptions: WorkerOptions;
}

/** The `thorn` queue, connected per the `bullmq` option, else per the app's `BullModule.forRoot()` of @nestjs/bullmq. */
export async function createThornQueue(
  option: string | ThornBullMQOptions | undefined,
  moduleRef: ModuleRef,
): Promise<ThornBullMQ> {
  const config = option ?? (await sharedBullMQConfig(moduleRef));
  const {
    url,
    connection: given,
    workerOptions,
    ...rest
  } = (typeof config === 'string' ? { url: config } : config) as ThornBullMQOptions & Partial<QueueOptions>;
  const connection = (
    url !== undefined ? { ...(given ?? {}), url } : (given ?? {})
  ) as QueueOptions['connection'];
  if (!isClientInstance(connection)) await requireIORedis();
  const queue = new Queue(THORN_QUEUE, {
    ...rest,
    connection,
    defaultJobOptions: { ...THORN_JOB_DEFAULTS, ...((rest.defaultJobOptions as DefaultJobOptions) ?? {}) },
  });
  return {
    queue,
    workerOptions: {
      ...((workerOptions ?? {}) as Partial<WorkerOptions>),
      connection,
      ...(rest.prefix !== undefined ? { prefix: rest.prefix } : {}),
    },
  };
}

/** A Redis client passed as `connection` (BullMQ shares it), rather than connection options. */
function isClientInstance(connection: unknown): boolean {
  return typeof (connection as { connect?: unknown } | null)?.connect === 'function';
}

/**
 * BullMQ 6 connects through the optional `ioredis` package when given connection options: check it is installed now,
 * so a missing one fails at start-up with the install line rather than as a background connection error.
 */
async function requireIORedis(): Promise<void> {
  try {
    await import('ioredis');
  } catch (err) {
    throw new Error(messages.bullmqMissing((err as Error).message), { cause: err });
  }
}

/** The configuration of `BullModule.forRoot()` / `forRootAsync()` of @nestjs/bullmq (the default one), or a clear error. */
async function sharedBullMQConfig(moduleRef: ModuleRef): Promise<ThornBullMQOptions> {
  let token: string;
  try {
    token = (await import('@nestjs/bullmq')).getSharedConfigToken();
  } catch (err) {
    throw new Error(
      messages.bullmqNoConnection(`@nestjs/bullmq is not installed: ${(err as Error).message}`),
      {
        cause: err,
      },
    );
  }
  let config: unknown;
  try {
    config = moduleRef.get(token, { strict: false });
  } catch (err) {
    throw new Error(messages.bullmqNoConnection('no BullModule.forRoot() configuration found'), {
      cause: err,
    });
  }
  if (typeof config !== 'object' || config === null) {
    throw new Error(messages.bullmqNoConnection('BullModule.forRoot() was given no configuration'));
  }
  return config as ThornBullMQOptions;
}
