import { Agent } from 'undici';
import { createSafeConnector } from './safe-connect.js';
import {
  DeliveryTimeoutError,
  type Transport,
  type TransportOptions,
  type TransportRequest,
  type TransportResponse,
} from './transport.js';
import type { RecipientValidator } from './validators.js';

// Pools kept per validator list; beyond this the oldest is closed.
const MAX_AGENTS = 32;
const MAX_CACHED_URLS = 10_000;
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * undici transport: one keep-alive `Agent` (a connection pool per origin) per validator list, with a connector that
 * resolves each host once, validates every address and connects to the validated one.
 */
export class UndiciTransport implements Transport {
  private readonly agents = new Map<RecipientValidator[], Agent>();
  // requests with allowKeepalive: false get pools of their own: in undici, `reset` requests sharing a pool with
  // keep-alive ones make the pool close a connection after every later request too
  private readonly closingAgents = new Map<RecipientValidator[], Agent>();
  private readonly targets = new Map<string, Target>();

  constructor(private readonly options: TransportOptions) {}

  private agentFor(validators: RecipientValidator[], keepAlive: boolean): Agent {
    const agents = keepAlive ? this.agents : this.closingAgents;
    let agent = agents.get(validators);
    if (!agent) {
      agent = new Agent({
        connect: createSafeConnector({ validators, lookup: this.options.lookup, tls: this.options.tls }),
        keepAliveTimeout: 30_000,
        // without a cap undici opens a new socket whenever none is free yet, e.g. while a finished request's socket
        // is still being handed back: a burst could hold twice `concurrency` sockets to one receiver
        connections: this.options.maxConnections ?? null,
      });
      agents.set(validators, agent);
      if (agents.size > MAX_AGENTS) {
        // e.g. a new validator array per send(): close the oldest pool (in-flight requests finish first)
        const [oldest, old] = agents.entries().next().value!;
        agents.delete(oldest);
        void old.close().catch(() => old.destroy());
      }
    }
    return agent;
  }

  /**
   * One POST through undici's low-level `dispatch` (no AbortController, response stream or async iterator per
   * request: this is the per-delivery hot path; the handler is one object, see `PostHandler`). The timer covers
   * connect + response: undici only hands out the abort function once connected, so a timeout during lookup/connect
   * settles the promise and aborts on connect.
   */
  send(req: TransportRequest): Promise<TransportResponse> {
    const { origin, path, authorization } = this.target(req.url);
    return new Promise<TransportResponse>((resolve, reject) => {
      const handler = new PostHandler(req, this.options.maxResponseBody, resolve, reject);
      this.agentFor(req.validators, req.keepAlive).dispatch(
        {
          origin,
          path,
          method: 'POST',
          headers: authorization ? withUrlCredentials(req.headers, authorization) : req.headers,
          body: req.body,
          headersTimeout: req.timeout,
          bodyTimeout: req.timeout,
          reset: !req.keepAlive,
        },
        handler as any,
      );
    });
  }

  /**
   * origin + path of a URL, and `Basic` credentials from its userinfo (undici itself would drop them); cached, since
   * the same subscriber URLs come back for every event.
   */
  private target(url: string): Target {
    let t = this.targets.get(url);
    if (!t) {
      const u = new URL(url);
      t = { origin: u.origin, path: `${u.pathname}${u.search}` };
      if (u.username || u.password) {
        // Percent-decoded, as axios and Python requests send them.
        const userinfo = `${safeDecode(u.username)}:${safeDecode(u.password)}`;
        t.authorization = `Basic ${Buffer.from(userinfo, 'utf8').toString('base64')}`;
      }
      if (this.targets.size >= MAX_CACHED_URLS) this.targets.clear();
      this.targets.set(url, t);
    }
    return t;
  }

  async close(): Promise<void> {
    const agents = [...this.agents.values(), ...this.closingAgents.values()];
    this.agents.clear();
    this.closingAgents.clear();
    await Promise.all(agents.map((a) => a.close().catch(() => a.destroy())));
  }
}

/**
 * undici's handler for one POST: collects the status, headers and up to `cap` bytes of the body, and settles the
 * request's promise once (answer, error or timeout). Its methods live on the prototype: no closures per request.
 */
class PostHandler {
  private abort: ((reason?: Error) => void) | undefined;
  private settled = false;
  private status = 0;
  private headers: TransportResponse['headers'] = {};
  private chunks: Buffer[] | null = null;
  private size = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly req: TransportRequest,
    private readonly cap: number,
    private readonly resolve: (res: TransportResponse) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    this.timer = setTimeout(onPostTimeout, req.timeout, this);
  }

  /** The timer fired: fail with a timeout and abort the request (at once, or as soon as it is connected). */
  timedOut(): void {
    const err = new DeliveryTimeoutError(this.req.url, this.req.timeout);
    this.fail(err);
    this.abort?.(err);
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.abort = abort;
    if (this.settled) abort(new DeliveryTimeoutError(this.req.url, this.req.timeout));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    this.status = statusCode;
    this.headers = parseRawHeaders(rawHeaders);
    return true;
  }

  onData(chunk: Buffer): boolean {
    const room = this.cap - this.size;
    if (room > 0) {
      (this.chunks ??= []).push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      this.size += Math.min(room, chunk.length);
    }
    if (this.size >= this.cap) {
      // enough read: answer now and drop the rest with the connection (never buffer unbounded)
      this.onComplete();
      this.abort?.();
      return false;
    }
    return true;
  }

  onComplete(): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    const c = this.chunks;
    const body = c === null ? '' : c.length === 1 ? c[0].toString('utf8') : Buffer.concat(c).toString('utf8');
    this.resolve({ status: this.status, headers: this.headers, body });
  }

  onError(err: Error): void {
    this.fail(err);
  }

  private fail(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.reject(translateError(err, this.req));
  }
}

function onPostTimeout(handler: PostHandler): void {
  handler.timedOut();
}

interface Target {
  origin: string;
  path: string;
  /** `Basic ...` from the URL's user:password, if it has any. */
  authorization?: string;
}

/** The URL's credentials as an Authorization header, unless the request has its own (any spelling). */
function withUrlCredentials(headers: Record<string, string>, authorization: string): Record<string, string> {
  for (const name in headers) if (name.toLowerCase() === 'authorization') return headers;
  return { ...headers, authorization };
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Errors as callers expect them: the connector's SecurityError itself, and every kind of timeout as one type. */
function translateError(err: unknown, req: TransportRequest): unknown {
  const e = err as { name?: string; code?: string; cause?: unknown };
  if (e?.name === 'SecurityError' || e?.name === 'DeliveryTimeoutError') return err;
  if ((e?.cause as Error | undefined)?.name === 'SecurityError') return e.cause;
  if (e?.name === 'TimeoutError' || (e?.code && TIMEOUT_CODES.has(e.code)))
    return new DeliveryTimeoutError(req.url, req.timeout);
  return err;
}

/** undici's raw header list → lower-case names, repeated headers as arrays. */
function parseRawHeaders(raw: Buffer[]): TransportResponse['headers'] {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i].toString('latin1').toLowerCase();
    const value = raw[i + 1].toString('latin1');
    const prev = out[key];
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}
