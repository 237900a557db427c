import { operators, TRANSITION_PREFIX } from './operators.js';

/** An immutable filter over an object and, for `now_*` operators, its previous version. */
export interface Q {
  /** Whether `obj` passes the filter; `previous` is the version before the change (absent: every value was null). */
  matches(obj: unknown, previous?: unknown): boolean;
  /** A new filter matching when this one or any of `others` matches. */
  or(...others: QLike[]): Q;
  /** A new filter matching when this one and all of `others` match. */
  and(...others: QLike[]): Q;
  /** A new filter matching exactly when this one does not. */
  not(): Q;
}

/** What filter options accept: a `Q` or a plain filter object such as `{ state__eq: 'PUBLISHED' }`. */
export type QLike = Q | Record<string, unknown>;

type Test = (obj: unknown, previous: unknown) => boolean;

// A registered symbol rather than `instanceof`, so a Q built by another copy of the package is still recognised.
const BRAND = Symbol.for('nestjs-thorn.Q');

const messages = {
  notAFilter: (got: unknown) =>
    `Q: expected a Q or a filter object like { state__eq: 'PUBLISHED' }, got ${Array.isArray(got) ? 'an array' : String(got)}`,
  missingPath: (key: string) =>
    `Q: no property path in "${key}": name the property to test, e.g. "state${key}"`,
  unknownOperator: (key: string) =>
    `Q: unknown operator in "${key}": use "${key}__eq" to compare for equality`,
};

// On every Q: whether it has a `now_*` condition (reads the previous version) anywhere inside (registered, like BRAND).
const TRANSITIONS = Symbol.for('nestjs-thorn.Q.transitions');

class QNode implements Q {
  readonly [BRAND] = true;
  readonly [TRANSITIONS]: boolean;

  constructor(
    private readonly test: Test,
    transitions: boolean,
  ) {
    this[TRANSITIONS] = transitions;
    Object.freeze(this);
  }

  matches(obj: unknown, previous?: unknown): boolean {
    return this.test(obj, previous);
  }

  or(...others: QLike[]): Q {
    return or(this, ...others);
  }

  and(...others: QLike[]): Q {
    return and(this, ...others);
  }

  not(): Q {
    return not(this);
  }
}

/**
 * Reads `path` from `obj` by plain property access; a missing intermediate object yields undefined.
 * Properties are read, never called: a zero-argument method at the path is returned as the function itself
 * (Thorn called such methods). Expose computed values with a getter instead.
 */
function read(obj: unknown, path: readonly string[]): unknown {
  let value = obj;
  for (const name of path) {
    if (value === null || value === undefined) return undefined;
    value = (value as Record<string, unknown>)[name];
  }
  return value;
}

/** Compiles one `path__op: value` entry. `now_<op>` holds when `<op>` holds now and did not hold before. */
function condition(key: string, value: unknown): Test {
  const cut = key.lastIndexOf('__');
  if (cut === 0) throw new Error(messages.missingPath(key));
  const name = cut < 0 ? '' : key.slice(cut + 2);
  const transition = name.startsWith(TRANSITION_PREFIX);
  const opName = transition ? name.slice(TRANSITION_PREFIX.length) : name;
  if (cut < 0 || !Object.hasOwn(operators, opName)) throw new Error(messages.unknownOperator(key));
  const op = operators[opName];
  const path = key.slice(0, cut).split('__');
  if (!transition) return (obj) => op(read(obj, path), value);
  return (obj, previous) =>
    op(read(obj, path), value) &&
    !op(previous === null || previous === undefined ? null : read(previous, path), value);
}

function isPlainFilter(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Builds a filter from `path__op` keys (ANDed); `Q()` and `Q({})` match everything. */
function build(fields: Record<string, unknown> = {}): Q {
  if (!isPlainFilter(fields)) throw new TypeError(messages.notAFilter(fields));
  const tests = Object.entries(fields).map(([key, value]) => condition(key, value));
  const transitions = Object.keys(fields).some((key) =>
    key.slice(key.lastIndexOf('__') + 2).startsWith(TRANSITION_PREFIX),
  );
  return new QNode((obj, previous) => tests.every((test) => test(obj, previous)), transitions);
}

/** Whether `x` is a `Q` (from any copy of this package). */
export function isQ(x: unknown): x is Q {
  return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[BRAND] === true;
}

/**
 * Whether `q` compares with the previous version (has a `now_*` condition). A Q from another copy of the package can't
 * say, so it counts as one.
 */
export function hasTransitions(q: Q): boolean {
  const flag = (q as Partial<Record<typeof TRANSITIONS, boolean>>)[TRANSITIONS];
  return flag ?? true;
}

/** Converts a filter option to a `Q`: a `Q` is returned as is, a plain object is compiled, undefined matches all. */
export function toQ(filter: QLike | null | undefined): Q {
  if (filter === null || filter === undefined) return build();
  return isQ(filter) ? filter : build(filter as Record<string, unknown>);
}

/** A filter matching when any of `qs` matches (none given: matches nothing). */
function or(...qs: QLike[]): Q {
  const all = qs.map(toQ);
  return new QNode((obj, previous) => all.some((q) => q.matches(obj, previous)), all.some(hasTransitions));
}

/** A filter matching when all of `qs` match (none given: matches everything). */
function and(...qs: QLike[]): Q {
  const all = qs.map(toQ);
  return new QNode((obj, previous) => all.every((q) => q.matches(obj, previous)), all.some(hasTransitions));
}

/** A filter matching exactly when `q` does not. */
function not(q: QLike): Q {
  const inner = toQ(q);
  return new QNode((obj, previous) => !inner.matches(obj, previous), hasTransitions(inner));
}

/** Builds a filter: `Q({ state__eq: 'PUBLISHED' })`; combine with `Q.or`, `Q.and`, `Q.not` or the fluent methods. */
export const Q = Object.assign(
  function Q(fields?: Record<string, unknown>): Q {
    return build(fields);
  },
  { or, and, not },
);
