import { types } from 'node:util';

/** A filter operator: does the value at the path (`a`) satisfy the filter value (`b`)? */
export type Operator = (a: unknown, b: unknown) => boolean;

const isNil = (x: unknown): x is null | undefined => x === null || x === undefined;

/** `===`, except that two Dates are equal when they hold the same time. */
function same(a: unknown, b: unknown): boolean {
  return types.isDate(a) && types.isDate(b) ? a.getTime() === b.getTime() : a === b;
}

/** Whether `item` is in `container`: substring, array element, Set member, Map key or own object key. */
function has(container: unknown, item: unknown): boolean {
  if (typeof container === 'string') return typeof item === 'string' && container.includes(item);
  if (Array.isArray(container)) return container.some((x) => same(x, item));
  if (types.isSet(container) || types.isMap(container)) return container.has(item);
  if (typeof container !== 'object' || container === null) return false;
  const isKey = typeof item === 'string' || typeof item === 'number' || typeof item === 'symbol';
  return isKey && Object.hasOwn(container, item);
}

/**
 * Builds an ordering operator. Dates order by time; numbers and bigints order against each other, strings
 * against strings. Anything else (null, undefined, a string against a number, ...) never matches: no coercion.
 */
function ordered(test: (x: number | bigint | string, y: number | bigint | string) => boolean): Operator {
  const key = (v: unknown) => (types.isDate(v) ? v.getTime() : v);
  const numeric = (v: unknown) => typeof v === 'number' || typeof v === 'bigint';
  return (a, b) => {
    const [x, y] = [key(a), key(b)];
    const comparable = (numeric(x) && numeric(y)) || (typeof x === 'string' && typeof y === 'string');
    return comparable && test(x as number | string, y as number | string);
  };
}

const eq: Operator = (a, b) => (b === true ? Boolean(a) : b === false ? !a : same(a, b));
const is: Operator = (a, b) => (b === null ? isNil(a) : Object.is(a, b));

/** The base operators of SPEC §4.1; each one also exists as `now_<op>` (a transition, see `q.ts`). */
export const operators: Readonly<Record<string, Operator>> = Object.freeze({
  eq,
  ne: (a, b) => !eq(a, b),
  gt: ordered((x, y) => x > y),
  gte: ordered((x, y) => x >= y),
  lt: ordered((x, y) => x < y),
  lte: ordered((x, y) => x <= y),
  in: (a, b) => has(b, a),
  not_in: (a, b) => !has(b, a),
  contains: (a, b) => has(a, b),
  startswith: (a, b) => typeof a === 'string' && typeof b === 'string' && a.startsWith(b),
  endswith: (a, b) => typeof a === 'string' && typeof b === 'string' && a.endsWith(b),
  is,
  is_not: (a, b) => !is(a, b),
} satisfies Record<string, Operator>);

/** Prefix that turns an operator into a transition: holds now and did not hold for the previous version. */
export const TRANSITION_PREFIX = 'now_';
