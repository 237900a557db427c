import { describe, expect, it } from '@jest/globals';
import { Q, isQ, toQ } from '../../lib/filters/index.js';

const d = (iso: string) => new Date(iso);
const JAN = '2024-01-01T00:00:00Z';
const FEB = '2024-02-01T00:00:00Z';

/** [operator, A (value at path), B (filter value), expected] */
type Row = [string, unknown, unknown, boolean];

const rows: Row[] = [
  // eq / ne, including dates and the true/false truthiness forms
  ['eq', 'PUBLISHED', 'PUBLISHED', true],
  ['eq', 'DRAFT', 'PUBLISHED', false],
  ['eq', 1, '1', false],
  ['eq', undefined, null, false],
  ['eq', d(JAN), d(JAN), true],
  ['eq', d(JAN), d(FEB), false],
  ['eq', d(JAN), JAN, false],
  ['eq', 'x', true, true],
  ['eq', 1, true, true],
  ['eq', '', true, false],
  ['eq', 0, true, false],
  ['eq', null, true, false],
  ['eq', '', false, true],
  ['eq', 0, false, true],
  ['eq', undefined, false, true],
  ['eq', 'x', false, false],
  ['ne', 'DRAFT', 'PUBLISHED', true],
  ['ne', 'PUBLISHED', 'PUBLISHED', false],
  ['ne', d(JAN), d(FEB), true],
  ['ne', d(JAN), d(JAN), false],
  ['ne', '', true, true],
  ['ne', 'x', true, false],
  ['ne', 'x', false, true],
  ['ne', 0, false, false],
  // ordered comparisons
  ['gt', 3, 2, true],
  ['gt', 2, 2, false],
  ['gte', 2, 2, true],
  ['gte', 1, 2, false],
  ['lt', 1, 2, true],
  ['lt', 2, 2, false],
  ['lte', 2, 2, true],
  ['lte', 3, 2, false],
  ['gt', 'b', 'a', true],
  ['gt', 'a', 'b', false],
  ['gt', 3n, 2, true],
  ['lt', 3n, 2n, false],
  ['gt', d(FEB), d(JAN), true],
  ['gt', d(JAN), d(FEB), false],
  ['lte', d(JAN), d(JAN), true],
  ['gt', null, -1, false],
  ['lt', undefined, 1, false],
  ['lte', null, 0, false],
  ['gte', undefined, 0, false],
  ['gt', '10', 9, false],
  ['lt', 1, NaN, false],
  // in / not_in over arrays, Sets, Maps, objects and strings
  ['in', 'a', ['a', 'b'], true],
  ['in', 'c', ['a', 'b'], false],
  ['in', d(JAN), [d(FEB), d(JAN)], true],
  ['in', d(JAN), [d(FEB)], false],
  ['in', 'a', new Set(['a']), true],
  ['in', 'c', new Set(['a']), false],
  ['in', 'k', new Map([['k', 1]]), true],
  ['in', 1, new Map([['k', 1]]), false],
  ['in', 'k', { k: 0 }, true],
  ['in', 'toString', { k: 0 }, false],
  ['in', null, { null: 1, k: 0 }, false],
  ['in', 'ell', 'hello', true],
  ['in', 'xyz', 'hello', false],
  ['in', 1, '123', false],
  ['in', 'a', null, false],
  ['not_in', 'c', ['a', 'b'], true],
  ['not_in', 'a', ['a', 'b'], false],
  ['not_in', 'c', new Set(['a']), true],
  ['not_in', 'a', new Set(['a']), false],
  ['not_in', 'c', { k: 0 }, true],
  ['not_in', 'k', { k: 0 }, false],
  ['not_in', 'xyz', 'hello', true],
  ['not_in', 'ell', 'hello', false],
  // contains over strings, arrays, Sets, Maps and objects
  ['contains', 'hello', 'ell', true],
  ['contains', 'hello', 'xyz', false],
  ['contains', '123', 1, false],
  ['contains', ['a', 'b'], 'b', true],
  ['contains', ['a', 'b'], 'c', false],
  ['contains', [d(JAN)], d(JAN), true],
  ['contains', new Set([1, 2]), 2, true],
  ['contains', new Set([1, 2]), 3, false],
  ['contains', new Map([['k', 1]]), 'k', true],
  ['contains', new Map([['k', 1]]), 1, false],
  ['contains', { k: 0 }, 'k', true],
  ['contains', { k: 0 }, 'toString', false],
  ['contains', null, 'a', false],
  ['contains', undefined, 'a', false],
  // startswith / endswith
  ['startswith', 'The Road', 'The', true],
  ['startswith', 'A Road', 'The', false],
  ['startswith', 42, '4', false],
  ['endswith', 'The Road', 'Road', true],
  ['endswith', 'The Road', 'The', false],
  ['endswith', ['Road'], 'Road', false],
  // is / is_not
  ['is', 'x', 'x', true],
  ['is', 1, '1', false],
  ['is', NaN, NaN, true],
  ['is', 0, -0, false],
  ['is', null, null, true],
  ['is', undefined, null, true],
  ['is', 0, null, false],
  ['is', d(JAN), d(JAN), false],
  ['is_not', 1, '1', true],
  ['is_not', 'x', 'x', false],
  ['is_not', 0, null, true],
  ['is_not', null, null, false],
  ['is_not', undefined, null, false],
];

describe('Q operators', () => {
  it.each(rows)('%s: A=%p B=%p → %p', (op, a, b, expected) => {
    expect(Q({ [`value__${op}`]: b }).matches({ value: a })).toBe(expected);
  });

  it('is compares by identity', () => {
    const author = { name: 'a' };
    expect(Q({ author__is: author }).matches({ author })).toBe(true);
    expect(Q({ author__is: { name: 'a' } }).matches({ author })).toBe(false);
  });
});

describe('Q paths', () => {
  const article = { author: { account: { is_staff: true, name: 'ann' } } };

  it('follows nested properties three levels deep', () => {
    expect(Q({ author__account__is_staff__eq: true }).matches(article)).toBe(true);
    expect(Q({ author__account__name__eq: 'bob' }).matches(article)).toBe(false);
  });

  it.each([
    ['a missing top-level object', {}],
    ['a null intermediate', { author: null }],
    ['a missing intermediate', { author: {} }],
    ['an undefined root', undefined],
    ['a null root', null],
  ])('yields undefined through %s without throwing', (_label, obj) => {
    expect(Q({ author__account__name__is: undefined }).matches(obj)).toBe(true);
    expect(Q({ author__account__name__eq: 'ann' }).matches(obj)).toBe(false);
    expect(Q({ author__account__name__is: null }).matches(obj)).toBe(true);
  });

  it('reads properties of primitives', () => {
    expect(Q({ title__length__gt: 3 }).matches({ title: 'four' })).toBe(true);
  });

  it('reads getters but never calls methods', () => {
    class Article {
      constructor(private readonly secret: string) {}
      get state() {
        return this.secret;
      }
      isDraft() {
        return true;
      }
    }
    expect(Q({ state__eq: 'PUBLISHED' }).matches(new Article('PUBLISHED'))).toBe(true);
    expect(Q({ isDraft__is: true }).matches(new Article('x'))).toBe(false);
    expect(Q({ isDraft__is: Article.prototype.isDraft }).matches(new Article('x'))).toBe(true);
  });
});

describe('Q construction', () => {
  it.each([
    'state',
    'author__account',
    'state__equals',
    'state__now_bogus',
    'state__now_now_eq',
    'a__toString',
  ])('rejects %p and suggests "<key>__eq"', (key) => {
    expect(() => Q({ [key]: 'PUBLISHED' })).toThrow(
      `Q: unknown operator in "${key}": use "${key}__eq" to compare for equality`,
    );
  });

  it('rejects a key with an operator but no path', () => {
    expect(() => Q({ __eq: 1 })).toThrow('e.g. "state__eq"');
  });

  it.each([[null], [[{ a__eq: 1 }]], ['state__eq']])('rejects %p as the fields object', (fields) => {
    expect(() => Q(fields as never)).toThrow(TypeError);
  });

  it('Q() and Q({}) match everything; their negation matches nothing', () => {
    for (const q of [Q(), Q({})]) {
      for (const obj of [{}, { a: 1 }, null, undefined, 0]) {
        expect(q.matches(obj)).toBe(true);
        expect(q.not().matches(obj)).toBe(false);
        expect(Q.not(q).matches(obj)).toBe(false);
      }
    }
  });

  it('ANDs several keys in one object', () => {
    const q = Q({ state__eq: 'PUBLISHED', views__gte: 10 });
    expect(q.matches({ state: 'PUBLISHED', views: 10 })).toBe(true);
    expect(q.matches({ state: 'PUBLISHED', views: 9 })).toBe(false);
    expect(q.matches({ state: 'DRAFT', views: 10 })).toBe(false);
  });

  it('builds frozen objects that combinators do not change', () => {
    const a = Q({ x__eq: 1 });
    expect(Object.isFrozen(a)).toBe(true);
    a.or({ x__eq: 2 });
    a.not();
    expect(a.matches({ x: 2 })).toBe(false);
    expect(a.matches({ x: 1 })).toBe(true);
  });
});

describe('Q combinators', () => {
  const published = Q({ state__eq: 'PUBLISHED' });
  const preview = Q({ state__eq: 'PREVIEW' });
  const the = Q({ title__startswith: 'The' });
  const objs = ['PUBLISHED', 'PREVIEW', 'DRAFT'].flatMap((state) =>
    ['The End', 'An End'].map((title) => ({ state, title })),
  );

  it.each([
    ['Q.or', Q.or(published, preview), [true, true, true, true, false, false]],
    ['fluent or', published.or(preview), [true, true, true, true, false, false]],
    [
      'Q.or with a plain object',
      Q.or(published, { state__eq: 'PREVIEW' }),
      [true, true, true, true, false, false],
    ],
    ['Q.and', Q.and(published, the), [true, false, false, false, false, false]],
    ['fluent and', published.and(the), [true, false, false, false, false, false]],
    [
      'fluent and with a plain object',
      published.and({ title__startswith: 'The' }),
      [true, false, false, false, false, false],
    ],
    ['Q.not', Q.not(published), [false, false, true, true, true, true]],
    ['fluent not', published.not(), [false, false, true, true, true, true]],
    ['double not', published.not().not(), [true, true, false, false, false, false]],
    // Thorn's docs example: published | (preview & ~startswith('The'))
    ['nested', Q.or(published, preview.and(the.not())), [true, true, false, true, false, false]],
    ['empty Q.or', Q.or(), [false, false, false, false, false, false]],
    ['empty Q.and', Q.and(), [true, true, true, true, true, true]],
  ])('%s', (_label, q, expected) => {
    expect(objs.map((o) => (q as Q).matches(o))).toEqual(expected);
  });

  it('passes the previous version through combinators', () => {
    const q = Q.or(Q({ state__now_eq: 'PUBLISHED' }), { views__now_gt: 100 }).not();
    expect(q.matches({ state: 'PUBLISHED', views: 0 }, { state: 'DRAFT', views: 0 })).toBe(false);
    expect(q.matches({ state: 'PUBLISHED', views: 0 }, { state: 'PUBLISHED', views: 0 })).toBe(true);
  });
});

describe('toQ / isQ', () => {
  it('recognises Q objects without instanceof', () => {
    expect(isQ(Q())).toBe(true);
    expect(isQ(Q.or())).toBe(true);
    expect(isQ(Q({ a__eq: 1 }).not())).toBe(true);
    expect(isQ({ matches: () => true, or() {}, and() {}, not() {} })).toBe(false);
    expect(isQ({})).toBe(false);
    expect(isQ(null)).toBe(false);
    expect(isQ(Q)).toBe(false);
  });

  it('returns a Q unchanged, compiles a plain object, and matches all for undefined', () => {
    const q = Q({ a__eq: 1 });
    expect(toQ(q)).toBe(q);
    const fromObject = toQ({ a__eq: 1 });
    expect(isQ(fromObject)).toBe(true);
    expect(fromObject.matches({ a: 1 })).toBe(true);
    expect(fromObject.matches({ a: 2 })).toBe(false);
    expect(toQ(undefined).matches({ a: 2 })).toBe(true);
    expect(toQ(undefined).not().matches({ a: 2 })).toBe(false);
    expect(() => toQ({ a: 1 })).toThrow('use "a__eq"');
  });
});

/** [operator, B, previous A, new A, fires] — every now_<op> with a transition and without one. */
const transitions: [string, unknown, unknown, unknown, boolean][] = [
  ['eq', 'PUBLISHED', 'DRAFT', 'PUBLISHED', true],
  ['eq', 'PUBLISHED', 'PUBLISHED', 'PUBLISHED', false],
  ['eq', 'PUBLISHED', 'PUBLISHED', 'DRAFT', false],
  ['eq', true, 0, 1, true],
  ['eq', true, 1, 2, false],
  ['eq', d(FEB), d(JAN), d(FEB), true],
  ['eq', d(FEB), d(FEB), d(FEB), false],
  ['ne', 'PUBLISHED', 'PUBLISHED', 'DRAFT', true],
  ['ne', 'PUBLISHED', 'DRAFT', 'ARCHIVED', false],
  ['ne', 'PUBLISHED', 'DRAFT', 'PUBLISHED', false],
  ['gt', 10, 10, 11, true],
  ['gt', 10, 11, 12, false],
  ['gte', 22, 21, 22, true],
  ['gte', 22, 22, 22, false],
  ['gte', 22, 23, 24, false],
  ['lt', 10, 10, 9, true],
  ['lt', 10, 9, 8, false],
  ['lte', 10, 11, 10, true],
  ['lte', 10, 10, 10, false],
  ['in', ['a', 'b'], 'c', 'a', true],
  ['in', ['a', 'b'], 'b', 'a', false],
  ['not_in', ['a', 'b'], 'a', 'c', true],
  ['not_in', ['a', 'b'], 'c', 'd', false],
  ['contains', 'x', ['y'], ['x', 'y'], true],
  ['contains', 'x', ['x'], ['x', 'y'], false],
  ['startswith', 'The', 'A Road', 'The Road', true],
  ['startswith', 'The', 'The Way', 'The Road', false],
  ['endswith', 'Road', 'The Way', 'The Road', true],
  ['endswith', 'Road', 'A Road', 'The Road', false],
  ['is', null, 'x', null, true],
  ['is', null, undefined, null, false],
  ['is_not', null, null, 'x', true],
  ['is_not', null, 'y', 'x', false],
];

describe('Q now_* transitions with a previous version', () => {
  it.each(transitions)('now_%s %p: %p → %p fires %p', (op, b, before, after, fires) => {
    expect(Q({ [`value__now_${op}`]: b }).matches({ value: after }, { value: before })).toBe(fires);
  });

  it.each(transitions.filter((row) => row[4]))(
    'now_%s %p does not fire on the reverse transition %p ← %p',
    (op, b, before, after) => {
      expect(Q({ [`value__now_${op}`]: b }).matches({ value: before }, { value: after })).toBe(false);
    },
  );

  it('reads the previous value along the same nested path', () => {
    const q = Q({ author__account__state__now_eq: 'ACTIVE' });
    const at = (state: unknown) => ({ author: { account: { state } } });
    expect(q.matches(at('ACTIVE'), at('LOCKED'))).toBe(true);
    expect(q.matches(at('ACTIVE'), at('ACTIVE'))).toBe(false);
    expect(q.matches(at('ACTIVE'), { author: null })).toBe(true);
  });
});

/** [operator, B, new A, fires] — no previous version: every previous value counts as null. */
const creations: [string, unknown, unknown, boolean][] = [
  ['eq', 'PUBLISHED', 'PUBLISHED', true],
  ['eq', 'PUBLISHED', 'DRAFT', false],
  ['eq', null, null, false],
  ['eq', true, 'x', true],
  ['eq', false, 0, false],
  ['ne', 'PUBLISHED', 'DRAFT', false],
  ['ne', null, 'x', true],
  ['ne', true, '', false],
  ['gt', 0, 1, true],
  ['gt', 0, -1, false],
  ['gte', 22, 22, true],
  ['gte', 22, 21, false],
  ['lt', 0, -1, true],
  ['lt', 0, 1, false],
  ['lte', 0, 0, true],
  ['lte', 0, 1, false],
  ['in', ['a'], 'a', true],
  ['in', ['a', null], 'a', false],
  ['not_in', ['a'], 'b', false],
  ['not_in', [null], 'b', true],
  ['contains', 'x', ['x'], true],
  ['contains', 'x', ['y'], false],
  ['startswith', 'The', 'The Road', true],
  ['startswith', 'The', 'A Road', false],
  ['endswith', 'Road', 'The Road', true],
  ['endswith', 'Road', 'The Way', false],
  ['is', 'x', 'x', true],
  ['is', null, null, false],
  ['is_not', null, 'x', true],
  ['is_not', 'x', 'y', false],
];

describe('Q now_* transitions without a previous version', () => {
  it.each(creations)('now_%s %p on create with %p fires %p', (op, b, after, fires) => {
    const q = Q({ [`value__now_${op}`]: b });
    expect(q.matches({ value: after })).toBe(fires);
    expect(q.matches({ value: after }, undefined)).toBe(fires);
    expect(q.matches({ value: after }, null)).toBe(fires);
  });

  it('treats a previous value missing from an existing previous object as undefined, not null', () => {
    // `eq: null` is strict: the previous undefined is not null, so the transition into null fires.
    expect(Q({ value__now_eq: null }).matches({ value: null }, {})).toBe(true);
    expect(Q({ value__now_eq: null }).matches({ value: null })).toBe(false);
  });
});
