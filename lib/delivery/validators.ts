import dns from 'node:dns';
import type { LookupAddress } from 'node:dns';
import ipaddr from 'ipaddr.js';
import { SecurityError } from './security-error.js';

/** Facts a validator may use instead of looking them up itself. */
export interface ValidationContext {
  /** The resolved IP addresses of `url.hostname`, when the caller already resolved them. */
  addresses?: string[];
}

/** Checks a recipient URL; throws `SecurityError` to block it. */
export type RecipientValidator = (url: URL, ctx?: ValidationContext) => void | Promise<void>;

/** A `dns.lookup`-compatible resolver, called as `lookup(hostname, { all: true }, callback)`. */
export type LookupLike = (
  hostname: string,
  options: { all: true },
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

/** A resolved address of a validated recipient. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Thrown by `validateRecipient` for a string that is not an absolute URL. */
export class InvalidUrlError extends Error {
  constructor(input: string) {
    super(
      `Invalid recipient URL "${truncate(input)}": use an absolute URL such as https://example.com/hooks`,
    );
    this.name = 'InvalidUrlError';
  }
}

type IP = ipaddr.IPv4 | ipaddr.IPv6;
type Network = [IP, number];

interface NamedNetwork {
  label: string;
  cidr: string;
  range: Network;
}

const named = (label: string, cidr: string): NamedNetwork => ({ label, cidr, range: ipaddr.parseCIDR(cidr) });

// Listed explicitly (rather than only trusting ipaddr's range() names) so messages can name the exact network,
// and so the list does not shrink if a future ipaddr.js renames a range. More specific entries come first.
const V4_BLOCKED: NamedNetwork[] = [
  named('unspecified', '0.0.0.0/8'),
  named('private', '10.0.0.0/8'),
  named('carrier-grade NAT', '100.64.0.0/10'),
  named('loopback', '127.0.0.0/8'),
  named('link-local', '169.254.0.0/16'),
  named('private', '172.16.0.0/12'),
  named('IETF protocol assignments', '192.0.0.0/24'),
  named('documentation', '192.0.2.0/24'),
  named('6to4 relay anycast', '192.88.99.0/24'),
  named('private', '192.168.0.0/16'),
  named('benchmarking', '198.18.0.0/15'),
  named('documentation', '198.51.100.0/24'),
  named('documentation', '203.0.113.0/24'),
  named('multicast', '224.0.0.0/4'),
  named('broadcast', '255.255.255.255/32'),
  named('reserved', '240.0.0.0/4'),
];

const V6_BLOCKED: NamedNetwork[] = [
  named('unspecified', '::/128'),
  named('loopback', '::1/128'),
  named('IPv4-compatible (deprecated)', '::/96'),
  named('IPv4-translated', '::ffff:0:0:0/96'),
  // Local-use NAT64 (RFC 8215) translates into the operator's own networks, and its prefix length (/48 to /96) is
  // not knowable from outside, so the embedded IPv4 address cannot be read reliably: refused as a whole.
  named('local-use NAT64', '64:ff9b:1::/48'),
  named('discard-only', '100::/64'),
  named('Teredo', '2001::/32'),
  named('IETF protocol assignments', '2001::/23'),
  named('documentation', '2001:db8::/32'),
  named('documentation', '3fff::/20'),
  named('segment routing', '5f00::/16'),
  named('unique local', 'fc00::/7'),
  named('link-local', 'fe80::/10'),
  named('site-local (deprecated)', 'fec0::/10'),
  named('multicast', 'ff00::/8'),
];

// Only 2000::/3 is allocated for global unicast; everything else is reserved, so it is refused wholesale.
const V6_GLOBAL_UNICAST = ipaddr.parseCIDR('2000::/3');

// IPv6 ranges that carry an IPv4 address: the embedded IPv4 address decides. `at` is the byte positions of the IPv4
// address in the 16 address bytes.
const V6_EMBEDDINGS: { label: string; range: Network; at: number[]; mapped?: boolean }[] = [
  {
    label: 'IPv4-mapped ::ffff:0:0/96',
    range: ipaddr.parseCIDR('::ffff:0:0/96'),
    at: [12, 13, 14, 15],
    mapped: true,
  },
  { label: 'NAT64 64:ff9b::/96', range: ipaddr.parseCIDR('64:ff9b::/96'), at: [12, 13, 14, 15] },
  { label: '6to4 2002::/16', range: ipaddr.parseCIDR('2002::/16'), at: [2, 3, 4, 5] },
];

/** Blocks loopback, private, link-local, CGNAT, multicast, reserved and other non-public addresses (SPEC §5.1). */
export function blockInternalIps(opts: { allow?: string[] } = {}): RecipientValidator {
  const allow = (opts.allow ?? []).map((spec) => parseNetwork(spec, 'blockInternalIps({ allow })'));
  const isAllowed = (a: IP) => allow.some((net) => inNetwork(a, net));
  return addressValidator((a) => internalReason(a, isAllowed));
}

/** Blocks addresses in the given networks (`'10.0.0.0/8'`, `'fd00::/8'`, or single addresses). */
export function blockCidrNetwork(...cidrs: string[]): RecipientValidator {
  if (cidrs.length === 0) {
    throw new Error("blockCidrNetwork() needs at least one network, e.g. blockCidrNetwork('10.0.0.0/8')");
  }
  const nets = cidrs.map((cidr) => ({
    cidr: String(cidr).trim(),
    range: parseNetwork(cidr, 'blockCidrNetwork()'),
  }));
  return addressValidator((a) => {
    for (const net of nets) if (inNetwork(a, net.range)) return net.cidr;
    // An IPv4 rule must also catch the IPv6 spellings of the same IPv4 address.
    const embedding = a.kind() === 'ipv6' ? embeddingOf(a as ipaddr.IPv6) : null;
    if (embedding) {
      for (const net of nets)
        if (inNetwork(embedding.v4, net.range)) return `${embedding.label} of ${embedding.v4}: ${net.cidr}`;
    }
    return null;
  });
}

/** Allows only the given URL schemes (`'https'` or `'https:'`, case-insensitive). */
export function ensureProtocol(...schemes: string[]): RecipientValidator {
  if (schemes.length === 0) {
    throw new Error("ensureProtocol() needs at least one scheme, e.g. ensureProtocol('https')");
  }
  const allowed = new Set(
    schemes.map(
      (s) =>
        `${String(s)
          .trim()
          .toLowerCase()
          .replace(/:(\/\/)?$/, '')}:`,
    ),
  );
  const list = [...allowed].map((s) => s.slice(0, -1)).join(', ');
  return (url) => {
    const scheme = url.protocol.toLowerCase();
    if (!allowed.has(scheme)) {
      throw new SecurityError(
        `Recipient blocked: scheme "${scheme}" of ${where(url)} is not allowed (allowed: ${list})`,
        {
          url: where(url),
          rule: `scheme not in ${list}`,
        },
      );
    }
  };
}

/** Allows URLs without an explicit port, or with one of the given ports. */
export function ensurePort(...ports: number[]): RecipientValidator {
  if (ports.length === 0) throw new Error('ensurePort() needs at least one port, e.g. ensurePort(443)');
  const allowed = new Set(
    ports.map((p) => {
      const n = Number(p);
      if (!Number.isInteger(n) || n < 1 || n > 65535) {
        throw new Error(`ensurePort(): ${String(p)} is not a port: use integers from 1 to 65535`);
      }
      return n;
    }),
  );
  const list = [...allowed].join(', ');
  return (url) => {
    // WHATWG URL drops a scheme's default port, so `url.port` is '' unless a non-default port was given.
    if (url.port === '' || allowed.has(Number(url.port))) return;
    throw new SecurityError(
      `Recipient blocked: port ${url.port} of ${where(url)} is not allowed (allowed: ${list})`,
      {
        url: where(url),
        rule: `port not in ${list}`,
      },
    );
  };
}

/** The validators used when none are configured: public addresses, http(s), ports 80 and 443. */
export function defaultRecipientValidators(): RecipientValidator[] {
  return [blockInternalIps(), ensureProtocol('http', 'https'), ensurePort(80, 443)];
}

/** The normalised IP address if `host` is an IP literal in any form (`127.1`, `0x7f000001`, `[::1]`, `fe80::1%eth0`), else null. */
export function parseIpLiteral(host: string): string | null {
  if (typeof host !== 'string') return null;
  let s = host.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (s.includes(':')) {
    // The zone only picks an interface; the address itself is what gets classified.
    const zone = s.indexOf('%');
    if (zone !== -1) s = s.slice(0, zone);
    return ipaddr.IPv6.isValid(s) ? ipaddr.IPv6.parse(s).toRFC5952String() : null;
  }
  if (!/^[0-9a-fx.]+$/i.test(s)) return null;
  // The WHATWG URL parser is the normaliser: it implements the same shorthand, octal, hex and trailing-dot forms
  // that URL parsing (and so undici) would connect to.
  let hostname: string;
  try {
    hostname = new URL(`http://${s}/`).hostname;
  } catch {
    return null;
  }
  return ipaddr.IPv4.isValidFourPartDecimal(hostname) ? hostname : null;
}

/**
 * Parses `url`, resolves its host once (no lookup for IP literals), runs every validator against those addresses
 * and returns them; the caller must connect only to these addresses.
 */
export async function validateRecipient(
  url: string | URL,
  validators: RecipientValidator[],
  lookup: LookupLike = dns.lookup,
): Promise<{ url: URL; addresses: ResolvedAddress[] }> {
  const parsed = toUrl(url);
  const addresses = await resolveRecipient(parsed, lookup);
  const ctx: ValidationContext = { addresses: addresses.map((a) => a.address) };
  for (const validate of validators) await validate(parsed, ctx);
  return { url: parsed, addresses };
}

function toUrl(input: string | URL): URL {
  try {
    // A copy, so a validator cannot change what the caller later connects to.
    return new URL(typeof input === 'string' ? input.trim() : input.href);
  } catch {
    throw new InvalidUrlError(String(input));
  }
}

async function resolveRecipient(url: URL, lookup: LookupLike): Promise<ResolvedAddress[]> {
  if (!url.hostname) {
    throw new SecurityError(`Recipient blocked: ${where(url)} has no network host`, {
      url: where(url),
      rule: 'no host',
    });
  }
  const literal = parseIpLiteral(url.hostname);
  if (literal) return [{ address: literal, family: familyOf(literal) }];

  const answers = await new Promise<LookupAddress[]>((resolve, reject) => {
    lookup(url.hostname, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses ?? [])));
  });
  const seen = new Set<string>();
  const out: ResolvedAddress[] = [];
  for (const answer of answers) {
    const address = parseIpLiteral(answer.address);
    if (!address) {
      throw new SecurityError(
        `Recipient blocked: ${url.hostname} resolved to "${answer.address}", which is not an IP address`,
        { url: where(url), address: answer.address, rule: 'not an IP address' },
      );
    }
    if (!seen.has(address)) {
      seen.add(address);
      out.push({ address, family: familyOf(address) });
    }
  }
  if (out.length === 0) {
    throw Object.assign(new Error(`Cannot resolve ${url.hostname}: the resolver returned no addresses`), {
      code: 'ENOTFOUND',
      hostname: url.hostname,
    });
  }
  return out;
}

/** Builds a validator that checks every address of the recipient; `check` returns the blocking rule or null. */
function addressValidator(check: (a: IP) => string | null): RecipientValidator {
  return async (url, ctx) => {
    const addresses = ctx?.addresses ?? (await resolveRecipient(url, dns.lookup)).map((a) => a.address);
    if (addresses.length === 0) {
      // Fail closed: nothing was checked, so nothing may be connected to.
      throw new SecurityError(`Recipient blocked: no address of ${where(url)} to check`, {
        url: where(url),
        rule: 'no address',
      });
    }
    for (const raw of addresses) {
      const address = parseIpLiteral(raw);
      if (!address) {
        throw new SecurityError(
          `Recipient blocked: "${raw}" (address of ${url.hostname}) is not an IP address`,
          {
            url: where(url),
            address: raw,
            rule: 'not an IP address',
          },
        );
      }
      const rule = check(ipaddr.parse(address));
      if (rule) {
        const shown = sameHost(url.hostname, address) ? address : `${address} (address of ${url.hostname})`;
        throw new SecurityError(`Recipient blocked: ${shown} is in a blocked network (${rule})`, {
          url: where(url),
          address,
          rule,
        });
      }
    }
  };
}

/** Why `a` is internal (e.g. `loopback 127.0.0.0/8`), or null for a public address. */
function internalReason(a: IP, isAllowed: (a: IP) => boolean): string | null {
  if (isAllowed(a)) return null;
  if (a.kind() === 'ipv4') return v4Reason(a as ipaddr.IPv4);
  const v6 = a as ipaddr.IPv6;
  const embedding = embeddingOf(v6);
  if (embedding) {
    const { v4 } = embedding;
    // An allowed IPv4 network also covers its IPv4-mapped form, which is the same socket address.
    if (embedding.mapped && isAllowed(v4)) return null;
    const reason = v4Reason(v4);
    return reason && `${embedding.label} of ${v4}: ${reason}`;
  }
  for (const net of V6_BLOCKED) if (inNetwork(v6, net.range)) return `${net.label} ${net.cidr}`;
  if (!inNetwork(v6, V6_GLOBAL_UNICAST)) return 'not global unicast 2000::/3';
  return special(v6.range());
}

function v4Reason(a: ipaddr.IPv4): string | null {
  for (const net of V4_BLOCKED) if (inNetwork(a, net.range)) return `${net.label} ${net.cidr}`;
  return special(a.range());
}

// Anything else ipaddr.js knows as special-purpose (AS112, AMT, ORCHID, ...) is no webhook receiver either.
function special(range: string): string | null {
  return range === 'unicast' ? null : `special-purpose (${range})`;
}

function embeddingOf(a: ipaddr.IPv6): { label: string; v4: ipaddr.IPv4; mapped: boolean } | null {
  for (const e of V6_EMBEDDINGS) {
    if (!inNetwork(a, e.range)) continue;
    const bytes = a.toByteArray();
    return { label: e.label, v4: new ipaddr.IPv4(e.at.map((i) => bytes[i])), mapped: e.mapped === true };
  }
  return null;
}

function inNetwork(a: IP, [net, bits]: Network): boolean {
  return a.kind() === net.kind() && a.match(net, bits);
}

function parseNetwork(spec: string, fn: string): Network {
  const s = String(spec).trim();
  try {
    if (s.includes('/')) return ipaddr.parseCIDR(s);
    const literal = parseIpLiteral(s);
    if (literal) {
      const ip = ipaddr.parse(literal);
      return [ip, ip.kind() === 'ipv4' ? 32 : 128];
    }
  } catch {
    // fall through to the error below
  }
  throw new Error(`${fn}: "${spec}" is not a network: use CIDR notation such as '127.0.0.0/8' or '::1/128'`);
}

function familyOf(address: string): 4 | 6 {
  return address.includes(':') ? 6 : 4;
}

function sameHost(hostname: string, address: string): boolean {
  return hostname.replace(/^\[|\]$/g, '') === address;
}

/** `scheme://host[:port]` only: paths, queries and credentials may hold secrets and must not reach logs. */
function where(url: URL): string {
  return url.host ? `${url.protocol}//${url.host}` : url.protocol;
}

function truncate(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}
