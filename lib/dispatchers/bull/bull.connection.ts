import type { ModuleRef } from '@nestjs/core';
import Bull from 'bull';
import { messages } from '../../messages.js';
import { THORN_QUEUE } from '../../thorn.constants.js';
import type { ThornBullOptions } from './bull.types.js';

/**
 * Job defaults of the `thorn` queue; `defaultJobOptions` in the `bull` option (or `BullModule.forRoot`) win. `attempts`
 * only matters when a job throws (the database or Redis is unreachable): failed deliveries are retried as their own
 * jobs, never by rerunning a job.
 */
export const THORN_JOB_DEFAULTS: Bull.JobOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 2000 },
  removeOnComplete: 1000,
  removeOnFail: false,
};

/**
 * Bull's queue with one fix: `process()` starts `setWorkerName()` (a cosmetic `CLIENT SETNAME`) without handling its
 * promise, so closing the queue while it still connects raised an unhandled rejection ("Connection is closed."),
 * which crashes Node. A subclass override, not a patch of Bull.
 */
class ThornQueue extends (Bull as unknown as new (...args: unknown[]) => Bull.Queue) {
  setWorkerName(): Promise<unknown> {
    const original = (Bull.prototype as unknown as { setWorkerName: () => Promise<unknown> }).setWorkerName;
    return original.call(this).catch(() => undefined);
  }
}

/** The `thorn` queue, connected per the `bull` option, else per the app's `BullModule.forRoot()` configuration. */
export async function createThornQueue(
  option: string | ThornBullOptions | undefined,
  moduleRef: ModuleRef,
): Promise<Bull.Queue> {
  const config = option ?? (await sharedBullConfig(moduleRef));
  if (typeof config === 'string') {
    return new ThornQueue(THORN_QUEUE, config, { defaultJobOptions: THORN_JOB_DEFAULTS });
  }
  const { url, ...rest } = config as ThornBullOptions & Bull.QueueOptions;
  const options: Bull.QueueOptions = {
    ...rest,
    defaultJobOptions: { ...THORN_JOB_DEFAULTS, ...(rest.defaultJobOptions ?? {}) },
  };
  return typeof url === 'string'
    ? new ThornQueue(THORN_QUEUE, url, options)
    : new ThornQueue(THORN_QUEUE, options);
}

/** The configuration of `BullModule.forRoot()` / `forRootAsync()` (the default one), or a clear error. */
async function sharedBullConfig(moduleRef: ModuleRef): Promise<string | ThornBullOptions> {
  let token: string;
  try {
    token = (await import('@nestjs/bull')).getSharedConfigToken();
  } catch (err) {
    throw new Error(messages.bullNoConnection(`@nestjs/bull is not installed: ${(err as Error).message}`), {
      cause: err,
    });
  }
  let config: unknown;
  try {
    config = moduleRef.get(token, { strict: false });
  } catch (err) {
    throw new Error(messages.bullNoConnection('no BullModule.forRoot() configuration found'), { cause: err });
  }
  if (typeof config !== 'string' && (typeof config !== 'object' || config === null)) {
    throw new Error(messages.bullNoConnection('BullModule.forRoot() was given no configuration'));
  }
  return config as string | ThornBullOptions;
}
