import { describe, expect, it } from '@jest/globals';
import type { LookupAddress } from 'node:dns';
import { SecurityError, isSecurityError } from '../../lib/delivery/security-error.js';
import {
  InvalidUrlError,
  blockCidrNetwork,
  blockInternalIps,
  defaultRecipientValidators,
  ensurePort,
  ensureProtocol,
  parseIpLiteral,
  validateRecipient,
  type LookupLike,
} from '../../lib/delivery/validators.js';

/** A resolver with fixed answers that counts its calls; unknown names fail like getaddrinfo does. */
function fakeLookup(answers: Record<string, string[]>) {
  const calls: string[] = [];
  const lookup: LookupLike = (hostname, _opts, cb) => {
    calls.push(hostname);
    const list = answers[hostname];
    if (!list) {
      cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
      return;
    }
    cb(
      null,
      list.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
  return { lookup, calls };
}

/** The error `p` rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

// Must be blocked by the default validators; the pattern must match the blocking rule (so each row fails for the
// reason it is in the table, not by accident).
const BLOCKED: [string, RegExp][] = [
  // IPv4 literals, including the odd forms (WHATWG URL and inet_aton both read them as 127.0.0.1)
  ['http://127.0.0.1/', /loopback 127\.0\.0\.0\/8/],
  ['http://127.1/', /loopback/],
  ['http://0x7f000001/', /loopback/],
  ['http://2130706433/', /loopback/],
  ['http://0177.0.0.1/', /loopback/],
  ['http://0x7f.1/', /loopback/],
  ['http://127.0.0.1./', /loopback/],
  ['http://127.255.255.254/', /loopback/],
  ['http://user:secret@127.0.0.1/path?token=x', /loopback/],
  ['http://0/', /unspecified 0\.0\.0\.0\/8/],
  ['http://0.0.0.0/', /unspecified/],
  ['http://10.0.0.1/', /private 10\.0\.0\.0\/8/],
  ['http://172.16.0.1/', /private 172\.16\.0\.0\/12/],
  ['http://172.31.255.255/', /private 172\.16\.0\.0\/12/],
  ['http://192.168.1.1/', /private 192\.168\.0\.0\/16/],
  ['http://169.254.169.254/latest/meta-data/', /link-local 169\.254\.0\.0\/16/],
  ['http://0xa9.0xfe.0xa9.0xfe/', /link-local/],
  ['http://2852039166/', /link-local/],
  ['http://100.64.0.1/', /carrier-grade NAT 100\.64\.0\.0\/10/],
  ['http://224.0.0.1/', /multicast/],
  ['http://239.255.255.250/', /multicast/],
  ['http://240.0.0.1/', /reserved 240\.0\.0\.0\/4/],
  ['http://255.255.255.255/', /broadcast/],
  ['http://192.0.2.1/', /documentation 192\.0\.2\.0\/24/],
  ['http://198.51.100.7/', /documentation 198\.51\.100\.0\/24/],
  ['http://203.0.113.9/', /documentation 203\.0\.113\.0\/24/],
  ['http://192.0.0.170/', /IETF protocol assignments 192\.0\.0\.0\/24/],
  ['http://198.18.0.1/', /benchmarking 198\.18\.0\.0\/15/],
  ['http://198.19.255.1/', /benchmarking/],
  // IPv6 literals
  ['http://[::1]/', /loopback ::1\/128/],
  ['http://[0:0:0:0:0:0:0:1]/', /loopback/],
  ['http://[::]/', /unspecified ::\/128/],
  ['http://[fc00::1]/', /unique local fc00::\/7/],
  ['http://[fd00:ec2::254]/', /unique local/],
  ['http://[fe80::1]/', /link-local fe80::\/10/],
  ['http://[febf:ffff::1]/', /link-local/],
  ['http://[fec0::1]/', /site-local/],
  ['http://[ff02::1]/', /multicast ff00::\/8/],
  ['http://[2001:db8::1]/', /documentation 2001:db8::\/32/],
  ['http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', /Teredo 2001::\/32/],
  ['http://[100::1]/', /discard-only/],
  ['http://[4000::1]/', /not global unicast/],
  // IPv6 spellings of internal IPv4 addresses
  ['http://[::ffff:7f00:1]/', /IPv4-mapped .* of 127\.0\.0\.1: loopback/],
  ['http://[::ffff:127.0.0.1]/', /IPv4-mapped .* of 127\.0\.0\.1: loopback/],
  ['http://[0:0:0:0:0:ffff:127.0.0.1]/', /IPv4-mapped .* of 127\.0\.0\.1: loopback/],
  ['http://[::ffff:169.254.169.254]/', /IPv4-mapped .* of 169\.254\.169\.254: link-local/],
  ['http://[::ffff:10.1.2.3]/', /IPv4-mapped .* of 10\.1\.2\.3: private/],
  ['http://[::127.0.0.1]/', /IPv4-compatible/],
  ['http://[::ffff:0:7f00:1]/', /IPv4-translated/],
  ['http://[64:ff9b::127.0.0.1]/', /NAT64 64:ff9b::\/96 of 127\.0\.0\.1: loopback/],
  ['http://[64:ff9b::a9fe:a9fe]/', /NAT64 .* of 169\.254\.169\.254: link-local/],
  ['http://[64:ff9b:1::10.0.0.1]/', /local-use NAT64 64:ff9b:1::\/48/],
  ['http://[64:ff9b:1::93.184.216.34]/', /local-use NAT64/],
  ['http://[2002:7f00:1::]/', /6to4 2002::\/16 of 127\.0\.0\.1: loopback/],
  ['http://[2002:a9fe:a9fe::1]/', /6to4 .* of 169\.254\.169\.254: link-local/],
  ['http://[2002:c0a8:101::1]/', /6to4 .* of 192\.168\.1\.1: private/],
  // names that resolve to loopback (through the system resolver, i.e. /etc/hosts)
  ['http://localhost/', /loopback/],
  // schemes
  ['javascript:alert(1)', /no host/],
  ['file:///etc/passwd', /no host/],
  ['gopher://93.184.216.34/', /scheme not in http, https/],
  ['ftp://93.184.216.34/', /scheme not in/],
  ['ws://93.184.216.34/', /scheme not in/],
  ['gopher://0x7f.1/', /loopback/],
  // ports
  ['http://93.184.216.34:8080/', /port not in 80, 443/],
  ['https://93.184.216.34:22/', /port not in/],
  ['https://1.1.1.1:8443/', /port not in/],
  ['http://1.1.1.1:0/', /port not in/],
];

const ALLOWED: string[] = [
  'http://93.184.216.34/',
  'https://1.1.1.1:443/',
  'https://1.1.1.1/',
  'HTTPS://1.1.1.1/hooks',
  'http://8.8.8.8:80/hooks?x=1',
  'https://93.184.216.34:80/',
  'http://172.32.0.1/',
  'http://100.128.0.1/',
  'http://11.0.0.1/',
  'http://[2606:4700:4700::1111]/',
  'http://[::ffff:93.184.216.34]/',
  'http://[64:ff9b::808:808]/',
  'http://[2002:808:808::1]/',
];

describe('validateRecipient with the default validators', () => {
  it.each(BLOCKED)('blocks %s', async (url, rule) => {
    const err = await rejection(validateRecipient(url, defaultRecipientValidators()));
    expect(err).toBeInstanceOf(SecurityError);
    expect(err.name).toBe('SecurityError');
    expect((err as SecurityError).rule).toMatch(rule);
    expect(err.message).toMatch(/^Recipient blocked: /);
  });

  it('has a table of at least 40 blocked URLs', () => {
    expect(BLOCKED.length).toBeGreaterThanOrEqual(40);
  });

  it.each(ALLOWED)('allows %s', async (url) => {
    const { lookup, calls } = fakeLookup({});
    const result = await validateRecipient(url, defaultRecipientValidators(), lookup);
    expect(result.url.href).toBe(new URL(url).href);
    expect(result.addresses).toHaveLength(1);
    expect(calls).toEqual([]); // IP literals are never looked up
  });

  it('returns the normalised address of an IP literal', async () => {
    const { addresses } = await validateRecipient(
      'http://[0:0:0:0:0:ffff:93.184.216.34]/',
      defaultRecipientValidators(),
    );
    expect(addresses).toEqual([{ address: '::ffff:5db8:d822', family: 6 }]);
  });

  it('names the blocked address and rule in the message', async () => {
    const err = await rejection(validateRecipient('http://127.0.0.1/', defaultRecipientValidators()));
    expect(err.message).toBe('Recipient blocked: 127.0.0.1 is in a blocked network (loopback 127.0.0.0/8)');
    expect(err).toMatchObject({ address: '127.0.0.1', url: 'http://127.0.0.1' });
  });

  it('keeps credentials, paths and queries out of the error', async () => {
    for (const url of [
      'http://user:secret@127.0.0.1/path?token=abc',
      'http://user:secret@1.1.1.1:8080/p?token=abc',
    ]) {
      const err = await rejection(validateRecipient(url, defaultRecipientValidators()));
      expect(err).toBeInstanceOf(SecurityError);
      expect(JSON.stringify({ ...err, message: err.message })).not.toMatch(/secret|token|path|\/p\?/);
    }
  });

  it('rejects malformed URLs with InvalidUrlError, not SecurityError', async () => {
    for (const url of ['not a url', '', 'http://', 'http://[fe80::1%25eth0]/', 'http://1.2.3.4.5/']) {
      const err = await rejection(validateRecipient(url, defaultRecipientValidators()));
      expect(err).toBeInstanceOf(InvalidUrlError);
      expect(isSecurityError(err)).toBe(false);
      expect(err.message).toMatch(/Invalid recipient URL/);
    }
  });

  it('accepts a URL object and does not share it with the validators', async () => {
    const input = new URL('https://1.1.1.1/hooks');
    const result = await validateRecipient(input, [
      (url) => {
        url.pathname = '/changed';
      },
    ]);
    expect(input.pathname).toBe('/hooks');
    expect(result.url).not.toBe(input);
  });
});

describe('validateRecipient with a custom lookup', () => {
  it('blocks a name that resolves to loopback', async () => {
    const { lookup, calls } = fakeLookup({ 'evil.example': ['127.0.0.1'] });
    const err = await rejection(
      validateRecipient('http://evil.example/', defaultRecipientValidators(), lookup),
    );
    expect(err).toBeInstanceOf(SecurityError);
    expect(err.message).toBe(
      'Recipient blocked: 127.0.0.1 (address of evil.example) is in a blocked network (loopback 127.0.0.0/8)',
    );
    expect(calls).toEqual(['evil.example']);
  });

  it('blocks when any one of several answers is internal', async () => {
    const { lookup } = fakeLookup({ 'mixed.example': ['93.184.216.34', '127.0.0.1'] });
    const err = await rejection(
      validateRecipient('https://mixed.example/', defaultRecipientValidators(), lookup),
    );
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as SecurityError).address).toBe('127.0.0.1');
  });

  it('blocks IPv6 and IPv4-mapped answers', async () => {
    const { lookup } = fakeLookup({
      v6: ['2606:4700:4700::1111', '::1'],
      mapped: ['::ffff:169.254.169.254'],
    });
    for (const host of ['v6', 'mapped']) {
      const err = await rejection(
        validateRecipient(`https://${host}/`, defaultRecipientValidators(), lookup),
      );
      expect(err).toBeInstanceOf(SecurityError);
    }
  });

  it('resolves once for all validators and returns the addresses', async () => {
    const { lookup, calls } = fakeLookup({
      'ok.example': ['93.184.216.34', '2606:2800:220:1::', '93.184.216.34'],
    });
    const validators = [...defaultRecipientValidators(), blockCidrNetwork('10.0.0.0/8'), blockInternalIps()];
    const result = await validateRecipient('https://ok.example/hooks', validators, lookup);
    expect(calls).toEqual(['ok.example']);
    expect(result.addresses).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::', family: 6 },
    ]);
  });

  it('passes DNS failures through as they are (retryable, not a SecurityError)', async () => {
    const { lookup } = fakeLookup({ empty: [] });
    for (const host of ['nx.example', 'empty']) {
      const err = await rejection(
        validateRecipient(`https://${host}/`, defaultRecipientValidators(), lookup),
      );
      expect(isSecurityError(err)).toBe(false);
      expect((err as NodeJS.ErrnoException).code).toBe('ENOTFOUND');
    }
  });

  it('blocks an answer that is not an IP address', async () => {
    const { lookup } = fakeLookup({ weird: ['localhost'] });
    const err = await rejection(validateRecipient('https://weird/', defaultRecipientValidators(), lookup));
    expect(err).toBeInstanceOf(SecurityError);
  });
});

describe('blockInternalIps', () => {
  it('blocks localhost when used on its own (resolving the name itself)', async () => {
    await expect(blockInternalIps()(new URL('http://localhost/'))).rejects.toThrow(SecurityError);
  });

  it('checks ctx.addresses instead of resolving, in any literal form', async () => {
    const validate = blockInternalIps();
    const url = new URL('http://not-resolved.invalid/');
    for (const raw of ['127.0.0.1', '0x7f.1', '2130706433', '::ffff:127.0.0.1', 'fe80::1%eth0', '[::1]']) {
      await expect(validate(url, { addresses: [raw] })).rejects.toThrow(SecurityError);
    }
    await expect(validate(url, { addresses: ['93.184.216.34'] })).resolves.toBeUndefined();
    await expect(validate(url, { addresses: [] })).rejects.toThrow(/no address/);
    await expect(validate(url, { addresses: ['not-an-ip'] })).rejects.toThrow(/not an IP address/);
  });

  describe('allow', () => {
    const validators = [
      blockInternalIps({ allow: ['127.0.0.0/8', '::1/128'] }),
      ensureProtocol('http', 'https'),
    ];

    it('lets a loopback receiver on any port through when ensurePort is left out', async () => {
      for (const url of [
        'http://127.0.0.1:8080/',
        'http://127.0.0.2:1/',
        'http://[::1]:3000/',
        'http://[::ffff:127.0.0.1]:9/',
      ]) {
        await expect(validateRecipient(url, validators)).resolves.toMatchObject({ url: new URL(url) });
      }
    });

    it('relaxes nothing else', async () => {
      for (const url of [
        'http://10.0.0.1/',
        'http://169.254.169.254/',
        'http://0.0.0.0:8080/',
        'http://[fe80::1]/',
        'http://[64:ff9b::7f00:1]/', // NAT64 of loopback is another host, not this one
        'http://[2002:7f00:1::]/',
        'ftp://127.0.0.1/',
      ]) {
        await expect(validateRecipient(url, validators)).rejects.toThrow(SecurityError);
      }
    });

    it('exempts exactly the listed networks', async () => {
      const v4Only = [blockInternalIps({ allow: ['127.0.0.0/8'] })];
      await expect(validateRecipient('http://127.0.0.1:8080/', v4Only)).resolves.toBeDefined();
      await expect(validateRecipient('http://[::ffff:7f00:1]:8080/', v4Only)).resolves.toBeDefined();
      await expect(validateRecipient('http://[::1]:8080/', v4Only)).rejects.toThrow(SecurityError);
      const single = [blockInternalIps({ allow: ['127.0.0.1'] })];
      await expect(validateRecipient('http://127.0.0.1/', single)).resolves.toBeDefined();
      await expect(validateRecipient('http://127.0.0.2/', single)).rejects.toThrow(SecurityError);
    });

    it('rejects a malformed network when the validator is built', () => {
      expect(() => blockInternalIps({ allow: ['127.0.0.0/33'] })).toThrow(/not a network.*CIDR/);
      expect(() => blockInternalIps({ allow: ['localhost'] })).toThrow(/not a network/);
    });
  });
});

describe('ensureProtocol', () => {
  it('allows only the given schemes', async () => {
    const httpOnly = ensureProtocol('http');
    expect(() => httpOnly(new URL('http://x.example/'))).not.toThrow();
    expect(() => httpOnly(new URL('https://x.example/'))).toThrow(SecurityError);
    expect(() => httpOnly(new URL('file:///etc/passwd'))).toThrow(/scheme "file:"/);
  });

  it('compares schemes case-insensitively, with or without the colon', () => {
    for (const v of [ensureProtocol('HTTPS'), ensureProtocol('https:'), ensureProtocol('Https://')]) {
      expect(() => v(new URL('HTTPS://x.example/'))).not.toThrow();
      expect(() => v(new URL('https://x.example/'))).not.toThrow();
      expect(() => v(new URL('http://x.example/'))).toThrow(SecurityError);
    }
  });

  it('needs at least one scheme', () => {
    expect(() => ensureProtocol()).toThrow(/at least one scheme/);
  });
});

describe('ensurePort', () => {
  it('accepts no explicit port and listed ports only', () => {
    const v = ensurePort(80, 443);
    expect(() => v(new URL('http://x.example/'))).not.toThrow();
    expect(() => v(new URL('http://x.example:80/'))).not.toThrow();
    expect(() => v(new URL('https://x.example:443/'))).not.toThrow();
    expect(() => v(new URL('https://x.example:80/'))).not.toThrow();
    expect(() => v(new URL('http://x.example:8080/'))).toThrow(
      /port 8080 .* not allowed \(allowed: 80, 443\)/,
    );
    expect(() => ensurePort(8443)(new URL('https://x.example:8443/'))).not.toThrow();
  });

  it('rejects invalid ports when built', () => {
    expect(() => ensurePort()).toThrow(/at least one port/);
    expect(() => ensurePort(0)).toThrow(/not a port/);
    expect(() => ensurePort(70000)).toThrow(/not a port/);
  });
});

describe('blockCidrNetwork', () => {
  it('blocks the listed networks, including IPv6 spellings of IPv4 addresses', async () => {
    const v = [blockCidrNetwork('93.184.216.0/24', '2606:4700::/32', '8.8.8.8')];
    for (const url of [
      'http://93.184.216.34/',
      'http://[::ffff:93.184.216.34]/',
      'http://[64:ff9b::5db8:d822]/',
      'http://[2606:4700:4700::1111]/',
      'http://8.8.8.8/',
      'http://134744072/',
    ]) {
      const err = await rejection(validateRecipient(url, v));
      expect(err).toBeInstanceOf(SecurityError);
    }
    await expect(validateRecipient('http://1.1.1.1/', v)).resolves.toBeDefined();
    await expect(validateRecipient('http://8.8.4.4/', v)).resolves.toBeDefined();
  });

  it('names the network in the message', async () => {
    const err = await rejection(validateRecipient('http://10.1.2.3/', [blockCidrNetwork('10.0.0.0/8')]));
    expect(err.message).toBe('Recipient blocked: 10.1.2.3 is in a blocked network (10.0.0.0/8)');
  });

  it('rejects malformed networks when built', () => {
    expect(() => blockCidrNetwork()).toThrow(/at least one network/);
    expect(() => blockCidrNetwork('10.0.0.0/8', 'nope')).toThrow(/"nope" is not a network/);
  });
});

describe('parseIpLiteral', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['0X7F000001', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['127.0.0.1.', '127.0.0.1'],
    ['0', '0.0.0.0'],
    [' 10.0.0.1 ', '10.0.0.1'],
    ['[::ffff:7f00:1]', '::ffff:7f00:1'],
    ['[::ffff:127.0.0.1]', '::ffff:7f00:1'],
    ['[0:0:0:0:0:ffff:127.0.0.1]', '::ffff:7f00:1'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['[fe80::1%25eth0]', 'fe80::1'],
    ['FD00:EC2::254', 'fd00:ec2::254'],
  ])('%s → %s', (input, want) => {
    expect(parseIpLiteral(input)).toBe(want);
  });

  it.each([
    'example.com',
    'localhost',
    'localhost.',
    'deadbeef',
    '1e3',
    '1.2.3.4.5',
    '256.0.0.1',
    '',
    '[]',
    ':::',
    '127.0.0.1/8',
  ])('%s is not an IP literal', (input) => {
    expect(parseIpLiteral(input)).toBeNull();
  });
});
