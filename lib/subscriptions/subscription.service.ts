import { IsNull } from 'typeorm';
import { randomSecret, randomStandardWebhooksSecret } from '../delivery/signing.js';
import type { ResolvedThornOptions } from '../thorn-options.js';
import type { Subscriber } from './subscriber.entity.js';
import type { SubscriptionStore } from './subscription.store.js';

/** Which subscriptions a `SubscriptionService` call may touch: `user` = only that owner's (the REST API's rule). */
export interface SubscriptionScope {
  user?: string | null;
}

/** Shortest secret `rotateSecret()` accepts (as `POST /hooks`). */
export const MIN_SECRET_LENGTH = 16;

/**
 * Stored subscriptions for the app's own code (admin pages, jobs): the operations of the `/hooks` API that are more
 * than a row update: secret rotation, pausing and re-enabling. Injectable wherever `ThornModule` is; every method
 * answers null for an unknown id (or, with `user`, someone else's). Throws when the module has no stored subscriptions
 * (`subscriberEntity: false`).
 */
export class SubscriptionService {
  constructor(
    private readonly store: SubscriptionStore | null,
    private readonly options: Pick<ResolvedThornOptions, 'standardWebhooks' | 'secretRotationGrace'>,
  ) {}

  /** A new secret as the module generates them: `whsec_` + Base64 of 32 bytes with `standardWebhooks`, else 64 characters. */
  generateSecret(): string {
    return this.options.standardWebhooks ? randomStandardWebhooksSecret() : randomSecret(64);
  }

  /** The subscription `id` (with its current secret), or null. */
  async get(id: string, scope: SubscriptionScope = {}): Promise<Subscriber | null> {
    const repo = this.repository();
    return repo.findOneBy(where(id, scope) as any);
  }

  /**
   * Replaces the secret of `id` by `hmacSecret` (at least 16 characters) or a generated one; the previous secret stays
   * valid in `webhook-signature` for `secretRotationGrace` ms (never in `Hook-HMAC`). Returns the subscription with the
   * new secret, or null.
   */
  async rotateSecret(
    id: string,
    options: SubscriptionScope & { hmacSecret?: string } = {},
  ): Promise<Subscriber | null> {
    const { hmacSecret } = options;
    if (
      hmacSecret !== undefined &&
      (typeof hmacSecret !== 'string' || hmacSecret.length < MIN_SECRET_LENGTH)
    ) {
      throw new Error(`hmacSecret must be a string of at least ${MIN_SECRET_LENGTH} characters`);
    }
    const repo = this.repository();
    const row = await repo.findOneBy(where(id, options) as any);
    if (!row) return null;
    const grace = this.options.secretRotationGrace;
    const next = hmacSecret ?? this.generateSecret();
    await repo.update(
      { id: row.id } as any,
      {
        hmacSecret: next,
        previousHmacSecret: grace > 0 && row.hmacSecret !== next ? row.hmacSecret : null,
        previousHmacSecretExpiresAt:
          grace > 0 && row.hmacSecret !== next ? new Date(Date.now() + grace) : null,
      } as any,
    );
    return repo.findOneBy({ id: row.id } as any);
  }

  /**
   * `true`: re-enables `id` and clears its failure streak; `false`: pauses it (reason `'paused'`; an already inactive
   * one keeps its reason). Returns the subscription, or null.
   */
  async setActive(id: string, active: boolean, scope: SubscriptionScope = {}): Promise<Subscriber | null> {
    const repo = this.repository();
    const row = await repo.findOneBy(where(id, scope) as any);
    if (!row) return null;
    if (active) {
      await repo.update(
        { id: row.id } as any,
        {
          active: true,
          disabledAt: null,
          disabledReason: null,
          consecutiveFailures: 0,
          failingSince: null,
        } as any,
      );
    } else if (row.active) {
      await repo.update(
        { id: row.id } as any,
        {
          active: false,
          disabledAt: new Date(),
          disabledReason: 'paused',
        } as any,
      );
    }
    return repo.findOneBy({ id: row.id } as any);
  }

  private repository() {
    if (!this.store) {
      throw new Error(
        'SubscriptionService needs stored subscriptions: ThornModule runs with subscriberEntity: false',
      );
    }
    return this.store.repository;
  }
}

function where(id: string, scope: SubscriptionScope): Record<string, unknown> {
  return scope.user === undefined ? { id } : { id, user: scope.user === null ? IsNull() : scope.user };
}
