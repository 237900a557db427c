import { Logger } from '@nestjs/common';
import type { DeliveryRequest, SigningKeys } from '../delivery/request.js';
import type { ResolvedThornOptions } from '../thorn-options.js';
import type { Recipient, SubscriberContext, SubscribersOption } from './recipient.js';
import { matchesPattern } from './pattern.js';
import { isPlainSpec, resolveSubscribers } from './static-subscribers.js';
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
  /**
   * Static recipients per event name, for events whose matching static subscribers are all plain values; null for a
   * name some callback, promise or iterable matches (resolved on every event).
   */
  private readonly staticCache = new Map<string, readonly Recipient[] | null>();

  constructor(
    private readonly options: Pick<ResolvedThornOptions, 'subscribers' | 'defaultHmacSecret'>,
    private readonly store: SubscriptionStore | null,
  ) {}

  /** Every recipient of the event: static, then stored, then the event's own. */
  resolve(query: RecipientQuery): Promise<Recipient[]> {
    // the caller's own copies: recipientsOf() shares the kept (frozen) static ones
    const found = this.recipientsOf(query);
    return Array.isArray(found) ? Promise.resolve(found.map(copy)) : found.then((all) => all.map(copy));
  }

  /**
   * `resolve()` for the dispatchers: an array, without a promise, when nothing has to be waited for (only static
   * subscribers given as plain values, the common case of a static setup: no promise on the event's path). The static
   * recipients in it are shared and frozen: read them, don't change them.
   */
  recipientsOf(query: RecipientQuery): Recipient[] | Promise<Recipient[]> {
    const statics = this.staticsFor(query);
    if (!this.store && !query.subscribers && Array.isArray(statics)) return statics.slice();
    const onError = this.onError(query.name);
    const none = Promise.resolve([] as Recipient[]);
    return Promise.all([
      statics,
      this.store ? this.store.find(query.name, query.sender, query.ownerlessOnly) : none,
      query.subscribers
        ? resolveSubscribers(query.subscribers, query.name, context(query), this.defaults('event', onError))
        : none,
    ]).then(([s, stored, own]) => [...s, ...stored, ...own]);
  }

  /**
   * The static subscribers of an event. Those given as plain values (URL strings, `{ url, … }` objects, arrays of
   * them) depend on the event's name only, so they are resolved once per name and kept (at most
   * `MAX_CACHED_EVENT_NAMES` names); callbacks, promises and iterables run on every event, as before.
   */
  private staticsFor(query: RecipientQuery): readonly Recipient[] | Promise<Recipient[]> {
    const option = this.options.subscribers;
    if (!option) return NONE;
    const cached = this.staticCache.get(query.name);
    if (cached) return cached;
    const onError = this.onError(query.name);
    // null: a callback, promise or iterable matches this name (remembered, so the patterns are not checked again)
    if (cached === null || !plainFor(option, query.name)) {
      if (cached === undefined) this.keep(query.name, null);
      return resolveSubscribers(option, query.name, context(query), this.defaults('static', onError));
    }
    let failed = false;
    const defaults = this.defaults('static', (pattern, err) => {
      failed = true;
      onError(pattern, err);
    });
    return resolveSubscribers(option, query.name, context(query), defaults).then((recipients) => {
      // a subscriber that failed (e.g. an unknown digest) is reported on every event, as it was: not kept
      if (!failed) this.keep(query.name, Object.freeze(recipients.map((r) => Object.freeze(r))));
      return recipients;
    });
  }

  private keep(name: string, recipients: readonly Recipient[] | null): void {
    if (this.staticCache.size >= MAX_CACHED_EVENT_NAMES) this.staticCache.clear();
    this.staticCache.set(name, recipients);
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

/** Most event names whose static recipients are kept; beyond that the cache starts over. */
const MAX_CACHED_EVENT_NAMES = 10_000;
const NONE: readonly Recipient[] = Object.freeze([]);

const copy = (r: Recipient): Recipient => ({ ...r });

/** Whether every static subscriber matching `event` is a plain value (its recipients depend on the name only). */
function plainFor(option: SubscribersOption, event: string): boolean {
  for (const pattern in option)
    if (matchesPattern(pattern, event) && !isPlainSpec(option[pattern])) return false;
  return true;
}

/** What callback subscribers receive: the event's context and its sender. */
function context(query: RecipientQuery): SubscriberContext {
  return { ...query.context, sender: query.sender ?? undefined };
}
