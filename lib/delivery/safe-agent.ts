import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { asError } from './io.js';
import { parseIpLiteral, validateRecipient } from './validators.js';
import type { LookupLike, RecipientValidator, ResolvedAddress } from './validators.js';
import { refuseLookup, TRY_NEXT_ADDRESS } from './safe-connect.js';

/** TLS settings of the safe agents; certificates are always verified against the recipient's hostname. */
export interface SafeAgentTlsOptions {
  ca?: string | Buffer | (string | Buffer)[];
  cert?: string | Buffer | (string | Buffer)[];
  key?: string | Buffer | (string | Buffer)[];
  pfx?: string | Buffer | (string | Buffer)[];
  passphrase?: string;
  ciphers?: string;
  minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  /** Tests only: false accepts any certificate. */
  rejectUnauthorized?: boolean;
}

/** Options of `createSafeAgents`. */
export interface SafeAgentOptions {
  /** Every validator must pass for every resolved address before a socket is opened. */
  validators: RecipientValidator[];
  /** Resolver used once per connection (default `dns.lookup`). */
  lookup?: LookupLike;
  /** Reuse connections per origin (default true); false closes each after its answer. */
  keepAlive?: boolean;
  /** Idle time before a kept-alive connection is closed, in ms (default 30 000). */
  keepAliveTimeout?: number;
  /** Sockets per origin at most (default unbounded); more requests wait for a free one. */
  maxSockets?: number;
  /** Milliseconds for the DNS lookup and TCP connect together (default 10 000). */
  connectTimeout?: number;
  tls?: SafeAgentTlsOptions;
}

/** A pair of node:http(s) agents that validate every connection they open. */
export interface SafeAgents {
  http: http.Agent;
  https: https.Agent;
  destroy(): void;
}

type ConnectArgs = http.ClientRequestArgs & { servername?: string; _agentKey?: string };
type Done = (err: Error | null, socket: Duplex) => void;

/**
 * Resolves the host once, validates every address with `validators`, and opens a TCP connection to the first
 * validated address that answers. Calls `done` exactly once.
 */
function connectValidated(
  protocol: 'http:' | 'https:',
  args: ConnectArgs,
  opts: SafeAgentOptions,
  done: Done,
): void {
  const timeout = opts.connectTimeout ?? 10_000;
  const hostname = String(args.hostname ?? args.host ?? '').replace(/^\[|\]$/g, '');
  const port = Number(args.port) || (protocol === 'https:' ? 443 : 80);
  const defaultPort = protocol === 'https:' ? 443 : 80;
  const host = hostname.includes(':') ? `[${hostname}]` : hostname;
  // The URL the validators see: the default port is left out, as in the recipient's own URL.
  const origin = `${protocol}//${host}${port === defaultPort ? '' : `:${port}`}`;

  let settled = false;
  let socket: net.Socket | undefined;
  const finish = (err: Error | null, s?: net.Socket) => {
    if (settled) {
      s?.destroy();
      return;
    }
    settled = true;
    clearTimeout(timer);
    if (err) done(err, undefined as unknown as Duplex);
    else done(null, s!);
  };
  const timer = setTimeout(() => {
    socket?.destroy();
    finish(
      Object.assign(new Error(`Connect timeout: ${origin} not connected within ${timeout} ms`), {
        code: 'ETIMEDOUT',
      }),
    );
  }, timeout);
  timer.unref?.();

  const attempt = (addresses: ResolvedAddress[], i: number) => {
    const { address, family } = addresses[i];
    const s = net.connect({ host: address, port, family, lookup: refuseLookup });
    socket = s;
    const onError = (err: NodeJS.ErrnoException) => {
      s.destroy();
      if (settled) return;
      if (i + 1 < addresses.length && err.code && TRY_NEXT_ADDRESS.has(err.code)) attempt(addresses, i + 1);
      else finish(err);
    };
    s.once('error', onError);
    s.once('connect', () => {
      s.removeListener('error', onError);
      finish(null, s);
    });
  };

  validateRecipient(origin, opts.validators, opts.lookup).then(
    ({ addresses }) => {
      if (!settled) attempt(addresses, 0);
    },
    (err: unknown) => finish(asError(err)),
  );
}

class SafeHttpAgent extends http.Agent {
  constructor(
    agentOptions: http.AgentOptions,
    private readonly safe: SafeAgentOptions,
  ) {
    super(agentOptions);
  }

  override createConnection(args: http.ClientRequestArgs, callback?: Done): Duplex | null | undefined {
    connectValidated('http:', args, this.safe, (err, socket) => {
      if (err) return callback?.(err, socket);
      if (this.keepAlive) (socket as net.Socket).setKeepAlive(true, this.keepAliveMsecs);
      callback?.(null, socket);
    });
    return undefined;
  }
  declare keepAlive: boolean;
  declare keepAliveMsecs: number;
}

class SafeHttpsAgent extends https.Agent {
  constructor(
    agentOptions: https.AgentOptions,
    private readonly safe: SafeAgentOptions,
  ) {
    super(agentOptions);
  }

  override createConnection(args: https.RequestOptions, callback?: Done): Duplex | null | undefined {
    const a = args as ConnectArgs;
    connectValidated('https:', a, this.safe, (err, socket) => {
      if (err) return callback?.(err, socket);
      const hostname = String(a.hostname ?? a.host ?? '').replace(/^\[|\]$/g, '');
      // SNI and the certificate check follow the hostname (never the IP connected to); none for IP literals.
      const servername = a.servername || (parseIpLiteral(hostname) ? undefined : hostname);
      try {
        // The base class runs tls.connect over our socket, with TLS session reuse per origin.
        const tlsSocket = super.createConnection({
          ...a,
          host: hostname,
          servername,
          socket,
          rejectUnauthorized: this.safe.tls?.rejectUnauthorized !== false,
        } as https.RequestOptions);
        callback?.(null, tlsSocket!);
      } catch (e) {
        socket.destroy();
        callback?.(e as Error, socket);
      }
    });
    return undefined;
  }
}

/**
 * node:http / node:https agents (for axios or `http.request`) that resolve each host once, validate every address
 * and port with the recipient validators, and connect to the validated address; TLS SNI and certificate checks stay
 * on the hostname. Connections are kept alive per origin unless `keepAlive: false`.
 */
export function createSafeAgents(opts: SafeAgentOptions): SafeAgents {
  const keepAlive = opts.keepAlive !== false;
  const common: http.AgentOptions = {
    keepAlive,
    // Idle kept-alive sockets are closed after this (the agent applies it when a socket becomes free).
    ...(keepAlive && { timeout: opts.keepAliveTimeout ?? 30_000 }),
    scheduling: 'lifo',
    ...(opts.maxSockets !== undefined && { maxSockets: opts.maxSockets }),
  };
  const { rejectUnauthorized: _ignored, ...tls } = opts.tls ?? {};
  const httpAgent = new SafeHttpAgent(common, opts);
  const httpsAgent = new SafeHttpsAgent({ ...common, ...tls }, opts);
  return {
    http: httpAgent,
    https: httpsAgent,
    destroy: () => {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
