import { describe, expect, it } from '@jest/globals';
import { customHeaderProblem, encodeHeaderValue } from '../../lib/delivery/headers.js';
import { compileNameTemplate, escapeEventWord } from '../../lib/events/name-template.js';

describe('encodeHeaderValue (generated header values)', () => {
  it.each([
    ['article.created', 'article.created'],
    ['a:b/c?d=e&f (g)', 'a:b/c?d=e&f (g)'],
    ['user.Zoë', 'user.Zo%C3%AB'],
    ['名前.€', '%E5%90%8D%E5%89%8D.%E2%82%AC'],
    ['😀', '%F0%9F%98%80'],
    ['50%', '50%25'],
    ['%41', '%2541'],
    ['  x  ', '%20%20x%20%20'],
    ['   ', '%20%20%20'],
    [' x', '%20x'],
    ['x ', 'x%20'],
    ['a  b', 'a  b'],
    [' é ', '%20%C3%A9%20'],
    // a long inner run of spaces before a character to encode (the old trailing-space pattern retried at each space)
    [`a${' '.repeat(20_000)}\u0001`, `a${' '.repeat(20_000)}%01`],
    [`${' '.repeat(20_000)}é`, `${'%20'.repeat(20_000)}%C3%A9`],
    ['tab\there\r\n', 'tab%09here%0D%0A'],
    ['', ''],
  ])('%p → %p, printable ASCII that decodes back', (value, encoded) => {
    expect(encodeHeaderValue(value)).toBe(encoded);
    expect(encodeHeaderValue(value)).toMatch(/^(?:[!-~](?:[ -~]*[!-~])?)?$/);
    expect(decodeURIComponent(encodeHeaderValue(value))).toBe(value);
  });

  it('throws a URIError for a lone surrogate, which no encoding can carry', () => {
    expect(() => encodeHeaderValue('a\uD800b')).toThrow(URIError);
  });
});

describe('customHeaderProblem', () => {
  it('accepts tokens with tab, printable ASCII and Latin-1 values', () => {
    expect(customHeaderProblem('X-Api-Key', 'k3y !~')).toBeNull();
    expect(customHeaderProblem('x_weird.name+1', 'a\tb')).toBeNull();
    expect(customHeaderProblem('X-Name', 'Zoë ÿ')).toBeNull();
  });

  it('names what is wrong, never the value', () => {
    const secret = 'hunter2';
    for (const value of [`${secret}\n`, `${secret}\u0000`, `${secret}€`, `${secret}\u007f`]) {
      const problem = customHeaderProblem('X-Token', value);
      expect(problem).toMatch(/^Header "X-Token" cannot be sent: its value contains /);
      expect(problem).not.toContain(secret);
    }
    expect(customHeaderProblem('X-Token', 'a\r\nb')).toMatch(/a line break/);
    expect(customHeaderProblem('X-Token', 'a€')).toMatch(/beyond Latin-1/);
    expect(customHeaderProblem('X-Token', 'a\u0001')).toMatch(/a control character/);
    expect(customHeaderProblem('X Token', 'v')).toMatch(
      /^Header name "X Token" is not a valid HTTP header name/,
    );
    expect(customHeaderProblem('X-Tökén', 'v')).toMatch(/not a valid HTTP header name/);
    expect(customHeaderProblem('', 'v')).toMatch(/not a valid HTTP header name/);
  });
});

describe('template values in event names', () => {
  it('escapes ".", "*", "#" and "%" so each value is exactly one word, reversibly', () => {
    const t = compileNameTemplate('user.{username}.joined');
    expect(t.render({ username: 'bob.admin' })).toBe('user.bob%2Eadmin.joined');
    expect(t.render({ username: '*' })).toBe('user.%2A.joined');
    expect(t.render({ username: '#' })).toBe('user.%23.joined');
    expect(t.render({ username: '100%' })).toBe('user.100%25.joined');
    expect(t.render({ username: 'Zoë' })).toBe('user.Zoë.joined');
    expect(t.render({ username: 7 })).toBe('user.7.joined');
    for (const v of ['a.b.c', '*.#', '%2E', 'x%y']) {
      const word = escapeEventWord(v);
      expect(word).not.toMatch(/[.*#]/);
      expect(decodeURIComponent(word)).toBe(v);
    }
    // the template's own dots and text are left alone
    expect(compileNameTemplate('{.team.slug}.x').render({ team: { slug: 'a.b' } })).toBe('a%2Eb.x');
  });
});
