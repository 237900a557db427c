import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { messages } from '../messages.js';
import { HOOK_HEADERS } from '../thorn.constants.js';
import type { ResolvedThornOptions } from '../thorn-options.js';
import { deliveryIds, logError, logLine } from '../telemetry/log-fields.js';
import { observeAttempt, traceHttp } from '../telemetry/telemetry.js';
import { customHeaderProblem, encodeHeaderValue } from './headers.js';
import { asError, redactUrl } from './io.js';
import { PayloadError } from './payload-error.js';
import type { DeliveryEvent, DeliveryRequest, Recipient, SigningKeys } from './request.js';
import { judgeError, judgeResponse, type AttemptVerdict } from './retry.js';
import { SecurityError } from './security-error.js';
import { standardWebhooksSignature } from './signing.js';
import type { Transport, TransportResponse } from './transport.js';

/** Result of one attempt of one delivery. */
export interface AttemptOutcome {
  verdict: AttemptVerdict;
  response?: TransportResponse;
  error?: Error;
}

/** An event's bodies per content type, encoded once: the bytes, or why that content type cannot be encoded. */
export type EncodedBodies = Map<string, Buffer | Error>;

/** How `prepare()` builds an event's requests. */
export interface PrepareOptions {
  /**
   * The delivery id (`Hook-Delivery`, and the Standard Webhooks `webhook-id` it signs) of each recipient's request,
   * called once per recipient, in order. Default: a random UUID. The bull dispatcher derives stable ids from the event.
   */
  idFor?: (recipient: Recipient, index: number) => string;
  /** Bodies already encoded (`jsonBody()`); the ones `prepare()` encodes are added. */
  bodies?: EncodedBodies;
}

/** What the creator of a `DeliveryService` is told about and asked for (the module passes its own). */
export interface DeliveryHooks {
  /**
   * A delivery ended (`DeliveryService.finished()`): it succeeded, or failed after its last attempt (410 Gone, a final
   * error, retries exhausted). The module updates the stored subscription's health (failure streak, auto-disable,
   * 410 → disabled). Awaited by `finished()`; a throw is logged.
   */
  onFinished?: (request: DeliveryRequest, outcome: AttemptOutcome) => void | Promise<void>;
  /**
   * The current secrets of a request's subscription, asked by `attempt()` when the request carries none (rebuilt from
   * a queue job, which never holds a secret) and before every retry of a stored subscription's request (a rotation may
   * have happened meanwhile). `null`: the subscription no longer exists (the attempt fails, nothing is sent);
   * `undefined`: unknown here (the request is sent as prepared). A throw fails the attempt as retryable.
   */
  signingKeys?: (request: DeliveryRequest) => Promise<SigningKeys | null | undefined>;
}

const EMPTY = Buffer.alloc(0);
const FINAL = { ok: false, retryable: false, gone: false } as const;
const JSON_TYPE = 'application/json';
// A signature goes in a header as it is: printable ASCII, no white space at either end.
const SIGNATURE = /^[!-~](?:[ -~]*[!-~])?$/;

// Headers a caller may not set: ours, and the ones the HTTP client owns.
const RESERVED = new Set(
  [
    ...Object.values(HOOK_HEADERS),
    'content-type',
    'content-length',
    'host',
    'connection',
    'transfer-encoding',
    'keep-alive',
    'upgrade',
    'expect',
    'webhook-id',
    'webhook-timestamp',
    'webhook-signature',
  ].map((h) => h.toLowerCase()),
);

/**
 * The delivery pipeline shared by every dispatcher: one signed request per recipient (recipients come from
 * `RecipientResolver`), and one attempt of a request (following redirects only when allowed).
 */
export class DeliveryService {
  private readonly logger = new Logger('Thorn');
  private readonly userAgent: string;

  constructor(
    readonly options: ResolvedThornOptions,
    readonly transport: Transport,
    private readonly hooks: DeliveryHooks = {},
  ) {
    // lone surrogates (which no header can carry) become U+FFFD
    this.userAgent = encodeHeaderValue(options.userAgent.replace(/\p{Cs}/gu, '\uFFFD'));
  }

  /**
   * Encodes the event's JSON body (the payload as such) and throws a `PayloadError` when it is over `maxPayloadSize`:
   * `send()` then fails before any request, as with the bull dispatcher. Pass the result to `prepare()`, which reuses
   * the bytes.
   */
  jsonBody(env: Pick<DeliveryEvent, 'name' | 'body'>): EncodedBodies {
    const bodies: EncodedBodies = new Map();
    if (!this.options.codecs[JSON_TYPE]) return bodies;
    const json = this.encode(env, JSON_TYPE);
    if (Buffer.isBuffer(json) && json.length > this.options.maxPayloadSize) {
      throw new PayloadError(messages.payloadTooLarge(env.name, json.length, this.options.maxPayloadSize));
    }
    bodies.set(JSON_TYPE, json);
    return bodies;
  }

  /**
   * Builds one request per recipient, in order; the body is encoded once per content type and signed over those
   * bytes, each request under its final id (`idFor`). Never throws: a recipient whose request cannot be built (no
   * codec, a codec that fails, a body over `maxPayloadSize`, a signer that throws, a header that cannot be sent) gets a
   * request with `failure` set, and only it fails.
   */
  prepare(env: DeliveryEvent, recipients: Recipient[], options: PrepareOptions = {}): DeliveryRequest[] {
    const bodies = options.bodies ?? new Map<string, Buffer | Error>();
    const idFor = options.idFor ?? randomId;
    const extra: Record<string, string> = {};
    let headerFailure: Error | undefined;
    for (const [k, v] of Object.entries(env.headers)) {
      if (RESERVED.has(k.toLowerCase()) || v === undefined || v === null) continue;
      extra[k] = String(v);
      const problem = customHeaderProblem(k, extra[k]);
      if (problem) headerFailure ??= new Error(problem);
    }
    const timestamp = String(Math.floor(Date.now() / 1000));
    let eventHeader: string | undefined;
    try {
      eventHeader = encodeHeaderValue(env.name);
    } catch {
      headerFailure ??= new PayloadError(messages.malformedName(env.name));
    }
    return recipients.map((r, i) => {
      const id = idFor(r, i);
      const request: DeliveryRequest = {
        id,
        event: env.name,
        subscription: r.id,
        url: r.url,
        contentType: r.contentType,
        headers: {},
        body: EMPTY,
        settings: env.settings,
        keepAlive: env.keepAlive,
        attempts: 0,
        source: r.source,
        validators: env.validators,
      };
      if (headerFailure) return { ...request, failure: headerFailure };
      let body = bodies.get(r.contentType);
      if (!body) {
        body = this.encode(env, r.contentType);
        bodies.set(r.contentType, body);
      }
      if (!Buffer.isBuffer(body)) return { ...request, failure: body };
      if (body.length > this.options.maxPayloadSize) {
        // e.g. a form body, which can be three times the JSON: only this content type's recipients are too large
        return {
          ...request,
          failure: new PayloadError(
            messages.payloadTooLargeFor(env.name, r.contentType, body.length, this.options.maxPayloadSize),
          ),
        };
      }
      let subscriptionHeader: string;
      try {
        subscriptionHeader = encodeHeaderValue(r.id);
      } catch {
        return { ...request, failure: new Error(messages.malformedSubscriptionId()) };
      }
      request.body = body;
      request.headers = {
        'Content-Type': r.contentType,
        'User-Agent': this.userAgent,
        ...extra,
        [HOOK_HEADERS.event]: eventHeader!,
        [HOOK_HEADERS.delivery]: id,
        [HOOK_HEADERS.subscription]: subscriptionHeader,
      };
      request.failing = r.failing;
      if (r.hmacSecret) {
        const keys: SigningKeys = {
          secret: r.hmacSecret,
          digest: r.hmacDigest,
          previous: r.previousHmacSecret ?? null,
          previousExpiresAt: r.previousHmacSecretExpiresAt ?? null,
        };
        const failure = this.sign(request, keys, timestamp, true);
        if (failure) return { ...request, failure };
        holdKeys(request, keys);
      } else {
        holdKeys(request, null);
      }
      return request;
    });
  }

  /**
   * Sets the signature headers of `req` for `keys`: `Hook-HMAC` (with `hmac`) with the current secret as given, and with
   * `standardWebhooks` the `webhook-*` headers for `timestamp`, signed with the current secret and a rotated-out one
   * whose grace period has not ended. Returns why it could not (a signer that throws or returns no usable string).
   */
  private sign(req: DeliveryRequest, keys: SigningKeys, timestamp: string, hmac: boolean): Error | undefined {
    if (hmac) {
      try {
        const signature: unknown = this.options.hmacSigner(keys.digest, keys.secret, req.body);
        if (typeof signature !== 'string' || !signature) {
          throw new TypeError(
            `the signer returned ${typeof signature === 'string' ? 'an empty string' : typeof signature}, not a signature string`,
          );
        }
        if (!SIGNATURE.test(signature)) {
          throw new TypeError('the signature holds characters outside printable ASCII');
        }
        req.headers[HOOK_HEADERS.hmac] = signature;
      } catch (err) {
        // a signer's error text must not carry the secret into logs and the ledger
        return new Error(
          `Signing failed for subscription ${req.subscription}: ${withoutSecrets(asError(err).message, keys)}`,
        );
      }
    }
    if (this.options.standardWebhooks) {
      req.headers['webhook-id'] = req.id;
      req.headers['webhook-timestamp'] = timestamp;
      req.headers['webhook-signature'] = standardWebhooksSignature(
        req.id,
        timestamp,
        validSecrets(keys, Date.now()),
        req.body,
      );
    }
    return undefined;
  }

  /**
   * Signs an attempt afresh: re-reads the secrets when the request has none or is a retry of a stored subscription's
   * (`signingKeys` hook), then with `standardWebhooks` a new `webhook-timestamp` and `webhook-signature` (same
   * `webhook-id` and body). Returns an outcome only when the attempt must not be made.
   */
  private signAttempt(
    req: DeliveryRequest,
  ): AttemptOutcome | undefined | Promise<AttemptOutcome | undefined> {
    const keys = req.keys;
    const hook = this.hooks.signingKeys;
    const signed =
      keys !== null &&
      (keys !== undefined ||
        req.headers[HOOK_HEADERS.hmac] !== undefined ||
        req.headers['webhook-signature'] !== undefined);
    if (hook && signed && (keys === undefined || (req.source === 'stored' && req.attempts > 1))) {
      return this.signWithCurrentKeys(req, keys, hook);
    }
    // a first attempt with the keys it was prepared with: nothing to read, no promise
    return this.resign(req, keys, false);
  }

  /** `signAttempt()` with the secrets read again through the `signingKeys` hook. */
  private async signWithCurrentKeys(
    req: DeliveryRequest,
    keys: SigningKeys | null | undefined,
    hook: NonNullable<DeliveryHooks['signingKeys']>,
  ): Promise<AttemptOutcome | undefined> {
    let current: SigningKeys | null | undefined;
    try {
      current = await hook(req);
    } catch (err) {
      const error = new Error(
        `Could not read the secret of subscription ${req.subscription}: ${asError(err).message}`,
      );
      return { verdict: { ok: false, retryable: true, gone: false }, error };
    }
    if (current === null) {
      return { verdict: FINAL, error: new Error(messages.subscriptionVanished(req.subscription)) };
    }
    if (!current) return this.resign(req, keys, false);
    holdKeys(req, current);
    return this.resign(req, current, true);
  }

  /**
   * Signs again when the keys are `fresh` (read now), or with `standardWebhooks` when the timestamp or the rotated-out
   * secret's grace period changed since the request was signed.
   */
  private resign(
    req: DeliveryRequest,
    keys: SigningKeys | null | undefined,
    fresh: boolean,
  ): AttemptOutcome | undefined {
    if (!keys) return undefined;
    if (!fresh && !this.options.standardWebhooks) return undefined;
    const timestamp = String(Math.floor(Date.now() / 1000));
    const stale =
      fresh ||
      req.headers['webhook-timestamp'] !== timestamp ||
      (keys.previous && keys.previousExpiresAt && new Date(keys.previousExpiresAt).getTime() <= Date.now());
    if (!stale) return undefined;
    const failure = this.sign(req, keys, timestamp, fresh);
    return failure ? { verdict: FINAL, error: failure } : undefined;
  }

  /**
   * Reports that a delivery ended: it succeeded, or it failed after its last attempt (410 Gone, an error that is not
   * retried, retries exhausted or off). Every dispatcher calls it exactly once per delivery, when it ends (never for an
   * attempt that is retried). Passes it to the `onFinished` hook (the module's health tracking) and then drops the
   * request's secrets from memory. Never throws: a failing hook is logged.
   */
  async finished(request: DeliveryRequest, outcome: AttemptOutcome): Promise<void> {
    await this.end(request, outcome);
  }

  /**
   * `finished()` for the dispatchers: a promise only while the `onFinished` hook is still working (no hook, or one
   * that answered at once, as for a static subscriber: nothing to wait for on the delivery's path). Never rejects.
   */
  end(request: DeliveryRequest, outcome: AttemptOutcome): Promise<void> | undefined {
    const hook = this.hooks.onFinished;
    let pending: void | Promise<void> = undefined;
    try {
      pending = hook?.(request, outcome);
    } catch (err) {
      this.endFailed(request, err);
    }
    if (!pending) {
      forgetKeys(request);
      return undefined;
    }
    return Promise.resolve(pending).then(
      () => forgetKeys(request),
      (err: unknown) => {
        this.endFailed(request, err);
        forgetKeys(request);
      },
    );
  }

  private endFailed(request: DeliveryRequest, err: unknown): void {
    this.logger.error(
      logLine(`Recording the end of a delivery failed: ${logError(err)}`, deliveryIds(request)),
    );
  }

  /** The body for one content type, or why it cannot be encoded (size is checked by the caller). */
  private encode(env: Pick<DeliveryEvent, 'body'>, contentType: string): Buffer | Error {
    const codec = this.options.codecs[contentType];
    if (!codec) return new PayloadError(messages.noCodec(contentType));
    try {
      const encoded = codec(env.body);
      if (typeof encoded !== 'string' && !Buffer.isBuffer(encoded))
        throw new TypeError('it returned neither a string nor a Buffer');
      return typeof encoded === 'string' ? Buffer.from(encoded) : encoded;
    } catch (err) {
      // a broken codec fails the recipients of its content type only
      return new PayloadError(messages.codecFailed(contentType, asError(err).message));
    }
  }

  /**
   * Makes one attempt; never throws: the outcome says whether it worked and whether to retry. With `allowRedirects`,
   * 301/302/303/307/308 answers are followed up to `maxRedirects` hops, each re-sending the same POST (same body,
   * same headers; only the generated ones once the origin changes) through the transport, which validates every
   * hop's address like the first. A redirect from https to http, or to a non-http(s) URL, is refused.
   */
  attempt(req: DeliveryRequest): Promise<AttemptOutcome> {
    return observeAttempt(req, () => this.attemptOnce(req));
  }

  private async attemptOnce(req: DeliveryRequest): Promise<AttemptOutcome> {
    req.attempts++;
    if (req.failure) return { verdict: FINAL, error: req.failure };
    const signing = this.signAttempt(req);
    const refused = signing instanceof Promise ? await signing : signing;
    if (refused) return refused;
    const validators = req.validators ?? this.options.recipientValidators;
    let url = req.url;
    let headers = req.headers;
    try {
      for (let hop = 0; ; hop++) {
        const trace = {
          url,
          resendCount: req.attempts - 1 + hop,
          event: req.event,
          delivery: req.id,
          subscription: req.subscription,
          propagate: this.options.propagateTraceContext,
        };
        const response = await traceHttp(trace, headers, (sent) =>
          this.transport.send({
            url,
            headers: sent,
            body: req.body,
            timeout: req.settings.timeout,
            validators,
            keepAlive: req.keepAlive,
          }),
        );
        req.status = response.status;
        if (REDIRECTS.has(response.status) && this.options.allowRedirects) {
          const next = redirectTarget(url, response.headers.location);
          if (next && hop < this.options.maxRedirects) {
            const refused = refusedRedirect(url, next);
            if (refused) {
              throw new SecurityError(
                `Recipient blocked: ${originOf(url)} redirected to ${next.protocol}//${next.host}, ${refused}`,
                { url: `${next.protocol}//${next.host}`, rule: `redirect: ${refused}` },
              );
            }
            if (next.origin !== new URL(req.url).origin) {
              headers = { ...generatedOnly(req.headers), 'User-Agent': this.userAgent };
            }
            url = next.href;
            continue;
          }
        }
        const verdict = judgeResponse(response);
        return {
          verdict,
          response,
          error: verdict.ok ? undefined : new Error(failureText(req.url, url, response, this.options)),
        };
      }
    } catch (err) {
      const error = asError(err);
      return { verdict: judgeError(error), error };
    }
  }
}

/** Puts the secrets on a request as a non-enumerable property: a logged or serialised request never shows them. */
function holdKeys(req: DeliveryRequest, keys: SigningKeys | null | undefined): void {
  // once defined (non-enumerable, writable), a plain assignment keeps it so
  if (Object.hasOwn(req, 'keys')) req.keys = keys;
  else
    Object.defineProperty(req, 'keys', {
      value: keys,
      writable: true,
      configurable: true,
      enumerable: false,
    });
}

/** Drops a finished request's secrets from memory. */
function forgetKeys(req: DeliveryRequest): void {
  if (req.keys) req.keys = undefined;
}

/** The current secret, then the previous one while its grace period lasts (never once it has ended). */
function validSecrets(keys: SigningKeys, now: number): string[] {
  const previous = keys.previous;
  const until = keys.previousExpiresAt ? new Date(keys.previousExpiresAt).getTime() : 0;
  return previous && previous !== keys.secret && until > now ? [keys.secret, previous] : [keys.secret];
}

function randomId(): string {
  return randomUUID();
}

// Statuses that carry a Location to follow (300, 304 and 305 do not).
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
// What is still sent after a redirect to another origin: the headers nestjs-thorn generates (and its own User-Agent).
// Custom headers (`webhookHeaders()`, `send({ headers })`) are dropped: an API key or token is meant for the
// subscriber's origin, and the other origin was chosen by whoever answered the first request.
const GENERATED_HEADERS = new Set(
  [
    ...Object.values(HOOK_HEADERS),
    'content-type',
    'webhook-id',
    'webhook-timestamp',
    'webhook-signature',
  ].map((h) => h.toLowerCase()),
);

function redirectTarget(from: string, location: string | string[] | undefined): URL | null {
  const value = Array.isArray(location) ? location[0] : location;
  if (!value) return null;
  try {
    return new URL(value, from);
  } catch {
    return null;
  }
}

/** Why a redirect may not be followed whatever the validators say: a scheme change away from http(s) or to http. */
function refusedRedirect(from: string, to: URL): string | null {
  if (to.protocol !== 'http:' && to.protocol !== 'https:')
    return `a ${to.protocol} URL (only http and https)`;
  if (new URL(from).protocol === 'https:' && to.protocol !== 'https:') return 'a downgrade from https';
  return null;
}

function generatedOnly(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => GENERATED_HEADERS.has(k.toLowerCase())));
}

function originOf(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}

/**
 * The warning every dispatcher logs when a delivery ends without success (after its last attempt): why, and which
 * event, delivery and subscription it was (see `logLine`).
 */
export function deliveryFailedLog(req: DeliveryRequest, outcome: AttemptOutcome): string {
  const why = outcome.error
    ? logError(outcome.error)
    : outcome.response
      ? `answered ${outcome.response.status}`
      : 'no answer';
  return logLine(`Delivery failed after ${req.attempts} attempt(s): ${why}`, {
    ...deliveryIds(req),
    url: req.url,
  });
}

/** `text` with every secret of `keys` in it replaced by `[secret]`. */
function withoutSecrets(text: string, keys: SigningKeys): string {
  let out = text;
  for (const secret of [keys.secret, keys.previous]) {
    if (secret) out = out.split(secret).join('[secret]');
  }
  return out;
}

function failureText(
  first: string,
  last: string,
  res: TransportResponse,
  o: Pick<ResolvedThornOptions, 'allowRedirects' | 'maxRedirects'>,
): string {
  const where = last === first ? redactUrl(first) : `${redactUrl(first)} (redirected to ${redactUrl(last)})`;
  if (REDIRECTS.has(res.status) || (res.status >= 300 && res.status < 400)) {
    const why = !o.allowRedirects
      ? 'redirects are not followed: allowRedirects is off'
      : redirectTarget(last, res.headers.location)
        ? `more than maxRedirects (${o.maxRedirects}) redirects`
        : 'no usable Location header';
    return `${where} answered ${res.status} (${why})`;
  }
  return `${where} answered ${res.status}`;
}
