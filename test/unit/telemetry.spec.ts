import { describe, expect, it } from '@jest/globals';
import { scrub, urlParts } from '../../lib/telemetry/telemetry.js';
import { resolveThornOptions } from '../../lib/thorn-options.js';

describe('telemetry helpers and option', () => {
  it('propagateTraceContext is off by default and must be a boolean', () => {
    expect(resolveThornOptions({}).propagateTraceContext).toBe(false);
    expect(resolveThornOptions({ propagateTraceContext: true }).propagateTraceContext).toBe(true);
    expect(() => resolveThornOptions({ propagateTraceContext: 'yes' as any })).toThrow(
      /"propagateTraceContext" is invalid.*true or false/,
    );
  });

  it.each([
    ['https://u:p@hooks.example.com/in?token=t#f', 'https://hooks.example.com/in', 'hooks.example.com', 443],
    ['http://example.com', 'http://example.com/', 'example.com', 80],
    ['http://[::1]:8080/x?y', 'http://[::1]:8080/x', '::1', 8080],
  ])('urlParts(%s) drops credentials, query and fragment', (url, full, host, port) => {
    expect(urlParts(url)).toMatchObject({ full, host, port });
  });

  it('urlParts of garbage is a placeholder, never the input', () => {
    expect(urlParts('not a url ?secret=1').full).toBe('(invalid URL)');
  });

  it('scrub cuts every URL in an error text to scheme, host and path', () => {
    expect(scrub('GET https://bob:pw@api.example.com/v1/x?key=K failed; retry http://h/y#s')).toBe(
      'GET https://api.example.com/v1/x failed; retry http://h/y',
    );
  });
});
