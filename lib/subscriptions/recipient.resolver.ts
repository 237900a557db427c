import { Logger } from '@nestjs/common';
import type { DeliveryRequest, SigningKeys } from '../delivery/request.js';
import type { ResolvedThornOptions } from '../thorn-options.js';
import type { Recipient, SubscriberContext, SubscribersOption } from './recipient.js';
import { matchesPattern } from './pattern.js';
import { resolveSubscribers } from './static-subscribers.js';
import type { SubscriptionStore } from './subscription.store.js';
import { logError, logLine } from '../telemetry/log-fields.js';

/** What recipients depend on: an event's name, sender and context, and its own subscribers (an `EventEnvelope` is one). */
export interface RecipientQuery {
  name: string;
  sender?: string | null;
  /** Stored subscriptions owned by nobody only (see `EventEnvelope`); static and per-event ones are not filtered. */
  ownerlessOnly?: boolean;
  /** Passed to callback subscribers (with `sender`). */
  context: SubscriberContext;
  /** The event's own subscribers. */
  subscribers?: SubscribersOption;
}

/**
 * Who receives an event: static subscribers, then stored subscriptions, then the event's own, in that order. Used by
 * both dispatchers and `EventService.subscribersFor()`; a custom dispatcher injects it.
 *
 * A broken static or per-event subscriber (a callback that throws, an unknown shape) is logged and skipped; a database
 * error is not: it rejects, so the caller (or the bull job's retry) knows the event was not served.
 */
export class RecipientResolver {
  private readonly logger = new Logger('Thorn');

  constructor(
    private readonly options: Pick<ResolvedThornOptions, 'subscribers' | 'defaultHmacSecret'>,
    private readonly store: SubscriptionStore | null,
  ) {}

  /** Every recipient of the event: static, then stored, then the event's own. */
  async resolve(query: RecipientQuery): Promise<Recipient[]> {
    const ctx = context(query);
    const onError = this.onError(query.name);
    const none = Promise.resolve([] as Recipient[]);
    const [statics, stored, own] = await Promise.all([
      resolveSubscribers(this.options.subscribers, query.name, ctx, this.defaults('static', onError)),
      this.store ? this.store.find(query.name, query.sender, query.ownerlessOnly) : none,
      query.subscribers
        ? resolveSubscribers(query.subscribers, query.name, ctx, this.defaults('event', onError))
        : none,
    ]);
    return [...statics, ...stored, ...own];
  }

  /**
   * Whether event `name` may have a recipient: a static pattern matches it, or the stored subscriptions' pattern cache
   * can't rule one out. False means `resolve()` would find no one (within the cache's staleness bound); nothing is
   * resolved here (no callback runs).
   */
  mayHaveRecipients(name: string): boolean | Promise<boolean> {
    for (const pattern in this.options.subscribers ?? {}) if (matchesPattern(pattern, name)) return true;
    return this.store ? this.store.mayMatch(name) : false;
  }

  /** The static subscribers (module `subscribers` option) only: the ledger finds a static delivery's recipient again. */
  statics(query: RecipientQuery): Promise<Recipient[]> {
    const defaults = this.defaults('static', this.onError(query.name));
    return resolveSubscribers(this.options.subscribers, query.name, context(query), defaults);
  }

  /** The event's own subscribers only (the queue dispatchers resolve them where the event was sent). */
  own(query: RecipientQuery): Promise<Recipient[]> {
    const defaults = this.defaults('event', this.onError(query.name));
    return resolveSubscribers(query.subscribers, query.name, context(query), defaults);
  }

  /**
   * `DeliveryHooks.signingKeys`: the current secrets of a request's subscription, for signing an attempt whose request
   * holds none (rebuilt from a queue job) or a retry. Stored: read from the database (null when deleted). Static:
   * resolved again from the module options (a callback subscriber gets the event name and an empty context).
   * Per-event subscribers: unknown (undefined): only the process that sent the event knew them.
   */
  async signingKeys(request: DeliveryRequest): Promise<SigningKeys | null | undefined> {
    if (request.source === 'stored')
      return this.store ? this.store.signingKeys(request.subscription) : undefined;
    if (request.source !== 'static') return undefined;
    const statics = await resolveSubscribers(
      this.options.subscribers,
      request.event,
      { sender: undefined },
      this.defaults('static', this.onError(request.event)),
    );
    const r = statics.find((x) => x.id === request.subscription && x.url === request.url);
    return r?.hmacSecret ? { secret: r.hmacSecret, digest: r.hmacDigest } : undefined;
  }

  private defaults(source: 'static' | 'event', onError: (pattern: string, err: unknown) => void) {
    return { defaultHmacSecret: this.options.defaultHmacSecret, source, onError };
  }

  private onError(event: string): (pattern: string, err: unknown) => void {
    return (pattern, err) =>
      this.logger.error(logLine(`A subscriber for "${pattern}" was skipped: ${logError(err)}`, { event }));
  }
}

/** What callback subscribers receive: the event's context and its sender. */
function context(query: RecipientQuery): SubscriberContext {
  return { ...query.context, sender: query.sender ?? undefined };
}
