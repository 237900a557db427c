import { createHash } from 'node:crypto';
import { toDigest } from '../delivery/signing.js';
import { matchesPattern } from './pattern.js';
import type { Recipient, SubscriberContext, SubscriberSpec, SubscribersOption } from './recipient.js';

/** A UUID-shaped id derived from url + pattern, so a static subscriber's `Hook-Subscription` never changes. */
export function staticSubscriberId(url: string, pattern: string): string {
  // static subscribers come back on every event: hash each (pattern, url) once
  const key = `${pattern}\n${url}`;
  let id = staticIds.get(key);
  if (!id) {
    const h = createHash('sha1').update(`thorn:${pattern}\n${url}`).digest('hex');
    id = `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
    if (staticIds.size >= 10_000) staticIds.clear();
    staticIds.set(key, id);
  }
  return id;
}

const staticIds = new Map<string, string>();

interface ResolveDefaults {
  defaultHmacSecret?: string;
  source: Recipient['source'];
  /** Called for a subscriber that fails (a callback that throws, an unknown shape); it is skipped. Default: throw. */
  onError?: (pattern: string, err: unknown) => void;
}

/** Resolves the subscribers in `option` whose pattern matches `event`, in declaration order. */
export async function resolveSubscribers(
  option: SubscribersOption | undefined,
  event: string,
  context: SubscriberContext,
  defaults: ResolveDefaults,
): Promise<Recipient[]> {
  const out: Recipient[] = [];
  if (!option) return out;
  for (const pattern in option) {
    if (!matchesPattern(pattern, event)) continue;
    const collect = collector(pattern, event, context, defaults, out);
    if (!defaults.onError) {
      await collect(option[pattern]);
      continue;
    }
    // isolate each top-level item: a failing one loses only itself
    const spec = option[pattern];
    for (const item of Array.isArray(spec) ? (spec as SubscriberSpec[]) : [spec]) {
      try {
        await collect(item);
      } catch (err) {
        defaults.onError(pattern, err);
      }
    }
  }
  return out;
}

function isIterable(v: object): v is Iterable<SubscriberSpec> {
  return typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function';
}
function isAsyncIterable(v: object): v is AsyncIterable<SubscriberSpec> {
  return typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

type Collector = (spec: SubscriberSpec) => void | Promise<void>;

/**
 * Walks one subscriber spec into `out`, in order. Synchronous for plain values and arrays of them (the common case,
 * on every event); it only returns a promise when a callback, promise or async iterable makes it wait.
 */
function collector(
  pattern: string,
  event: string,
  context: SubscriberContext,
  defaults: ResolveDefaults,
  out: Recipient[],
): Collector {
  const collect: Collector = (spec) => {
    if (!spec) return;
    if (typeof spec === 'string') {
      out.push(toRecipient({ url: spec }, pattern, defaults));
    } else if (typeof spec === 'function') {
      return collect(spec(event, context));
    } else if (typeof (spec as PromiseLike<unknown>).then === 'function') {
      return Promise.resolve(spec as PromiseLike<unknown>).then((v) => collect(v as SubscriberSpec));
    } else if (isIterable(spec)) {
      return collectAll(spec[Symbol.iterator]());
    } else if (isAsyncIterable(spec)) {
      return (async () => {
        for await (const item of spec) await collect(item as SubscriberSpec);
      })();
    } else if (typeof (spec as { url?: unknown }).url === 'string') {
      out.push(toRecipient(spec as { url: string }, pattern, defaults));
    } else {
      throw new TypeError(
        `Invalid subscriber for "${pattern}": expected a URL string, an object with "url", a function, an array, a promise or an iterable`,
      );
    }
  };
  const collectAll = (it: Iterator<SubscriberSpec>): void | Promise<void> => {
    for (let r = it.next(); !r.done; r = it.next()) {
      const pending = collect(r.value);
      if (pending) return pending.then(() => collectAll(it));
    }
  };
  return collect;
}

function toRecipient(
  s: { url: string; contentType?: string; hmacSecret?: string; hmacDigest?: string; id?: string },
  pattern: string,
  defaults: ResolveDefaults,
): Recipient {
  return {
    id: s.id ?? staticSubscriberId(s.url, pattern),
    url: s.url,
    event: pattern,
    contentType: s.contentType ?? 'application/json',
    hmacSecret: s.hmacSecret ?? defaults.defaultHmacSecret ?? null,
    hmacDigest: toDigest(s.hmacDigest ?? 'sha256'),
    user: null,
    source: defaults.source,
  };
}

/**
 * Whether `spec` is plain values only (URL strings, `{ url }` objects, arrays of them): nothing that runs, waits or
 * could give another answer next time. Mirrors the order in which `collector` tells specs apart.
 */
export function isPlainSpec(spec: SubscriberSpec): boolean {
  if (!spec || typeof spec === 'string') return true;
  if (Array.isArray(spec)) return spec.every((s) => isPlainSpec(s as SubscriberSpec));
  if (typeof spec !== 'object') return false;
  if (typeof (spec as PromiseLike<unknown>).then === 'function' || isIterable(spec) || isAsyncIterable(spec))
    return false;
  return typeof (spec as { url?: unknown }).url === 'string';
}

/** True if any static subscriber given as a plain value has no secret (callbacks can't be known until they run). */
export function hasUnsignedStatic(option: SubscribersOption | undefined): boolean {
  const walk = (spec: SubscriberSpec): boolean => {
    if (!spec) return false;
    if (typeof spec === 'string') return true;
    if (Array.isArray(spec)) return spec.some(walk);
    if (typeof spec === 'object' && typeof (spec as { url?: unknown }).url === 'string') {
      return !(spec as { hmacSecret?: string }).hmacSecret;
    }
    return false;
  };
  return Object.values(option ?? {}).some(walk);
}
