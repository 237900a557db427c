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

/**
 * The parts of an axios instance the transport uses (an `AxiosInstance`, e.g. `HttpService.axiosRef` from
 * `@nestjs/axios`). Structural, so the package's types never need axios installed.
 */
export interface AxiosInstanceLike {
  request(config: Record<string, any>): Promise<unknown>;
  defaults?: Record<string, any>;
}

/** `transport` option: the built-in undici client, axios (loaded on demand), or your own axios instance. */
export type TransportOption = 'undici' | 'axios' | AxiosInstanceLike;

/** What the transport needs from the axios package. */
export interface AxiosModuleLike {
  create(config?: Record<string, any>): AxiosInstanceLike;
  getAdapter(name: string): (config: Record<string, any>) => Promise<any>;
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
  if (typeof axios?.create !== 'function' || typeof axios?.getAdapter !== 'function') {
    throw new Error(
      axiosMissingMessage('the installed "axios" has no create()/getAdapter(): use axios >= 1.7'),
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

/**
 * axios transport: every request goes through axios's Node http adapter with SSRF-safe agents (one lookup per
 * connection, every address validated, connection to the validated address). With your own instance its
 * interceptors and defaults apply, but proxy, agents, redirects, adapter and body handling are forced per request.
 */
export class AxiosTransport implements Transport {
  private readonly agentSets = new Map<RecipientValidator[], { keep: SafeAgents; close: SafeAgents }>();
  private readonly tls: SafeAgentTlsOptions;

  private constructor(
    private readonly instance: AxiosInstanceLike,
    private readonly httpAdapter: (config: Record<string, any>) => Promise<any>,
    private readonly options: TransportOptions,
  ) {
    this.tls = { ...inheritedTls(instance), ...(options.tls ?? {}) };
  }

  /** Loads axios and creates the transport over `instance` (default: a fresh `axios.create()`). */
  static async create(
    options: TransportOptions,
    instance?: AxiosInstanceLike,
    importer?: Importer,
  ): Promise<AxiosTransport> {
    const axios = await loadAxios(importer);
    return new AxiosTransport(instance ?? axios.create(), axios.getAdapter('http'), options);
  }

  private agentsFor(validators: RecipientValidator[], keepAlive: boolean): SafeAgents {
    let set = this.agentSets.get(validators);
    if (!set) {
      const base = { validators, lookup: this.options.lookup, tls: this.tls };
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
    // axios would answer data: URLs itself; like undici, only http(s) origins are requests.
    const protocol = new URL(req.url).protocol;
    if (protocol !== 'http:' && protocol !== 'https:') {
      throw Object.assign(new Error(`Cannot send to ${protocol} URLs: use http or https`), {
        name: 'InvalidArgumentError',
      });
    }
    const controller = new AbortController();
    const agents = this.agentsFor(req.validators, req.keepAlive);
    let answer: TransportResponse | undefined;

    // Runs after the instance's request interceptors, so nothing they change can undo these settings.
    const adapter = async (config: Record<string, any>) => {
      const res = await this.httpAdapter({
        ...config,
        ...safeSettings(agents, controller.signal),
        data: req.body, // the exact bytes that were signed
        headers: withHeaders(config.headers, req.headers),
      });
      const body = await readCapped(res.data, this.options.maxResponseBody);
      answer = { status: res.status, headers: plainHeaders(res.headers), body };
      return { ...res, data: body };
    };

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new DeliveryTimeoutError(req.url, req.timeout));
      }, req.timeout);
    });
    try {
      await Promise.race([
        this.instance.request({
          url: req.url,
          method: 'POST',
          headers: { ...req.headers },
          data: req.body,
          adapter,
          transformRequest: [(data: unknown) => data],
          transformResponse: [(data: unknown) => data],
          ...safeSettings(agents, controller.signal),
        }),
        timedOut,
      ]);
    } catch (err) {
      // A response interceptor that rejects (e.g. on non-2xx) does not change what the receiver answered.
      if (answer && !controller.signal.aborted) return answer;
      throw normaliseError(err, req, controller.signal.aborted);
    } finally {
      clearTimeout(timer);
    }
    if (!answer) {
      throw new Error(
        `The axios instance sent ${req.url} without nestjs-thorn's adapter (an interceptor replaced config.adapter): refusing it`,
      );
    }
    return answer;
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
    // Anything that would open connections outside the safe agents.
    socketPath: null,
    transport: undefined,
    lookup: undefined,
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

/** The request's headers over whatever the instance added, replacing any spelling of the same name. */
function withHeaders(existing: unknown, ours: Record<string, string>): Record<string, unknown> {
  const plain: Record<string, unknown> =
    existing && typeof (existing as { toJSON?: unknown }).toJSON === 'function'
      ? (existing as { toJSON(): Record<string, unknown> }).toJSON()
      : { ...((existing as Record<string, unknown>) ?? {}) };
  const names = new Set(Object.keys(ours).map((k) => k.toLowerCase()));
  for (const k of Object.keys(plain)) if (names.has(k.toLowerCase())) delete plain[k];
  return { ...plain, ...ours };
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
function normaliseError(err: unknown, req: TransportRequest, aborted: boolean): Error {
  if (aborted) return new DeliveryTimeoutError(req.url, req.timeout);
  const e = err as { name?: string; code?: string; cause?: unknown; isAxiosError?: boolean };
  // AxiosError copies the name of the error it wraps, so look at the cause first.
  const cause = e?.cause as { name?: string; code?: string } | undefined;
  if (cause?.name === 'SecurityError') return cause as Error;
  if (e?.name === 'SecurityError') return err as Error;
  if (e?.code === 'ECONNABORTED' || e?.code === 'ETIMEDOUT' || cause?.code === 'ETIMEDOUT') {
    return new DeliveryTimeoutError(req.url, req.timeout);
  }
  if (e?.isAxiosError && cause) return asError(cause);
  return asError(err);
}
