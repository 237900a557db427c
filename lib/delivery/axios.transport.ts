import { asError, readCapped } from './io.js';
import { createSafeAgents, type SafeAgents, type SafeAgentTlsOptions } from './safe-agent.js';
import {
  DeliveryTimeoutError,
  type Transport,
  type TransportOptions,
  type TransportRequest,
  type TransportResponse,
} from './transport.js';
import type { RecipientValidator } from './validators.js';

/** One `use()` of an axios interceptor manager. */
interface InterceptorLike {
  fulfilled?: ((value: any) => any) | null;
  rejected?: ((error: any) => any) | null;
  synchronous?: boolean;
  runWhen?: ((config: any) => boolean) | null;
}

/**
 * The parts of an axios instance the transport uses (an `AxiosInstance`, e.g. `HttpService.axiosRef` from
 * `@nestjs/axios`): its defaults and interceptors. Its `request()` is never called: the transport dispatches every
 * request itself. Structural, so the package's types never need axios installed.
 */
export interface AxiosInstanceLike {
  request(config: Record<string, any>): Promise<unknown>;
  defaults?: Record<string, any>;
  /** `request` and `response` interceptor managers (their `forEach` is axios's, though not in its types). */
  interceptors?: { request?: unknown; response?: unknown };
}

/** Calls `fn` for every interceptor `use()`d on an axios interceptor manager (skipping ejected ones). */
function eachInterceptor(manager: unknown, fn: (h: InterceptorLike) => void): void {
  const forEach = (manager as { forEach?: unknown } | undefined)?.forEach;
  if (typeof forEach !== 'function') return;
  forEach.call(manager, (h: InterceptorLike | null) => {
    if (h) fn(h);
  });
}

/** `transport` option: the built-in undici client, axios (loaded on demand), or your own axios instance. */
export type TransportOption = 'undici' | 'axios' | AxiosInstanceLike;

/** What the transport needs from the axios package. */
export interface AxiosModuleLike {
  create(config?: Record<string, any>): AxiosInstanceLike;
  getAdapter(name: string): (config: Record<string, any>) => Promise<any>;
  mergeConfig(defaults: Record<string, any>, config: Record<string, any>): Record<string, any>;
  AxiosHeaders: { from(headers: unknown): any; concat(...headers: unknown[]): any };
}

type Importer = () => Promise<unknown>;

/** Error text when axios is selected but cannot be loaded. */
export const axiosMissingMessage = (cause: string) =>
  `ThornModule option "transport" needs the optional package "axios": npm install axios (${cause})`;

/** Loads axios with a dynamic `import()`, only when an axios transport is created. */
export async function loadAxios(importer: Importer = () => import('axios')): Promise<AxiosModuleLike> {
  let mod: any;
  try {
    mod = await importer();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (
      e?.code === 'ERR_MODULE_NOT_FOUND' ||
      e?.code === 'MODULE_NOT_FOUND' ||
      /Cannot find/.test(e?.message)
    ) {
      throw new Error(axiosMissingMessage(e.message), { cause: err });
    }
    throw err;
  }
  const axios = (mod?.default ?? mod) as Partial<AxiosModuleLike>;
  if (
    typeof axios?.create !== 'function' ||
    typeof axios?.getAdapter !== 'function' ||
    typeof axios?.mergeConfig !== 'function' ||
    typeof axios?.AxiosHeaders?.from !== 'function'
  ) {
    throw new Error(
      axiosMissingMessage(
        'the installed "axios" has no create()/getAdapter()/mergeConfig(): use axios >= 1.7',
      ),
    );
  }
  return axios as AxiosModuleLike;
}

// Agents kept per validator list; lists beyond this (e.g. a new array per send()) evict the oldest.
const MAX_AGENT_SETS = 32;
// TLS trust/identity carried over from a user instance's httpsAgent; its connection handling never is.
const TLS_CARRY_OVER = [
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'ciphers',
  'minVersion',
  'maxVersion',
] as const;

// Header buckets of axios defaults (`headers.common`, `headers.post`, ...), flattened away as axios does.
const HEADER_BUCKETS = ['get', 'delete', 'head', 'options', 'post', 'put', 'patch', 'common'];

/**
 * axios transport: every request goes through axios's Node http adapter with SSRF-safe agents (one lookup per
 * connection, every address validated, connection to the validated address). With your own instance its defaults
 * and interceptors apply, but the transport runs the interceptors and calls the http adapter itself, never
 * `instance.request()`: nothing in the instance's config or interceptors can pick another adapter, transport, proxy,
 * agent, URL, method or body, so no connection is made outside the validating agents.
 */
export class AxiosTransport implements Transport {
  private readonly agentSets = new Map<RecipientValidator[], { keep: SafeAgents; close: SafeAgents }>();
  private readonly tls: SafeAgentTlsOptions;
  private readonly httpAdapter: (config: Record<string, any>) => Promise<any>;

  private constructor(
    private readonly instance: AxiosInstanceLike,
    private readonly axios: AxiosModuleLike,
    private readonly options: TransportOptions,
  ) {
    this.httpAdapter = axios.getAdapter('http');
    this.tls = { ...inheritedTls(instance), ...(options.tls ?? {}) };
  }

  /** Loads axios and creates the transport over `instance` (default: a fresh `axios.create()`). */
  static async create(
    options: TransportOptions,
    instance?: AxiosInstanceLike,
    importer?: Importer,
  ): Promise<AxiosTransport> {
    const axios = await loadAxios(importer);
    return new AxiosTransport(instance ?? axios.create(), axios, options);
  }

  private agentsFor(validators: RecipientValidator[], keepAlive: boolean): SafeAgents {
    let set = this.agentSets.get(validators);
    if (!set) {
      const base = {
        validators,
        lookup: this.options.lookup,
        tls: this.tls,
        maxSockets: this.options.maxConnections,
      };
      set = { keep: createSafeAgents(base), close: createSafeAgents({ ...base, keepAlive: false }) };
      this.agentSets.set(validators, set);
      if (this.agentSets.size > MAX_AGENT_SETS) {
        // Idle sockets of the evicted agents close on their idle timeout; in-flight requests finish.
        this.agentSets.delete(this.agentSets.keys().next().value!);
      }
    }
    return keepAlive ? set.keep : set.close;
  }

  async send(req: TransportRequest): Promise<TransportResponse> {
    const target = new URL(req.url);
    // axios would answer data: URLs itself; like undici, only http(s) origins are requests.
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      throw Object.assign(new Error(`Cannot send to ${target.protocol} URLs: use http or https`), {
        name: 'InvalidArgumentError',
      });
    }
    const authorization = basicAuthFromUrl(target);
    target.username = '';
    target.password = '';
    const url = target.href;

    const controller = new AbortController();
    const forced = safeSettings(this.agentsFor(req.validators, req.keepAlive), controller.signal);
    // The only adapter: forces the safe settings on whatever config it gets. It is also the `adapter` of the config
    // interceptors see, so a config they hand back to axios themselves still goes through the safe agents.
    const adapter = async (config: Record<string, any>) => {
      const res = await this.httpAdapter({ ...config, ...forced, adapter });
      return { ...res, data: await readCapped(res.data, this.options.maxResponseBody) };
    };

    const exchange = async (): Promise<TransportResponse> => {
      // What axios's request() does before its interceptors: defaults merged, header buckets flattened.
      const merged = this.axios.mergeConfig(this.instance.defaults ?? {}, {
        url,
        method: 'post',
        headers: { ...req.headers },
        data: req.body,
        adapter,
        transformRequest: [(data: unknown) => data],
        transformResponse: [(data: unknown) => data],
        ...forced,
      });
      merged.method = 'post';
      merged.headers = this.flatHeaders(merged.headers);

      const config: unknown = await this.runRequestInterceptors(merged);
      if (!config || typeof config !== 'object') {
        throw new TypeError('A request interceptor of the axios instance did not return a config');
      }
      // As axios's dispatchRequest: headers normalised, a default Content-Type for a body.
      const headers = this.axios.AxiosHeaders.from((config as Record<string, unknown>).headers);
      headers.setContentType?.('application/x-www-form-urlencoded', false);
      const final: Record<string, any> = {
        ...config,
        // The recipient, method, exact signed body and Hook-* headers are nestjs-thorn's, whatever the interceptors did.
        url,
        baseURL: undefined,
        allowAbsoluteUrls: true,
        method: 'post',
        data: req.body,
        headers: withHeaders(headers, req.headers, authorization),
        ...forced,
        adapter,
      };
      const res = await adapter(final);
      const answer: TransportResponse = {
        status: res.status,
        headers: plainHeaders(res.headers),
        body: res.data,
      };
      // Response interceptors see the answer (and may log or throw), but what the receiver said is the outcome.
      await this.runResponseInterceptors({
        ...res,
        headers: this.axios.AxiosHeaders.from(res.headers),
        config: final,
      }).catch(() => undefined);
      return answer;
    };

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new DeliveryTimeoutError(url, req.timeout));
      }, req.timeout);
    });
    try {
      return await Promise.race([exchange(), timedOut]);
    } catch (err) {
      throw normaliseError(err, url, req.timeout, controller.signal.aborted);
    } finally {
      clearTimeout(timer);
    }
  }

  /** `headers.common` and `headers.post` of the defaults merged under the request's own, as axios does. */
  private flatHeaders(headers: unknown): unknown {
    const all: Record<string, unknown> = { ...((headers as Record<string, unknown>) ?? {}) };
    const bucket = (name: string) => (isBucket(all[name]) ? all[name] : undefined);
    const common = bucket('common');
    const post = bucket('post');
    for (const name of HEADER_BUCKETS) if (isBucket(all[name])) delete all[name];
    return this.axios.AxiosHeaders.concat(common, post, all);
  }

  /**
   * The instance's request interceptors, with axios's semantics: `runWhen` checked on the merged config, last
   * registered runs first (or first registered first with `transitional.legacyInterceptorReqResOrdering: false`),
   * and run synchronously (a throwing handler goes to its own `rejected`) only when every one is `synchronous`;
   * otherwise as a promise chain.
   */
  private runRequestInterceptors(config: Record<string, any>): unknown {
    const chain: InterceptorLike[] = [];
    let synchronous = true;
    eachInterceptor(this.instance.interceptors?.request, (h) => {
      if (typeof h.runWhen === 'function' && h.runWhen(config) === false) return;
      synchronous = synchronous && Boolean(h.synchronous);
      const legacy = config.transitional?.legacyInterceptorReqResOrdering !== false;
      if (legacy) chain.unshift(h);
      else chain.push(h);
    });
    if (!synchronous) {
      let promise: Promise<unknown> = Promise.resolve(config);
      for (const h of chain) promise = promise.then(h.fulfilled ?? undefined, h.rejected ?? undefined);
      return promise;
    }
    let current: unknown = config;
    for (const h of chain) {
      try {
        current = h.fulfilled ? h.fulfilled(current) : current;
      } catch (err) {
        if (!h.rejected) throw err;
        const handled: unknown = h.rejected(err);
        if (isThenable(handled)) {
          const last = current;
          return Promise.resolve(handled).then(() => last);
        }
        break;
      }
    }
    return current;
  }

  /**
   * The instance's response interceptors, in registration order, on a received answer. Transport errors (a blocked
   * address, a refused connection) never reach them: a retrying interceptor would re-send outside this transport.
   */
  private runResponseInterceptors(response: Record<string, unknown>): Promise<unknown> {
    let promise: Promise<unknown> = Promise.resolve(response);
    eachInterceptor(this.instance.interceptors?.response, (h) => {
      promise = promise.then(h.fulfilled ?? undefined, h.rejected ?? undefined);
    });
    return promise;
  }

  async close(): Promise<void> {
    for (const set of this.agentSets.values()) {
      set.keep.destroy();
      set.close.destroy();
    }
    this.agentSets.clear();
  }
}

/** Settings that keep a request on the validated path, whatever the instance's defaults or interceptors say. */
function safeSettings(agents: SafeAgents, signal: AbortSignal): Record<string, unknown> {
  return {
    httpAgent: agents.http,
    httpsAgent: agents.https,
    // A proxy would be connected to instead of the recipient, so the recipient's address could not be validated.
    proxy: false,
    // Redirects are followed (or not) by DeliveryService, which validates every hop.
    maxRedirects: 0,
    beforeRedirect: undefined,
    // An instance's credentials and query parameters belong to whatever API it was made for, never to a subscriber's
    // URL (axios would also let `auth` replace the delivery's own Authorization header).
    auth: undefined,
    params: undefined,
    paramsSerializer: undefined,
    // Anything that would open connections outside the safe agents.
    socketPath: null,
    transport: undefined,
    lookup: undefined,
    family: undefined,
    httpVersion: 1,
    http2Options: undefined,
    validateStatus: () => true,
    // The body is read as a stream and capped by the transport; axios never buffers it.
    responseType: 'stream',
    maxContentLength: -1,
    maxBodyLength: -1,
    // The transport's own timer covers connect + response; axios's socket-idle timeout would not.
    timeout: 0,
    signal,
    cancelToken: undefined,
  };
}

/**
 * The request's headers over whatever the instance added, replacing any spelling of the same name; then, when the
 * request has no Authorization of its own, the URL's credentials (as the undici transport does).
 */
function withHeaders(
  existing: unknown,
  ours: Record<string, string>,
  urlAuthorization: string | undefined,
): Record<string, unknown> {
  const plain: Record<string, unknown> =
    existing && typeof (existing as { toJSON?: unknown }).toJSON === 'function'
      ? (existing as { toJSON(): Record<string, unknown> }).toJSON()
      : { ...((existing as Record<string, unknown>) ?? {}) };
  const names = new Set(Object.keys(ours).map((k) => k.toLowerCase()));
  if (urlAuthorization && !names.has('authorization')) names.add('authorization');
  else urlAuthorization = undefined;
  for (const k of Object.keys(plain)) if (names.has(k.toLowerCase())) delete plain[k];
  return { ...plain, ...ours, ...(urlAuthorization && { Authorization: urlAuthorization }) };
}

/** `Basic base64(user:password)` from a URL's userinfo (percent-decoded, as axios and Python requests do). */
function basicAuthFromUrl(url: URL): string | undefined {
  if (!url.username && !url.password) return undefined;
  const decoded = `${safeDecode(url.username)}:${safeDecode(url.password)}`;
  return `Basic ${Buffer.from(decoded, 'utf8').toString('base64')}`;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function isBucket(value: unknown): boolean {
  if (value == null) return true;
  if (typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return (
    proto === null ||
    proto === Object.prototype ||
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  );
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function plainHeaders(headers: unknown): Record<string, string | string[] | undefined> {
  const src =
    headers && typeof (headers as { toJSON?: unknown }).toJSON === 'function'
      ? (headers as { toJSON(): Record<string, unknown> }).toJSON()
      : ((headers as Record<string, unknown>) ?? {});
  const out: Record<string, string | string[] | undefined> = {};
  for (const [k, v] of Object.entries(src)) {
    out[k.toLowerCase()] = Array.isArray(v) ? v.map(String) : v == null ? undefined : String(v);
  }
  return out;
}

function inheritedTls(instance: AxiosInstanceLike): SafeAgentTlsOptions {
  const agentOptions = (instance.defaults?.httpsAgent as { options?: Record<string, unknown> } | undefined)
    ?.options;
  const out: Record<string, unknown> = {};
  for (const k of TLS_CARRY_OVER) if (agentOptions?.[k] !== undefined) out[k] = agentOptions[k];
  return out as SafeAgentTlsOptions;
}

/** axios wraps every failure in an AxiosError; callers get the same errors as from the undici transport. */
function normaliseError(err: unknown, url: string, timeout: number, aborted: boolean): Error {
  if (aborted) return new DeliveryTimeoutError(url, timeout);
  const e = err as { name?: string; code?: string; cause?: unknown; isAxiosError?: boolean };
  // AxiosError copies the name of the error it wraps, so look at the cause first.
  const cause = e?.cause as { name?: string; code?: string } | undefined;
  if (cause?.name === 'SecurityError') return cause as Error;
  if (e?.name === 'SecurityError') return err as Error;
  if (e?.code === 'ECONNABORTED' || e?.code === 'ETIMEDOUT' || cause?.code === 'ETIMEDOUT') {
    return new DeliveryTimeoutError(url, timeout);
  }
  if (e?.isAxiosError && cause) return asError(cause);
  return asError(err);
}
