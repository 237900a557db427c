import { redactUrl } from './io.js';
import type { LookupLike, RecipientValidator } from './validators.js';

/** One HTTP POST, as a transport sees it. */
export interface TransportRequest {
  url: string;
  headers: Record<string, string>;
  body: string | Buffer;
  /** Total time for connect + response, in ms. */
  timeout: number;
  /** Checked against every address before a connection is made. */
  validators: RecipientValidator[];
  /** Reuse the connection (default); false closes it after the answer. */
  keepAlive: boolean;
}

/** The answer: status, headers, and at most `maxResponseBody` bytes of body. */
export interface TransportResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends webhook requests; the delivery layer is written against this, not a specific HTTP client. */
export interface Transport {
  send(request: TransportRequest): Promise<TransportResponse>;
  close(): Promise<void>;
}

/** Settings every transport needs. */
export interface TransportOptions {
  lookup: LookupLike;
  maxResponseBody: number;
  /**
   * Connections per origin (per pool) at most: the module's `concurrency`, so a burst never opens more sockets to one
   * receiver than requests may be in flight (default: unbounded, for a transport used on its own).
   */
  maxConnections?: number;
  /** TLS trust: an extra CA (e.g. a private one); `rejectUnauthorized: false` is for tests only. */
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
}

/** A request that did not answer within its timeout. */
export class DeliveryTimeoutError extends Error {
  constructor(url: string, ms: number) {
    super(`No answer from ${redactUrl(url)} within ${ms} ms`);
    this.name = 'DeliveryTimeoutError';
  }
}
