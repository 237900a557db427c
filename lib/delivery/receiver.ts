// Receiver side: verifying webhooks an app receives (from nestjs-thorn or any Standard Webhooks sender).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { standardWebhooksKey, verify, type HmacDigest } from './signing.js';

/** Request headers as Node (`req.headers`), Express or the Fetch API (`Headers`) give them. */
export type WebhookHeaders =
  Record<string, string | string[] | undefined> | { get(name: string): string | null };

/** Options of `verifyStandardWebhook()`. */
export interface VerifyStandardWebhookOptions {
  /** The secrets to accept (`whsec_…` or any other string, as the sender has them); one match is enough. */
  secrets: string | readonly string[];
  /** Largest difference, in seconds, between `webhook-timestamp` and now, either way (default 300: 5 minutes). */
  tolerance?: number;
  /** The current time in ms (default `Date.now()`). */
  now?: number;
}

/** Options of `verifyHookHmac()`. */
export interface VerifyHookHmacOptions {
  /** The secrets to accept, as given to the sender (used as they are); one match is enough. */
  secrets: string | readonly string[];
  /** The subscription's digest (default `'sha256'`). */
  digest?: HmacDigest | string;
}

/** Why a webhook was refused by `verifyStandardWebhook()` (never says which secret, nor the expected signature). */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

const DEFAULT_TOLERANCE = 300;

/**
 * Verifies a Standard Webhooks request against its raw body (the exact bytes received, e.g. NestJS's `req.rawBody`):
 * `webhook-id`, `webhook-timestamp` (within `tolerance` of now) and `webhook-signature` (any of its `v1,` signatures
 * made with any of `secrets`, compared in constant time). Returns the message id and timestamp (keep the id to drop
 * duplicates); throws `WebhookVerificationError` otherwise.
 */
export function verifyStandardWebhook(
  body: string | Buffer | Uint8Array,
  headers: WebhookHeaders,
  options: VerifyStandardWebhookOptions,
): { id: string; timestamp: Date } {
  const raw = rawBytes(body);
  const id = header(headers, 'webhook-id');
  const ts = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !ts || !signatures) {
    throw new WebhookVerificationError(
      'Missing webhook-id, webhook-timestamp or webhook-signature header: not a Standard Webhooks request',
    );
  }
  if (!/^\d{1,15}$/.test(ts)) throw new WebhookVerificationError('Invalid webhook-timestamp header');
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  const seconds = Number(ts);
  if (Math.abs(now - seconds) > tolerance) {
    throw new WebhookVerificationError(
      `webhook-timestamp is ${seconds < now ? 'too old' : 'too far in the future'} (tolerance ${tolerance} s)`,
    );
  }
  const given = signatures
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'latin1'));
  let ok = false;
  for (const secret of list(options.secrets)) {
    const want = Buffer.from(
      createHmac('sha256', standardWebhooksKey(secret)).update(`${id}.${ts}.`).update(raw).digest('base64'),
      'latin1',
    );
    // every comparison is made (no early exit that would tell which secret matched)
    for (const got of given) if (got.length === want.length && timingSafeEqual(got, want)) ok = true;
  }
  if (!ok) throw new WebhookVerificationError('No matching signature in webhook-signature');
  return { id, timestamp: new Date(seconds * 1000) };
}

/**
 * Verifies nestjs-thorn's `Hook-HMAC` header (the default `sign` signer: Base64 HMAC of the raw body with the secret
 * string as given) against any of `secrets`, in constant time. Returns whether one matches.
 */
export function verifyHookHmac(
  body: string | Buffer | Uint8Array,
  headers: WebhookHeaders,
  options: VerifyHookHmacOptions,
): boolean {
  const raw = rawBytes(body);
  const signature = header(headers, 'hook-hmac');
  if (!signature) return false;
  let ok = false;
  for (const secret of list(options.secrets)) {
    if (verify(signature, options.digest ?? 'sha256', secret, raw)) ok = true;
  }
  return ok;
}

function list(secrets: string | readonly string[]): string[] {
  const out = (typeof secrets === 'string' ? [secrets] : [...(secrets ?? [])]).filter(
    (s) => typeof s === 'string' && s !== '',
  );
  if (!out.length) throw new TypeError('secrets: pass at least one non-empty secret');
  return out;
}

function rawBytes(body: string | Buffer | Uint8Array): Buffer {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError(
    'body: pass the raw request body (a Buffer or string, e.g. req.rawBody with NestFactory.create(AppModule, { rawBody: true })), not the parsed JSON',
  );
}

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(n: string): string | null }).get(name) ?? undefined;
  }
  const h = headers as Record<string, string | string[] | undefined>;
  let v = h[name];
  if (v === undefined) {
    const key = Object.keys(h).find((k) => k.toLowerCase() === name);
    v = key === undefined ? undefined : h[key];
  }
  return Array.isArray(v) ? v[0] : v;
}
