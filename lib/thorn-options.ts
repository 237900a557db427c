import type { CanActivate, Type } from '@nestjs/common';
import { lookup as dnsLookup } from 'node:dns';
import type { TransportOption } from './delivery/axios.transport.js';
import { DEFAULT_CODECS, type Codec } from './delivery/codecs.js';
import { sign, type HmacSigner } from './delivery/signing.js';
import { isAxiosInstanceLike } from './delivery/transport.factory.js';
import {
  defaultRecipientValidators,
  type LookupLike,
  type RecipientValidator,
} from './delivery/validators.js';
import type { Dispatcher } from './dispatchers/dispatcher.js';
import type { ThornBullOptions } from './dispatchers/bull/bull.types.js';
import type { ThornBullMQOptions } from './dispatchers/bullmq/bullmq.types.js';
import { messages } from './messages.js';
import type { LedgerOptions, ResolvedLedgerOptions } from './ledger/ledger.types.js';
import type { SubscribersOption } from './subscriptions/recipient.js';
import { Subscriber } from './subscriptions/subscriber.entity.js';
import { THORN_VERSION } from './thorn.constants.js';

/** How retries are spaced: the same `retryDelay` each time, or `retryDelay · 2^n` with ±20 % jitter. */
export type RetryBackoff = 'fixed' | 'exponential';
/** Built-in dispatcher names, or a class implementing `Dispatcher`. */
export type DispatcherOption = 'direct' | 'bull' | 'bullmq' | 'disabled' | Type<Dispatcher>;

/** Timeout and retry settings; resolved `send()` option → `Event` option → module option. */
export interface DeliverySettings {
  /** Per-request timeout in ms (connect + response). */
  timeout: number;
  retry: boolean;
  /** Retries after the first attempt. */
  retryMax: number;
  /** Delay before a retry, in ms. */
  retryDelay: number;
  retryBackoff: RetryBackoff;
  /** Upper bound of one retry delay (exponential backoff, Retry-After), in ms. */
  retryDelayMax: number;
}

/**
 * How one option is defaulted and checked. `check` sees the value as given (`undefined` when left out) and returns
 * what to use instead, as an error hint (`'use true or false'`), or nothing when the value is fine; `default` is used
 * when the value is `undefined` or `null`; `resolve` turns an accepted value into the one the module uses.
 */
interface OptionSpec<In, Out> {
  default: () => Out;
  check: (value: unknown, name: string) => string | undefined;
  resolve?: (value: In) => Out;
}
type InputOf<S> = S extends OptionSpec<infer In, any> ? In : never;
type OutputOf<S> = S extends OptionSpec<any, infer Out> ? Out : never;

const spec = <In, Out = In>(s: OptionSpec<In, Out>): OptionSpec<In, Out> => s;
const isInteger = (v: unknown, min: number): boolean =>
  typeof v === 'number' && Number.isInteger(v) && v >= min;
/** An integer >= `min`; `null` counts as left out. */
const integer = (def: number, min: number) =>
  spec<number>({
    default: () => def,
    check: (v) => (v == null || isInteger(v, min) ? undefined : `use an integer >= ${min}`),
  });
/** `true` or `false`; `null` counts as left out. */
const boolean = (def: boolean) =>
  spec<boolean>({
    default: () => def,
    check: (v) => (v == null || typeof v === 'boolean' ? undefined : 'use true or false'),
  });
/** A function; `null` counts as left out. */
const func = <F>(def: F) =>
  spec<F>({
    default: () => def,
    check: (v) => (v == null || typeof v === 'function' ? undefined : 'use a function'),
  });
/** An optional non-empty string (`null` is refused). */
const text = <Out extends string | undefined>(def: () => Out) =>
  spec<string, Out>({
    default: def,
    check: (v) =>
      v === undefined || (typeof v === 'string' && v !== '') ? undefined : 'use a non-empty string',
  });
const isPlainObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `autoDisable` as given: `false` (off), `true` (the defaults) or the settings to change. */
export interface AutoDisableOptions {
  /** How long, in ms, a subscription must have been failing without a success (default 5 days). */
  after?: number;
  /** How many deliveries in a row must have failed (default 10). */
  minFailures?: number;
}
/** Why a subscription was disabled: `'gone'` (410), `'failing'` (autoDisable) or `'paused'` (PATCH, the service). */
export type DisabledReason = 'gone' | 'failing' | 'paused';
const AUTO_DISABLE_DEFAULTS = { after: 5 * 24 * 3_600_000, minFailures: 10 };

/**
 * Every option of `ThornModule.forRoot()` / `forRootAsync()`: its default, its check and its doc comment. The option
 * types, the resolved options, the defaults, the validation and the list of known names all come from this table, so
 * adding an option is one entry here.
 */
const OPTIONS = {
  /** `'direct'` (default), `'bull'`, `'bullmq'`, `'disabled'`, or a class implementing `Dispatcher`. */
  dispatcher: spec<DispatcherOption>({
    default: () => 'direct',
    check: (v) =>
      v == null ||
      typeof v === 'function' ||
      v === 'direct' ||
      v === 'bull' ||
      v === 'bullmq' ||
      v === 'disabled'
        ? undefined
        : "use 'direct', 'bull', 'bullmq', 'disabled' or a class implementing Dispatcher",
  }),
  /** Per-request timeout in ms (connect + response; default 3000). */
  timeout: integer(3000, 1),
  /** Retry failed deliveries (default true). */
  retry: boolean(true),
  /** Retries after the first attempt (default 10). */
  retryMax: integer(10, 0),
  /** Delay before a retry, in ms (default 60000). */
  retryDelay: integer(60_000, 0),
  /** `'fixed'` (default) or `'exponential'` (`retryDelay · 2^n`, ±20 % jitter). */
  retryBackoff: spec<RetryBackoff>({
    default: () => 'fixed',
    check: (v) =>
      v == null || v === 'fixed' || v === 'exponential' ? undefined : "use 'fixed' or 'exponential'",
  }),
  /** Upper bound of one retry delay (exponential backoff, Retry-After), in ms (default 1 h). */
  retryDelayMax: integer(3_600_000, 0),
  /** Requests per queue job with the bull and bullmq dispatchers (default 10). */
  chunkSize: integer(10, 1),
  /** Content type → codec, merged over the JSON and form codecs. */
  codecs: spec<Record<string, Codec>>({
    default: () => ({ ...DEFAULT_CODECS }),
    check: (v) => {
      for (const [type, codec] of Object.entries(v ?? {})) {
        if (typeof codec !== 'function')
          throw new Error(messages.badOption(`codecs["${type}"]`, codec, 'use a function'));
      }
      return undefined;
    },
    resolve: (v) => ({ ...DEFAULT_CODECS, ...v }),
  }),
  /** Static subscribers keyed by event pattern (default none). */
  subscribers: spec<SubscribersOption>({
    default: () => ({}),
    check: (v) => (v === undefined || isPlainObject(v) ? undefined : 'use an object keyed by event pattern'),
  }),
  /** Secret for static subscribers that have none; without it they are sent unsigned. */
  defaultHmacSecret: text(() => undefined),
  /** The only `event` values the REST API accepts. */
  eventChoices: spec<string[], string[] | undefined>({
    default: () => undefined,
    check: (v) =>
      v === undefined || (Array.isArray(v) && v.every((e) => typeof e === 'string'))
        ? undefined
        : 'use an array of event names',
  }),
  /** `(digest, secret, body) => signature` (default `sign`). */
  hmacSigner: func<HmacSigner>(sign),
  /** URL/address checks run at subscribe time and before every connection. */
  recipientValidators: spec<RecipientValidator[]>({
    default: () => defaultRecipientValidators(),
    check: (v) =>
      v == null || (Array.isArray(v) && v.every((f) => typeof f === 'function'))
        ? undefined
        : 'use an array of validator functions',
  }),
  /** Follow 3xx answers (each hop validated); default false: a 3xx is a failed attempt. */
  allowRedirects: boolean(false),
  /** Hop limit when redirects are allowed (default 3). */
  maxRedirects: integer(3, 0),
  /** Model events wait for the outermost commit and are dropped on rollback (default true). */
  signalHonorsTransaction: boolean(true),
  /** Throw model-event dispatch errors into `save()` (default false: logged). */
  propagateErrors: boolean(false),
  /** Guards for the `/hooks` routes, in addition to the built-in "authenticated" check. */
  guards: spec<(Type<CanActivate> | CanActivate)[]>({
    default: () => [],
    check: (v) => (v === undefined || Array.isArray(v) ? undefined : 'use an array'),
  }),
  /** The requesting user's id (a string or a finite number) for `/hooks` ownership (default `req.user?.id`). */
  getUser: func<(req: any) => string | number | null | undefined>((req: any) => req?.user?.id),
  /** Subscriptions one user may hold through `/hooks` (default 1000); more is answered 409. */
  maxSubscriptionsPerUser: integer(1000, 1),
  /** Prefix that turns relative `ref` values into absolute URLs. */
  baseUrl: text(() => undefined),
  /** `User-Agent` header (default `nestjs-thorn/<version>`). */
  userAgent: text(() => `nestjs-thorn/${THORN_VERSION}`),
  /** `dns.lookup`-compatible resolver used for every delivery; its answers are validated like any other. */
  lookup: func<LookupLike>(dnsLookup as LookupLike),
  /**
   * How long, in ms, a checked copy of the stored subscription patterns answers lookups (default 1000): a subscription
   * written by another process or by raw SQL is matched by every event raised more than this after its commit. 0 = no
   * cache, every event queries the table.
   */
  subscriptionCacheTtl: integer(1000, 0),
  /** In-flight HTTP requests per process (default 64). */
  concurrency: integer(64, 1),
  /** Largest encoded body, in bytes (default 256 KiB); larger payloads fail `send()` before any request. */
  maxPayloadSize: integer(256 * 1024, 1),
  /** How much of a response body is read, in bytes (default 64 KiB). */
  maxResponseBody: integer(64 * 1024, 0),
  /**
   * Also send Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`), signed afresh on every
   * attempt; generated secrets are then `whsec_` + Base64 of 32 random bytes.
   */
  standardWebhooks: boolean(false),
  /**
   * Disable a stored subscription failing for at least `after` ms (default 5 days) with at least `minFailures` failed
   * deliveries in a row (default 10); `false` = never (a 410 still disables it).
   */
  autoDisable: spec<boolean | AutoDisableOptions, { after: number; minFailures: number } | false>({
    default: () => ({ ...AUTO_DISABLE_DEFAULTS }),
    check: (v) => {
      if (v == null || typeof v === 'boolean') return undefined;
      const o = v as Record<string, unknown>;
      const bad = () => 'use false, true or { after: <ms, integer >= 0>, minFailures: <integer >= 1> }';
      if (!isPlainObject(v)) return bad();
      for (const k of Object.keys(o)) if (k !== 'after' && k !== 'minFailures') return bad();
      if (o.after != null && !isInteger(o.after, 0)) return bad();
      if (o.minFailures != null && !isInteger(o.minFailures, 1)) return bad();
      return undefined;
    },
    resolve: (v) =>
      v === false
        ? false
        : {
            after: (v === true ? undefined : v.after) ?? AUTO_DISABLE_DEFAULTS.after,
            minFailures: (v === true ? undefined : v.minFailures) ?? AUTO_DISABLE_DEFAULTS.minFailures,
          },
  }),
  /**
   * Called once each time a stored subscription is disabled by the module (410 Gone: `'gone'`, `autoDisable`:
   * `'failing'`), with the subscription as stored after the change; a throw is logged.
   */
  onSubscriptionDisabled: func<
    ((subscription: Subscriber, reason: DisabledReason) => void | Promise<void>) | undefined
  >(undefined),
  /** How long, in ms, a rotated-out secret stays valid in `webhook-signature` (default 24 h). */
  secretRotationGrace: integer(24 * 3_600_000, 0),
  /** Send the OpenTelemetry trace context (`traceparent`) to receivers (default false: receivers are third parties). */
  propagateTraceContext: boolean(false),
  /** HTTP client: `'undici'` (default), `'axios'` (optional peer, loaded on demand) or your own axios instance. */
  transport: spec<TransportOption>({
    default: () => 'undici',
    check: (v) =>
      v == null || v === 'undici' || v === 'axios' || isAxiosInstanceLike(v)
        ? undefined
        : "use 'undici', 'axios' or an axios instance (AxiosInstance)",
  }),
  /** Bull connection: a Redis URL or Bull queue options (dispatcher 'bull'); default: the app's `BullModule.forRoot()`. */
  bull: spec<string | ThornBullOptions, string | ThornBullOptions | undefined>({
    default: () => undefined,
    check: (v) =>
      v === undefined || typeof v === 'string' || (typeof v === 'object' && v !== null)
        ? undefined
        : 'use a Redis URL or Bull queue options',
  }),
  /**
   * BullMQ connection: a Redis URL or BullMQ queue options plus `workerOptions` (dispatcher 'bullmq'); default: the
   * app's `BullModule.forRoot()` of @nestjs/bullmq.
   */
  bullmq: spec<string | ThornBullMQOptions, string | ThornBullMQOptions | undefined>({
    default: () => undefined,
    check: (v) =>
      v === undefined || typeof v === 'string' || (typeof v === 'object' && v !== null && !Array.isArray(v))
        ? undefined
        : 'use a Redis URL or BullMQ queue options',
  }),
  /** With dispatcher 'bull' or 'bullmq': also process queued jobs in this app (default true); false = producer only. */
  worker: boolean(true),
  /**
   * With dispatcher 'bull' or 'bullmq': how long `send()` waits for Redis to accept an event, in ms (default 5000); after that it
   * rejects (Redis unreachable), so `send()` and `save()` never hang. Also bounds the queue's disconnect at shutdown.
   */
  enqueueTimeout: integer(5000, 1),
  /**
   * The delivery ledger (default false): `true` or `{ pollInterval, retention, maxResponseBody, batchSize, lease }`
   * records every event in the app's transaction and every delivery and attempt in the database (README "Delivery
   * ledger").
   */
  ledger: spec<boolean | LedgerOptions, ResolvedLedgerOptions | false>({
    default: () => false,
    check: (v, name) => {
      if (v == null || typeof v === 'boolean') return undefined;
      if (!isPlainObject(v))
        return 'use true, false or an object { pollInterval, retention, maxResponseBody, batchSize, lease }';
      for (const [key, value] of Object.entries(v as object)) {
        const field = LEDGER_FIELDS[key as keyof LedgerOptions];
        if (!field) throw new Error(messages.badOption(`${name}.${key}`, value, 'unknown ledger option'));
        if (value !== undefined && !isInteger(value, field.min))
          throw new Error(messages.badOption(`${name}.${key}`, value, `use an integer >= ${field.min}`));
      }
      return undefined;
    },
    resolve: (v) => {
      if (v === false) return false;
      const given = v === true ? {} : v;
      return Object.fromEntries(
        Object.entries(LEDGER_FIELDS).map(([k, f]) => [k, given[k as keyof LedgerOptions] ?? f.default]),
      ) as ResolvedLedgerOptions;
    },
  }),
};

/** The ledger's fields: default and the least value each takes. */
const LEDGER_FIELDS: Record<keyof LedgerOptions, { default: number; min: number }> = {
  pollInterval: { default: 1000, min: 10 },
  retention: { default: 7 * 24 * 3_600_000, min: 0 },
  maxResponseBody: { default: 1024, min: 0 },
  batchSize: { default: 500, min: 1 },
  lease: { default: 60_000, min: 1000 },
};

/**
 * Choices that shape the module graph, so they must be known before an async options factory runs:
 * `forRoot({ ...options, ...extras })` and `forRootAsync({ useFactory, ...extras })` both take them. Unlike options,
 * `null` is not taken as "left out".
 */
const EXTRAS = {
  /** Register the module globally (default true). */
  isGlobal: spec<boolean>({
    default: () => true,
    check: (v) => (v === undefined || typeof v === 'boolean' ? undefined : 'use true or false'),
  }),
  /** Mount the `/hooks` REST controller (default true). */
  controller: spec<boolean>({
    default: () => true,
    check: (v) => (v === undefined || typeof v === 'boolean' ? undefined : 'use true or false'),
  }),
  /** Where the controller is mounted (default `'hooks'`). */
  path: spec<string>({
    default: () => 'hooks',
    check: (v) => (v === undefined || typeof v === 'string' ? undefined : "use a string such as 'hooks'"),
  }),
  /** Entity used for stored subscriptions (default `Subscriber`); `false` = static subscribers only, no TypeORM. */
  subscriberEntity: spec<Type<any> | false>({
    default: () => Subscriber,
    check: (v) =>
      v === undefined || v === false || typeof v === 'function' ? undefined : 'use an entity class or false',
  }),
  /** Name of the TypeORM DataSource (default: the default one). */
  dataSource: spec<string, string | undefined>({
    default: () => undefined,
    check: (v) =>
      v === undefined || typeof v === 'string' ? undefined : 'use the name of a TypeORM DataSource',
  }),
};

/** Options of `ThornModule.forRoot()` / `forRootAsync()`. */
export type ThornModuleOptions = { [K in keyof typeof OPTIONS]?: InputOf<(typeof OPTIONS)[K]> };
/** Module options with every default applied, validated once at start-up. */
export type ResolvedThornOptions = { [K in keyof typeof OPTIONS]: OutputOf<(typeof OPTIONS)[K]> };
/** Module extras: `forRoot({ ...options, ...extras })`, `forRootAsync({ useFactory, ...extras })`. */
export type ThornModuleExtras = { [K in keyof typeof EXTRAS]?: InputOf<(typeof EXTRAS)[K]> };
/** Extras with their defaults applied. */
export type ResolvedThornExtras = { [K in keyof typeof EXTRAS]: OutputOf<(typeof EXTRAS)[K]> };

const OPTION_NAMES = new Set(Object.keys(OPTIONS));
const EXTRA_NAMES = new Set(Object.keys(EXTRAS));

/** The extras' defaults, for `ConfigurableModuleBuilder.setExtras()`: every extra has a key, so none reaches options. */
export const DEFAULT_EXTRAS: ResolvedThornExtras = defaults(EXTRAS);

function defaults<T extends Record<string, OptionSpec<any, any>>>(
  table: T,
): { [K in keyof T]: OutputOf<T[K]> } {
  return Object.fromEntries(Object.entries(table).map(([k, s]) => [k, s.default()])) as any;
}

/** Checks each value of `table` in `given` and applies the defaults; throws an error naming the first bad one. */
function resolveTable<T extends Record<string, OptionSpec<any, any>>>(
  table: T,
  given: Record<string, unknown>,
): { [K in keyof T]: OutputOf<T[K]> } {
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(table)) {
    const value = given[name];
    const want = s.check(value, name);
    if (want !== undefined) throw new Error(messages.badOption(name, value, want));
    out[name] = value == null ? s.default() : s.resolve ? s.resolve(value) : value;
  }
  return out as { [K in keyof T]: OutputOf<T[K]> };
}

/**
 * Applies defaults and validates every option; throws an error naming the first bad option. `alongside` is what was
 * given next to the extras: in `forRoot()` the options themselves, in `forRootAsync()` whatever sits next to the
 * factory, where an option has no effect (so it is refused rather than ignored).
 */
export function resolveThornOptions(
  o: ThornModuleOptions = {},
  alongside: Record<string, unknown> = {},
): ResolvedThornOptions {
  if (typeof o !== 'object' || o === null)
    throw new Error(messages.badOption('options', o, 'pass an object'));
  for (const [key, value] of Object.entries(o)) {
    if (EXTRA_NAMES.has(key)) throw new Error(messages.extraFromFactory(key));
    if (!OPTION_NAMES.has(key)) throw new Error(messages.badOption(key, value, 'unknown option'));
  }
  for (const [key, value] of Object.entries(alongside)) {
    if (!OPTION_NAMES.has(key)) throw new Error(messages.badOption(key, value, 'unknown option'));
    if (!Object.hasOwn(o, key)) throw new Error(messages.optionBesideFactory(key));
  }
  const resolved = resolveTable(OPTIONS, o as Record<string, unknown>);
  // the one check across options: a delivery's claim must outlast its attempt
  // (with redirects, every hop of one attempt has its own timeout)
  const attempt = resolved.timeout * (resolved.allowRedirects ? resolved.maxRedirects + 1 : 1);
  if (resolved.ledger && resolved.ledger.lease <= attempt + 1000)
    throw new Error(messages.ledgerLease(resolved.ledger.lease, attempt));
  return resolved;
}

/** Applies defaults to the extras and validates them (other keys are options, checked by `resolveThornOptions`). */
export function resolveExtras(extras: ThornModuleExtras = {}): ResolvedThornExtras {
  return resolveTable(EXTRAS, extras as Record<string, unknown>);
}

/** The entries of a `forRoot()` / `forRootAsync()` argument that are not extras. */
export function withoutExtras(given: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(given).filter(([k]) => !EXTRA_NAMES.has(k)));
}

/** Per-send / per-event overrides of the delivery settings. */
export type DeliveryOverrides = Partial<DeliverySettings>;

/** The keys of `DeliverySettings`: all a send() or an Event can override, and all a request carries. */
export const DELIVERY_SETTING_KEYS = [
  'timeout',
  'retry',
  'retryMax',
  'retryDelay',
  'retryBackoff',
  'retryDelayMax',
] as const satisfies readonly (keyof DeliverySettings)[];

/** Resolves delivery settings: the first defined of `send()` option → `Event` option → module option. */
export function resolveDeliverySettings(
  module: DeliverySettings,
  ...layers: (DeliveryOverrides | undefined)[]
): DeliverySettings {
  // only the delivery settings: `module` is usually the whole resolved options object (secrets, guards, …)
  const out = {} as Record<keyof DeliverySettings, unknown>;
  for (const k of DELIVERY_SETTING_KEYS) out[k] = firstDefined(layers, k) ?? module[k];
  return out as unknown as DeliverySettings;
}

/** The first layer's value of `k` that is not undefined (plain loop: this runs for every event sent). */
function firstDefined(
  layers: readonly (DeliveryOverrides | undefined)[],
  k: keyof DeliveryOverrides,
): DeliveryOverrides[keyof DeliveryOverrides] | undefined {
  for (const l of layers) {
    const v = l?.[k];
    if (v !== undefined) return v;
  }
  return undefined;
}

/**
 * The delivery settings set on `send()` / the `Event` (first defined wins), checked like the module options: what a
 * queued job carries, so a worker can rebuild the settings from its own module options. Empty when none is set.
 */
export function deliveryOverrides(
  event: string,
  ...layers: (DeliveryOverrides | undefined)[]
): DeliveryOverrides {
  const out: Record<string, unknown> = {};
  for (const k of DELIVERY_SETTING_KEYS) {
    const v = firstDefined(layers, k);
    if (v === undefined) continue;
    // the same check as the module option of that name
    const want = OPTIONS[k].check(v, k);
    if (want !== undefined) throw new Error(messages.badSendOption(event, k, v, want));
    out[k] = v;
  }
  return out as DeliveryOverrides;
}
