import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { messages } from '../messages.js';
import { HOOK_HEADERS } from '../thorn.constants.js';
import type { ResolvedThornOptions } from '../thorn-options.js';
import { observeAttempt, traceHttp } from '../telemetry/telemetry.js';
import { customHeaderProblem, encodeHeaderValue } from './headers.js';
import { asError, redactUrl } from './io.js';
import { PayloadError } from './payload-error.js';
import type { DeliveryEvent, DeliveryRequest, Recipient } from './request.js';
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

/** What the creator of a `DeliveryService` is told about (the module passes its own). */
export interface DeliveryHooks {
  /**
   * A stored subscription's receiver answered 410 Gone: the module deletes the subscription. Awaited before the
   * attempt's outcome is returned; a throw is logged.
   */
  onGone?: (subscriptionId: string, request: DeliveryRequest) => void | Promise<void>;
}

const EMPTY = Buffer.alloc(0);
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
      if (r.hmacSecret) {
        try {
          const signature: unknown = this.options.hmacSigner(r.hmacDigest, r.hmacSecret, body);
          if (typeof signature !== 'string' || !signature) {
            throw new TypeError(
              `the signer returned ${typeof signature === 'string' ? 'an empty string' : typeof signature}, not a signature string`,
            );
          }
          if (!SIGNATURE.test(signature)) {
            throw new TypeError('the signature holds characters outside printable ASCII');
          }
          request.headers[HOOK_HEADERS.hmac] = signature;
        } catch (err) {
          return {
            ...request,
            failure: new Error(`Signing failed for subscription ${r.id}: ${asError(err).message}`),
          };
        }
        if (this.options.standardWebhooks) {
          Object.assign(request.headers, {
            'webhook-id': id,
            'webhook-timestamp': timestamp,
            'webhook-signature': standardWebhooksSignature(id, timestamp, r.hmacSecret, body),
          });
        }
      }
      return request;
    });
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
    if (req.failure) return { verdict: { ok: false, retryable: false, gone: false }, error: req.failure };
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
        if (verdict.gone && req.source === 'stored') await this.gone(req);
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

  /** Tells the creator a stored subscription's receiver is gone; `attempt()` still never throws. */
  private async gone(req: DeliveryRequest): Promise<void> {
    if (!this.hooks.onGone) return;
    try {
      await this.hooks.onGone(req.subscription, req);
    } catch (err) {
      this.logger.error(`onGone for subscription ${req.subscription} threw: ${asError(err).message}`);
    }
  }
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
