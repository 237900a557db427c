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
        connect: createSafeConnector({ validators, lookup: this.options.lookup }),
        keepAliveTimeout: 30_000,
        connections: null,
      });
      this.agents.set(validators, agent);
    }
    return agent;
  }

  async send(req: TransportRequest): Promise<TransportResponse> {
    const url = new URL(req.url);
    const signal = AbortSignal.timeout(req.timeout);
    try {
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
    } catch (err) {
      const e = err as { name?: string; code?: string; cause?: unknown };
      if (e?.name === 'SecurityError') throw err;
      if ((e?.cause as Error | undefined)?.name === 'SecurityError') throw e.cause;
      if (signal.aborted || e?.name === 'TimeoutError' || (e?.code && TIMEOUT_CODES.has(e.code))) {
        throw new DeliveryTimeoutError(req.url, req.timeout);
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.close().catch(() => a.destroy())));
  }
}

/** Reads at most `cap` bytes of a response body, then drops the rest (never buffers unbounded). */
async function readCapped(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  cap: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const room = cap - size;
    if (room > 0) {
      chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      size += Math.min(room, chunk.length);
    }
    if (size >= cap) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}
