import type { CanActivate, Type } from '@nestjs/common';
import { lookup as dnsLookup } from 'node:dns';
import type { TransportOption } from './delivery/axios.transport.js';
import { DEFAULT_CODECS, type Codec } from './delivery/codecs.js';
import { sign, type HmacSigner } from './delivery/signing.js';
import {
  defaultRecipientValidators,
  type LookupLike,
  type RecipientValidator,
} from './delivery/validators.js';
import type { Dispatcher } from './dispatchers/dispatcher.js';
import type { ThornBullOptions } from './dispatchers/bull/bull.types.js';
import { messages } from './messages.js';
import type { SubscribersOption } from './subscriptions/recipient.js';
import { THORN_VERSION } from './thorn.constants.js';

/** How retries are spaced: the same `retryDelay` each time, or `retryDelay · 2^n` with ±20 % jitter. */
export type RetryBackoff = 'fixed' | 'exponential';
/** Built-in dispatcher names, or a class implementing `Dispatcher`. */
export type DispatcherOption = 'direct' | 'bull' | 'disabled' | Type<Dispatcher>;

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

/** Options of `ThornModule.forRoot()` / `forRootAsync()`. */
export interface ThornModuleOptions extends Partial<DeliverySettings> {
  /** `'direct'` (default), `'bull'`, `'disabled'`, or a class implementing `Dispatcher`. */
  dispatcher?: DispatcherOption;
  /** Requests per queue job with the bull dispatcher (default 10). */
  chunkSize?: number;
  /** Content type → codec, merged over the JSON and form codecs. */
  codecs?: Record<string, Codec>;
  /** Static subscribers keyed by event pattern. */
  subscribers?: SubscribersOption;
  /** Secret for static subscribers that have none; without it they are sent unsigned. */
  defaultHmacSecret?: string;
  /** The only `event` values the REST API accepts. */
  eventChoices?: string[];
  /** `(digest, secret, body) => signature` (default `sign`). */
  hmacSigner?: HmacSigner;
  /** URL/address checks run at subscribe time and before every connection. */
  recipientValidators?: RecipientValidator[];
  /** Follow 3xx answers (each hop validated); default false: a 3xx is a failed attempt. */
  allowRedirects?: boolean;
  /** Hop limit when redirects are allowed (default 3). */
  maxRedirects?: number;
  /** Model events wait for the outermost commit and are dropped on rollback (default true). */
  signalHonorsTransaction?: boolean;
  /** Throw model-event dispatch errors into `save()` (default false: logged). */
  propagateErrors?: boolean;
  /** Guards for the `/hooks` routes, in addition to the built-in "authenticated" check. */
  guards?: (Type<CanActivate> | CanActivate)[];
  /** Subscriptions one user may hold through `/hooks` (default 1000); more is answered 409. */
  maxSubscriptionsPerUser?: number;
  /** The requesting user's id for `/hooks` ownership (default `req.user?.id`). */
  getUser?: (req: any) => string | number | null | undefined;
  /** Prefix that turns relative `ref` values into absolute URLs. */
  baseUrl?: string;
  /** `User-Agent` header (default `nestjs-thorn/<version>`). */
  userAgent?: string;
  /** `dns.lookup`-compatible resolver used for every delivery; its answers are validated like any other. */
  lookup?: LookupLike;
  /** In-flight HTTP requests per process (default 64). */
  concurrency?: number;
  /** Largest encoded body, in bytes (default 256 KiB); larger payloads fail `send()` before any request. */
  maxPayloadSize?: number;
  /** How much of a response body is read, in bytes (default 64 KiB). */
  maxResponseBody?: number;
  /** Also send Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`). */
  standardWebhooks?: boolean;
  /** HTTP client: `'undici'` (default), `'axios'` (optional peer, loaded on demand) or your own axios instance. */
  transport?: TransportOption;
  /** Bull connection: a Redis URL or Bull queue options (dispatcher 'bull'); default: the app's `BullModule.forRoot()`. */
  bull?: string | ThornBullOptions;
  /** With dispatcher 'bull': also process queued jobs in this app (default true); false = producer only. */
  worker?: boolean;
  /** Send the trace context (`traceparent`) to receivers (default false: they are third parties). */
  propagateTraceContext?: boolean;
}

/** Module options with every default applied, validated once at start-up. */
export interface ResolvedThornOptions extends DeliverySettings {
  dispatcher: DispatcherOption;
  chunkSize: number;
  codecs: Record<string, Codec>;
  subscribers: SubscribersOption;
  defaultHmacSecret?: string;
  eventChoices?: string[];
  hmacSigner: HmacSigner;
  recipientValidators: RecipientValidator[];
  allowRedirects: boolean;
  maxRedirects: number;
  signalHonorsTransaction: boolean;
  propagateErrors: boolean;
  guards: (Type<CanActivate> | CanActivate)[];
  getUser: (req: any) => string | number | null | undefined;
  maxSubscriptionsPerUser: number;
  baseUrl?: string;
  userAgent: string;
  lookup: LookupLike;
  concurrency: number;
  maxPayloadSize: number;
  maxResponseBody: number;
  standardWebhooks: boolean;
  transport: TransportOption;
  bull?: string | ThornBullOptions;
  worker: boolean;
  propagateTraceContext: boolean;
}

const KNOWN = new Set([
  'dispatcher',
  'timeout',
  'retry',
  'retryMax',
  'retryDelay',
  'retryBackoff',
  'retryDelayMax',
  'chunkSize',
  'codecs',
  'subscribers',
  'defaultHmacSecret',
  'eventChoices',
  'hmacSigner',
  'recipientValidators',
  'allowRedirects',
  'maxRedirects',
  'signalHonorsTransaction',
  'propagateErrors',
  'guards',
  'getUser',
  'maxSubscriptionsPerUser',
  'baseUrl',
  'userAgent',
  'lookup',
  'concurrency',
  'maxPayloadSize',
  'maxResponseBody',
  'standardWebhooks',
  'transport',
  'bull',
  'worker',
  'propagateTraceContext',
  // module extras, validated by the module definition
  'isGlobal',
  'controller',
  'path',
  'subscriberEntity',
  'dataSource',
]);

function num(
  o: ThornModuleOptions,
  name: keyof ThornModuleOptions,
  def: number,
  min: number,
  integer = true,
): number {
  const v = o[name] ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw new Error(messages.badOption(name, v, `use ${integer ? 'an integer' : 'a number'} >= ${min}`));
  }
  return v;
}
function bool(o: ThornModuleOptions, name: keyof ThornModuleOptions, def: boolean): boolean {
  const v = o[name] ?? def;
  if (typeof v !== 'boolean') throw new Error(messages.badOption(name, v, 'use true or false'));
  return v;
}
function fn<T>(o: ThornModuleOptions, name: keyof ThornModuleOptions, def: T): T {
  const v = o[name] ?? def;
  if (typeof v !== 'function') throw new Error(messages.badOption(name, v, 'use a function'));
  return v as T;
}

/** Applies defaults and validates every option; throws an error naming the first bad option. */
export function resolveThornOptions(o: ThornModuleOptions = {}): ResolvedThornOptions {
  if (typeof o !== 'object' || o === null)
    throw new Error(messages.badOption('options', o, 'pass an object'));
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key))
      throw new Error(messages.badOption(key, (o as Record<string, unknown>)[key], 'unknown option'));
  }
  const dispatcher = o.dispatcher ?? 'direct';
  if (typeof dispatcher !== 'function' && !['direct', 'bull', 'disabled'].includes(dispatcher)) {
    throw new Error(messages.unknownDispatcher(dispatcher));
  }
  const retryBackoff = o.retryBackoff ?? 'fixed';
  if (retryBackoff !== 'fixed' && retryBackoff !== 'exponential') {
    throw new Error(messages.badOption('retryBackoff', retryBackoff, "use 'fixed' or 'exponential'"));
  }
  if (
    o.eventChoices !== undefined &&
    (!Array.isArray(o.eventChoices) || o.eventChoices.some((e) => typeof e !== 'string'))
  ) {
    throw new Error(messages.badOption('eventChoices', o.eventChoices, 'use an array of event names'));
  }
  const validators = o.recipientValidators ?? defaultRecipientValidators();
  if (!Array.isArray(validators) || validators.some((v) => typeof v !== 'function')) {
    throw new Error(
      messages.badOption('recipientValidators', validators, 'use an array of validator functions'),
    );
  }
  const codecs = { ...DEFAULT_CODECS, ...(o.codecs ?? {}) };
  for (const [type, codec] of Object.entries(codecs)) {
    if (typeof codec !== 'function')
      throw new Error(messages.badOption(`codecs["${type}"]`, codec, 'use a function'));
  }
  if (
    o.subscribers !== undefined &&
    (typeof o.subscribers !== 'object' || o.subscribers === null || Array.isArray(o.subscribers))
  ) {
    throw new Error(messages.badOption('subscribers', o.subscribers, 'use an object keyed by event pattern'));
  }
  if (o.guards !== undefined && !Array.isArray(o.guards))
    throw new Error(messages.badOption('guards', o.guards, 'use an array'));
  for (const s of ['baseUrl', 'userAgent', 'defaultHmacSecret'] as const) {
    if (o[s] !== undefined && (typeof o[s] !== 'string' || o[s] === '')) {
      throw new Error(messages.badOption(s, o[s], 'use a non-empty string'));
    }
  }
  if (o.bull !== undefined && typeof o.bull !== 'string' && (typeof o.bull !== 'object' || o.bull === null)) {
    throw new Error(messages.badOption('bull', o.bull, 'use a Redis URL or Bull queue options'));
  }
  const transport = o.transport ?? 'undici';
  if (
    transport !== 'undici' &&
    transport !== 'axios' &&
    !(
      (typeof transport === 'object' || typeof transport === 'function') &&
      transport !== null &&
      typeof (transport as { request?: unknown }).request === 'function'
    )
  ) {
    throw new Error(
      messages.badOption(
        'transport',
        transport,
        "use 'undici', 'axios' or an axios instance (AxiosInstance)",
      ),
    );
  }
  return {
    dispatcher,
    timeout: num(o, 'timeout', 3000, 1),
    retry: bool(o, 'retry', true),
    retryMax: num(o, 'retryMax', 10, 0),
    retryDelay: num(o, 'retryDelay', 60_000, 0),
    retryBackoff,
    retryDelayMax: num(o, 'retryDelayMax', 3_600_000, 0),
    chunkSize: num(o, 'chunkSize', 10, 1),
    codecs,
    subscribers: o.subscribers ?? {},
    defaultHmacSecret: o.defaultHmacSecret,
    eventChoices: o.eventChoices,
    hmacSigner: fn(o, 'hmacSigner', sign),
    recipientValidators: validators,
    allowRedirects: bool(o, 'allowRedirects', false),
    maxRedirects: num(o, 'maxRedirects', 3, 0),
    signalHonorsTransaction: bool(o, 'signalHonorsTransaction', true),
    propagateErrors: bool(o, 'propagateErrors', false),
    guards: o.guards ?? [],
    getUser: fn(o, 'getUser', (req: any) => req?.user?.id),
    maxSubscriptionsPerUser: num(o, 'maxSubscriptionsPerUser', 1000, 1),
    baseUrl: o.baseUrl,
    userAgent: o.userAgent ?? `nestjs-thorn/${THORN_VERSION}`,
    lookup: fn(o, 'lookup', dnsLookup as LookupLike),
    concurrency: num(o, 'concurrency', 64, 1),
    maxPayloadSize: num(o, 'maxPayloadSize', 256 * 1024, 1),
    maxResponseBody: num(o, 'maxResponseBody', 64 * 1024, 0),
    standardWebhooks: bool(o, 'standardWebhooks', false),
    transport,
    bull: o.bull,
    worker: bool(o, 'worker', true),
    propagateTraceContext: bool(o, 'propagateTraceContext', false),
  };
}

/** Per-send / per-event overrides of the delivery settings. */
export type DeliveryOverrides = Partial<DeliverySettings>;

/** Resolves delivery settings: the first defined of `send()` option → `Event` option → module option. */
export function resolveDeliverySettings(
  module: DeliverySettings,
  ...layers: (DeliveryOverrides | undefined)[]
): DeliverySettings {
  const out = { ...module };
  for (const layer of layers.reverse()) {
    if (!layer) continue;
    for (const k of Object.keys(out) as (keyof DeliverySettings)[]) {
      if (layer[k] !== undefined) (out as any)[k] = layer[k];
    }
  }
  return out;
}
