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

/** A Bull queue's ioredis client. */
type Redis = Bull.Queue['client'];

/** The parts of Bull's queue (4.16, lib/queue.js) the overrides below use. */
interface BullInternals {
  bclientInitialized?: boolean;
  bclient: Redis;
  /** Each job loop's current promise (take a job, run it, write its outcome); they never reject. */
  processing: Record<string, Promise<unknown>>;
}

/**
 * Bull's queue with two fixes of promises Bull creates without handling them, each an unhandled rejection that crashes
 * Node. Subclass overrides, not patches of Bull.
 * - `process()` starts `setWorkerName()` (a cosmetic `CLIENT SETNAME`): closing the queue while it still connects
 *   rejected it ("Connection is closed.").
 * - `whenCurrentJobsFinished()` (run by `pause(true)` and `close()`) cuts the blocking connection and connects it
 *   again, but handles that reconnection only once the active jobs have finished: with Redis down, it rejected first
 *   ("Connection is closed.", "Redis is already connecting/connected") when a shutdown found a job running.
 */
class ThornQueue extends (Bull as unknown as new (...args: unknown[]) => Bull.Queue) {
  setWorkerName(): Promise<unknown> {
    const original = (Bull.prototype as unknown as { setWorkerName: () => Promise<unknown> }).setWorkerName;
    return original.call(this).catch(() => undefined);
  }

  whenCurrentJobsFinished(): Promise<void> {
    const q = this as unknown as BullInternals;
    if (!q.bclientInitialized) return Promise.resolve();
    // what Bull does, the same order: end the blocking BRPOPLPUSH now, wait for the jobs, then report the reconnection
    const reconnected = cutConnection(q.bclient).then(() => q.bclient.connect());
    reconnected.catch(() => undefined);
    return Promise.all(Object.values(q.processing)).then(() => reconnected);
  }
}

/**
 * Bull's `redisClientDisconnect()` (lib/queue.js, not exported): QUIT (500 ms at most), then cut the connection;
 * resolves once it has ended, or at once while it is still (re)connecting.
 */
function cutConnection(client: Redis): Promise<void> {
  if (client.status === 'end') return Promise.resolve();
  let onEnd!: () => void;
  let onError!: (err: Error) => void;
  return new Promise<void>((resolve, reject) => {
    onEnd = resolve;
    onError = reject;
    client.once('end', onEnd);
    let timer: NodeJS.Timeout | undefined;
    const quit = client.quit().then(
      () => undefined,
      () => undefined,
    );
    const late = new Promise<void>((r) => (timer = setTimeout(r, 500)));
    void Promise.race([quit, late]).then(() => {
      clearTimeout(timer);
      client.once('error', onError);
      client.disconnect();
      if (['connecting', 'reconnecting'].includes(client.status)) resolve();
    });
  }).finally(() => {
    client.removeListener('end', onEnd);
    client.removeListener('error', onError);
  });
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
