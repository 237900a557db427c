import { Inject, Injectable } from '@nestjs/common';
import type { ThornQueueStats } from '../dispatchers/queue/queue.types.js';
import { EventService } from '../events/event.service.js';
import { ThornLedger } from '../ledger/ledger.js';
import { SubscriptionStore } from '../subscriptions/subscription.store.js';
import { scrub } from '../telemetry/telemetry.js';
import { healthMessages } from './health.messages.js';

/**
 * What the health indicator can check: the subscription store (database), the bull or bullmq queue (Redis) and the
 * delivery ledger's backlog (option `ledger`).
 */
export type ThornHealthComponent = 'store' | 'queue' | 'ledger';

/** Options of `ThornHealthIndicator` checks. */
export interface ThornHealthOptions {
  /** How long each component may take to answer, in ms (default 1000); slower counts as down. */
  timeout?: number;
  /** The components `isHealthy` checks (default: every one this configuration uses). */
  components?: ThornHealthComponent[];
  /** The queue is down when more jobs than this are waiting (default: no limit). */
  maxQueueWaiting?: number;
  /**
   * The ledger is down when its most overdue pending delivery has been due for longer than this, in ms (default
   * 60000): deliveries are not being attempted (no relay running, the database or Redis unreachable, receivers too
   * slow for the concurrency). Keep it above `timeout` (a delivery under way stays due until its attempt ends).
   */
  maxLedgerAge?: number;
}

/** `maxLedgerAge` when not given. */
export const DEFAULT_MAX_LEDGER_AGE = 60_000;

/** A `@nestjs/terminus` `HealthIndicatorResult`: `{ [key]: { status: 'up' | 'down', ...details } }`. */
export type ThornHealthResult = Record<string, { status: 'up' | 'down'; [detail: string]: unknown }>;

/** One component's check: details when up; throws (the reason) when down. */
interface Probe {
  uses(indicator: ThornHealthIndicator): boolean;
  unused: () => string;
  run(indicator: ThornHealthIndicator, options: ThornHealthOptions): Promise<Record<string, unknown>>;
}

// One entry per component.
const PROBES: Record<ThornHealthComponent, Probe> = {
  store: {
    uses: (h) => h.store !== null,
    unused: healthMessages.noStore,
    run: async (h) => {
      // a real read of the subscriptions table: the connection works and the table exists
      await h.store!.repository.find({ select: { id: true }, take: 1 });
      return {};
    },
  },
  queue: {
    uses: (h) => typeof (h.events.dispatcher as { queueStats?: unknown }).queueStats === 'function',
    unused: healthMessages.noQueue,
    run: async (h, options) => {
      const stats = (await h.events.queueStats()) as ThornQueueStats;
      const { waiting, active, delayed, failed } = stats;
      const details = { waiting, active, delayed, failed };
      if (options.maxQueueWaiting !== undefined && waiting > options.maxQueueWaiting) {
        throw Object.assign(new Error(healthMessages.tooManyWaiting(waiting, options.maxQueueWaiting)), {
          details,
        });
      }
      return details;
    },
  },
  ledger: {
    uses: (h) => h.ledger !== null,
    unused: healthMessages.noLedger,
    run: async (h, options) => {
      const now = Date.now();
      const due = await h.ledger!.store.oldestDue(now);
      const oldestDueMs = due === null ? 0 : Math.max(0, now - due);
      const max = options.maxLedgerAge ?? DEFAULT_MAX_LEDGER_AGE;
      const details = { oldestDueMs, maxLedgerAge: max };
      if (oldestDueMs > max) {
        throw Object.assign(new Error(healthMessages.ledgerBehind(oldestDueMs, max)), { details });
      }
      return details;
    },
  },
};

type Terminus = typeof import('@nestjs/terminus');
type IndicatorService = InstanceType<Terminus['HealthIndicatorService']>;

/**
 * A `@nestjs/terminus` health indicator for nestjs-thorn, used like terminus's own:
 * `health.check([() => thorn.isHealthy('thorn')])`. `@nestjs/terminus` is an optional peer, loaded on the first check.
 */
@Injectable()
export class ThornHealthIndicator {
  private terminus?: Promise<IndicatorService>;

  constructor(
    @Inject(EventService) readonly events: EventService,
    /** null with `subscriberEntity: false` (no stored subscriptions to check). */
    @Inject(SubscriptionStore) readonly store: SubscriptionStore | null,
    /** null with the ledger off. */
    @Inject(ThornLedger) readonly ledger: ThornLedger | null,
  ) {}

  /**
   * Every component this configuration uses (the store unless `subscriberEntity: false`, the queue with a queue
   * dispatcher, the ledger with `ledger` on), each under its own name in the details: down when any one is.
   */
  async isHealthy(key = 'thorn', options: ThornHealthOptions = {}): Promise<ThornHealthResult> {
    const names =
      options.components ??
      (Object.keys(PROBES) as ThornHealthComponent[]).filter((n) => PROBES[n].uses(this));
    const parts = await Promise.all(names.map(async (n) => [n, await this.probe(n, options)] as const));
    const details = Object.fromEntries(parts);
    const up = parts.every(([, p]) => p.status === 'up');
    return this.result(key, up, details);
  }

  /** The subscription store: a read of the subscriptions table within `timeout`. */
  async checkStore(key = 'thorn_store', options: ThornHealthOptions = {}): Promise<ThornHealthResult> {
    const { status, ...details } = await this.probe('store', options);
    return this.result(key, status === 'up', details);
  }

  /** The bull or bullmq queue: its job counts read from Redis within `timeout`, waiting jobs at most `maxQueueWaiting`. */
  async checkQueue(key = 'thorn_queue', options: ThornHealthOptions = {}): Promise<ThornHealthResult> {
    const { status, ...details } = await this.probe('queue', options);
    return this.result(key, status === 'up', details);
  }

  /**
   * The delivery ledger's backlog: up while its most overdue pending delivery has been due for at most
   * `maxLedgerAge` ms (default 60000); the details give that age as `oldestDueMs`.
   */
  async checkLedger(key = 'thorn_ledger', options: ThornHealthOptions = {}): Promise<ThornHealthResult> {
    const { status, ...details } = await this.probe('ledger', options);
    return this.result(key, status === 'up', details);
  }

  private async probe(
    name: ThornHealthComponent,
    options: ThornHealthOptions,
  ): Promise<{ status: 'up' | 'down'; [detail: string]: unknown }> {
    const probe = PROBES[name];
    if (!probe) return { status: 'down', message: `unknown component "${String(name)}"` };
    if (!probe.uses(this)) return { status: 'down', message: probe.unused() };
    const timeout = options.timeout ?? 1000;
    let timer: NodeJS.Timeout | undefined;
    const started = performance.now();
    try {
      const running = probe.run(this, options);
      running.catch(() => undefined); // it may still fail after the timeout
      const details = await Promise.race([
        running,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(healthMessages.timeout(timeout))), timeout);
        }),
      ]);
      return { status: 'up', ...details, responseTimeMs: Math.round(performance.now() - started) };
    } catch (err) {
      const e = err as Error & { details?: Record<string, unknown> };
      return { status: 'down', ...(e.details ?? {}), message: scrub(e.message ?? String(err)) };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Built by terminus's own `HealthIndicatorService`, so the result is exactly what `HealthCheckService` expects. */
  private async result(
    key: string,
    up: boolean,
    details: Record<string, unknown>,
  ): Promise<ThornHealthResult> {
    const session = (await this.indicatorService()).check(key);
    return (up ? session.up(details) : session.down(details)) as ThornHealthResult;
  }

  private indicatorService(): Promise<IndicatorService> {
    this.terminus ??= import('@nestjs/terminus').then(
      (t) => new t.HealthIndicatorService(),
      (err: Error) => {
        this.terminus = undefined;
        throw new Error(healthMessages.terminusMissing(err.message), { cause: err });
      },
    );
    return this.terminus;
  }
}
