import { Logger } from '@nestjs/common';
import type { AttemptOutcome } from '../delivery/delivery.service.js';
import type { DeliveryRequest } from '../delivery/request.js';
import { messages } from '../messages.js';
import type { DisabledReason, ResolvedThornOptions } from '../thorn-options.js';
import type { Subscriber } from './subscriber.entity.js';
import { logError, logLine } from '../telemetry/log-fields.js';
import type { SubscriptionStore } from './subscription.store.js';

/**
 * Endpoint health (SPEC §11), told by `DeliveryService.finished()` when a delivery to a stored subscription ends: a
 * success clears the failure streak; a failure (after the last retry) extends it (`consecutiveFailures`,
 * `failingSince`) and, with `autoDisable`, disables a subscription failing long and often enough; a 410 disables it at
 * once (reason `'gone'`). Each disable is one conditional UPDATE (`WHERE active`), so however many processes see the
 * failure, `onSubscriptionDisabled` is called once. The writes skip TypeORM's entity listeners: they change no pattern.
 */
export class SubscriptionHealth {
  private readonly logger = new Logger('Thorn');

  constructor(
    private readonly store: SubscriptionStore,
    private readonly options: Pick<ResolvedThornOptions, 'autoDisable' | 'onSubscriptionDisabled'>,
  ) {}

  /** `DeliveryHooks.onFinished`: records how a delivery ended (stored subscriptions whose request was sent only). */
  finished(request: DeliveryRequest, outcome: AttemptOutcome): Promise<void> | undefined {
    // a request that could not be built (no codec, too large) says nothing about the receiver; nothing to wait for
    if (request.source !== 'stored' || request.failure) return undefined;
    return this.record(request, outcome);
  }

  private async record(request: DeliveryRequest, outcome: AttemptOutcome): Promise<void> {
    if (outcome.verdict.ok) {
      // only when the subscription was failing when read: no write per successful delivery
      if (request.failing !== false) await this.succeeded(request.subscription);
      return;
    }
    await this.failed(request.subscription);
    if (outcome.verdict.gone) {
      await this.disable(request.subscription, 'gone', request);
    } else if (this.options.autoDisable) {
      const { after, minFailures } = this.options.autoDisable;
      await this.disable(request.subscription, 'failing', request, {
        minFailures,
        since: new Date(Date.now() - after),
      });
    }
  }

  /** Clears the failure streak of `id` (a success, or a re-enable). */
  async succeeded(id: string): Promise<void> {
    const col = this.column;
    await this.update()
      .set({ consecutiveFailures: 0, failingSince: null } as any)
      .where(`${col('id')} = :id AND ${col('consecutiveFailures')} > 0`, { id })
      .execute();
  }

  private async failed(id: string): Promise<void> {
    const col = this.column;
    await this.update()
      .set({
        consecutiveFailures: () => `${col('consecutiveFailures')} + 1`,
        failingSince: () => `COALESCE(${col('failingSince')}, :now)`,
      } as any)
      .setParameter('now', new Date())
      .where(`${col('id')} = :id`, { id })
      .execute();
  }

  /**
   * Disables `id` if it is active (and, for `'failing'`, has failed at least `minFailures` times in a row since at
   * least `since`); when this call is the one that disabled it, tells the app.
   */
  private async disable(
    id: string,
    reason: DisabledReason,
    request: DeliveryRequest,
    streak?: { minFailures: number; since: Date },
  ): Promise<void> {
    const col = this.column;
    const qb = this.update()
      .set({ active: false, disabledAt: new Date(), disabledReason: reason } as any)
      .where(`${col('id')} = :id AND ${col('active')} = :active`, { id, active: true });
    if (streak) {
      qb.andWhere(`${col('consecutiveFailures')} >= :min AND ${col('failingSince')} <= :since`, {
        min: streak.minFailures,
        since: streak.since,
      });
    }
    const result = await qb.execute();
    if (!result.affected) return;
    this.logger.warn(
      logLine(messages.subscriptionDisabled(id, reason), {
        event: request.event,
        delivery: request.id,
        subscription: id,
        url: request.url,
      }),
    );
    const callback = this.options.onSubscriptionDisabled;
    if (!callback) return;
    try {
      const row = await this.store.repository.findOneBy({ id } as any);
      if (row) await callback(row as Subscriber, reason);
    } catch (err) {
      this.logger.error(logLine(`onSubscriptionDisabled threw: ${logError(err)}`, { subscription: id }));
    }
  }

  private update() {
    return this.store.repository.createQueryBuilder().update().callListeners(false).updateEntity(false);
  }

  private column = (property: string): string => {
    const meta = this.store.repository.metadata;
    return this.store.repository.manager.connection.driver.escape(
      meta.findColumnWithPropertyName(property)!.databaseName,
    );
  };
}
