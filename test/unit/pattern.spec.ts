import { describe, expect, it } from '@jest/globals';
import { candidatePatterns, matchesPattern, storedPatternError } from '../../lib/subscriptions/pattern.js';

describe('event pattern matching (SPEC §4.3)', () => {
  it.each([
    ['article.created', 'article.created', true],
    ['article.*', 'article.created', true],
    ['*.created', 'article.created', true],
    ['*', 'article.created', true],
    ['*', 'a.b.c.d', true],
    ['article.*', 'article.tag.added', false],
    ['article.#', 'article.tag.added', true],
    ['article.#', 'article', true],
    ['#.added', 'article.tag.added', true],
    ['#', 'x', true],
    ['article.created', 'article.changed', false],
    ['Article.created', 'article.created', false],
    ['article.*.added', 'article.tag.added', true],
    ['article.*.added', 'article.added', false],
    ['a.#.d', 'a.b.c.d', true],
    ['a.#.d', 'a.d', true],
    ['a.#.d', 'a.b.c', false],
    ['article', 'article.created', false],
  ])('%s ~ %s → %s', (pattern, name, expected) => {
    expect(matchesPattern(pattern, name)).toBe(expected);
  });

  // Every storable pattern over a small alphabet: the indexed candidate list must contain exactly the matching ones.
  const names = ['a', 'a.b', 'a.b.c', 'x.b.c', 'a.b.c.d', 'a.b.c.d.e.f.g'];
  const words = ['a', 'b', 'c', 'd', 'x', '*'];
  const patterns = new Set<string>(['*', '#']);
  for (const w1 of words) {
    patterns.add(w1);
    patterns.add(`${w1}.#`);
    patterns.add(`#.${w1}`);
    for (const w2 of words) {
      patterns.add(`${w1}.${w2}`);
      patterns.add(`${w1}.${w2}.#`);
      patterns.add(`#.${w1}.${w2}`);
      for (const w3 of words) patterns.add(`${w1}.${w2}.${w3}`);
    }
  }
  it.each(names)('candidatePatterns(%s) finds every stored pattern that matches it', (name) => {
    const candidates = new Set(candidatePatterns(name));
    for (const p of patterns) {
      expect(storedPatternError(p)).toBeNull();
      if (matchesPattern(p, name)) expect([p, candidates.has(p)]).toEqual([p, true]);
    }
  });

  it('keeps the candidate list short', () => {
    expect(candidatePatterns('article.created').length).toBeLessThanOrEqual(19);
    expect(candidatePatterns('a.b.c').length).toBeLessThanOrEqual(39);
    expect(candidatePatterns('a.b.c.d.e.f.g.h.i.j').length).toBeLessThan(300);
  });

  it.each([
    ['', /non-empty/],
    [' a.b', /white space/],
    ['a..b', /empty words/],
    ['a*.b', /whole words/],
    ['a.#.b', /first or last/],
    ['#.a.#', /only once/],
    ['a.b.c.d.e.f.*', /at most 6/],
  ])('storedPatternError(%j) explains what is wrong', (pattern, why) => {
    expect(storedPatternError(pattern)).toMatch(why);
  });
});

describe('candidatePatterns on hostile names', () => {
  it('stays bounded for a 3,000-word name: no candidate longer than a storable pattern', () => {
    const name = Array.from({ length: 3000 }, (_, i) => `w${i}`).join('.');
    const c = candidatePatterns(name);
    expect(c.every((p) => p.length <= 190)).toBe(true);
    expect(c.length).toBeLessThan(400);
    expect(c).toEqual(expect.arrayContaining(['*', '#', 'w0.#', '*.#', '#.w2999']));
  });
});

describe('candidatePatterns length limit', () => {
  it('counts code points like the varchar(190) column: a storable emoji pattern is still a candidate', () => {
    const name = `order.${'😀'.repeat(95)}`; // 101 code points, 196 UTF-16 code units
    expect([...name].length).toBeLessThanOrEqual(190);
    expect(candidatePatterns(name)).toEqual(expect.arrayContaining([name, 'order.*', '#']));
  });
});
