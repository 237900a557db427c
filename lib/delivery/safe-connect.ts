import type { LookupFunction } from 'node:net';
import { buildConnector, errors } from 'undici';
import { asError } from './io.js';
import { parseIpLiteral, validateRecipient } from './validators.js';
import type { LookupLike, RecipientValidator, ResolvedAddress } from './validators.js';

/** Options of `createSafeConnector`. */
export interface SafeConnectorOptions {
  /** Every validator must pass for every resolved address before a socket is opened. */
  validators: RecipientValidator[];
  /** Resolver used once per connection (default `dns.lookup`). */
  lookup?: LookupLike;
  /** Milliseconds for the DNS lookup, and again for the TCP/TLS handshake (default 10 000). */
  connectTimeout?: number;
  /** TLS settings; certificates are verified against the recipient's hostname. */
  tls?: { rejectUnauthorized?: boolean; ca?: string | Buffer };
}

// Errors that say "this address cannot be reached from here" (e.g. an IPv6 answer on an IPv4-only host): the next
// validated address is tried. Timeouts are not in the list so one connection attempt stays bounded.
export const TRY_NEXT_ADDRESS = new Set([
  'ECONNREFUSED',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
  'EAFNOSUPPORT',
]);

// The socket is always given an IP address, so node never resolves; should that ever change, resolving here would
// bypass validation, so it fails instead.
export const refuseLookup: LookupFunction = (hostname, _options, callback) => {
  callback(
    new Error(
      `Refused to resolve "${hostname}" a second time: sockets are opened to validated addresses only`,
    ),
    '',
    4,
  );
};

/**
 * An undici `connect` function (`new Agent({ connect: createSafeConnector(...) })`) that resolves the host once,
 * validates every address and connects to a validated address, keeping TLS SNI and certificate checks on the hostname.
 */
export function createSafeConnector(opts: SafeConnectorOptions): buildConnector.connector {
  const timeout = opts.connectTimeout ?? 10_000;
  const connectTo = buildConnector({
    timeout,
    ...(opts.tls?.rejectUnauthorized !== undefined && { rejectUnauthorized: opts.tls.rejectUnauthorized }),
    ...(opts.tls?.ca !== undefined && { ca: opts.tls.ca }),
    lookup: refuseLookup,
  });

  return (options, callback) => {
    let done = false;
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      callback(err, null);
    };
    const { protocol, hostname, port } = options;
    // undici strips the brackets of an IPv6 host; a URL needs them back.
    const host = hostname.includes(':') ? `[${hostname}]` : hostname;
    const origin = `${protocol}//${host}${port ? `:${port}` : ''}`;
    // SNI and the certificate check follow the hostname, never the IP connected to (no SNI for IP literals).
    const servername = options.servername || (parseIpLiteral(hostname) ? undefined : hostname);

    // buildConnector's timeout only covers the handshake; getaddrinfo can hang much longer.
    const timer = setTimeout(
      () =>
        fail(
          new errors.ConnectTimeoutError(
            `Connect Timeout Error: resolving ${hostname} took over ${timeout} ms`,
          ),
        ),
      timeout,
    );
    timer.unref?.();

    const attempt = (addresses: ResolvedAddress[], i: number) => {
      try {
        connectTo({ ...options, hostname: addresses[i].address, servername }, (err, socket) => {
          if (done) {
            socket?.destroy();
            return;
          }
          if (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (i + 1 < addresses.length && code && TRY_NEXT_ADDRESS.has(code))
              return attempt(addresses, i + 1);
            return fail(err);
          }
          done = true;
          callback(null, socket!);
        });
      } catch (err) {
        // e.g. tls.connect() rejecting an option: it throws instead of calling back
        fail(asError(err));
      }
    };

    validateRecipient(origin, opts.validators, opts.lookup)
      .then(({ addresses }) => {
        clearTimeout(timer);
        if (!done) attempt(addresses, 0);
      })
      // a catch after the then, not then(ok, fail): whatever ok throws fails the connection, never goes unhandled
      .catch((err: unknown) => {
        clearTimeout(timer);
        fail(asError(err));
      });
  };
}
