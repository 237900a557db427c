import { Agent } from 'undici';
import { readCapped } from './io.js';
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
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * undici transport: one keep-alive `Agent` (a connection pool per origin) per validator list, with a connector that
 * resolves each host once, validates every address and connects to the validated one.
 */
export class UndiciTransport implements Transport {
  private readonly agents = new Map<RecipientValidator[], Agent>();

  constructor(private readonly options: TransportOptions) {}

  private agentFor(validators: RecipientValidator[]): Agent {
    let agent = this.agents.get(validators);
    if (!agent) {
      agent = new Agent({
        connect: createSafeConnector({ validators, lookup: this.options.lookup, tls: this.options.tls }),
        keepAliveTimeout: 30_000,
        connections: null,
      });
      this.agents.set(validators, agent);
      if (this.agents.size > MAX_AGENTS) {
        // e.g. a new validator array per send(): close the oldest pool (in-flight requests finish first)
        const [oldest, old] = this.agents.entries().next().value!;
        this.agents.delete(oldest);
        void old.close().catch(() => old.destroy());
      }
    }
    return agent;
  }

  async send(req: TransportRequest): Promise<TransportResponse> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // undici applies an abort only once the request has a connection, so a slow lookup or connect is raced here:
    // the timeout covers connect + response.
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new DeliveryTimeoutError(req.url, req.timeout));
      }, req.timeout);
    });
    try {
      return await Promise.race([this.exchange(req, controller.signal), timedOut]);
    } catch (err) {
      const e = err as { name?: string; code?: string; cause?: unknown };
      if (e?.name === 'SecurityError') throw err;
      if ((e?.cause as Error | undefined)?.name === 'SecurityError') throw e.cause;
      if (controller.signal.aborted || e?.name === 'TimeoutError' || (e?.code && TIMEOUT_CODES.has(e.code))) {
        throw new DeliveryTimeoutError(req.url, req.timeout);
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private async exchange(req: TransportRequest, signal: AbortSignal): Promise<TransportResponse> {
    const url = new URL(req.url);
    const res = await this.agentFor(req.validators).request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      headers: req.headers,
      body: req.body,
      signal,
      headersTimeout: req.timeout,
      bodyTimeout: req.timeout,
      reset: !req.keepAlive,
    });
    const body = await readCapped(res.body, this.options.maxResponseBody);
    return { status: res.statusCode, headers: res.headers, body };
  }

  async close(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.close().catch(() => a.destroy())));
  }
}
