// Cursor pagination shared by `GET /hooks`, `GET /hooks/:id/deliveries` and `DeliveryLogService`: the page size and
// the opaque cursor (the sort key of the last row of a page). Imports nothing.

/** Page sizes: `limit` defaults to 50 and may be at most 250. */
export const PAGE_LIMITS = { default: 50, max: 250 } as const;

/** A query parameter (or service argument) that is not valid; `parameter` names it. Answered 400 by `/hooks`. */
export class InvalidParameterError extends Error {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(message);
    this.name = 'InvalidParameterError';
  }
}

/**
 * The page size: undefined → the default; a whole number from 1 to 250 given as a number or a decimal string (as a
 * query parameter arrives); anything else (0, negative, 251, `abc`, `1.5`, `?limit=1&limit=2`) is an
 * `InvalidParameterError` naming `limit`.
 */
export function parseLimit(value: unknown, parameter = 'limit'): number {
  if (value === undefined) return PAGE_LIMITS.default;
  const n =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && /^\d{1,4}$/.test(value)
        ? Number(value)
        : NaN;
  if (!Number.isInteger(n) || n < 1 || n > PAGE_LIMITS.max) {
    throw new InvalidParameterError(
      parameter,
      `${parameter} must be a whole number from 1 to ${PAGE_LIMITS.max} (got ${describe(value)})`,
    );
  }
  return n;
}

/** An opaque cursor for the sort key `parts` (base64url of a JSON array). */
export function encodeCursor(parts: (string | number)[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

/**
 * The sort key a cursor carries, or an `InvalidParameterError` naming `parameter` when it is not one this module made
 * with `kinds` (a JSON array of that many strings/numbers, canonically encoded). The caller still checks each part.
 */
export function decodeCursor(
  value: unknown,
  kinds: ('string' | 'number')[],
  parameter = 'cursor',
): (string | number)[] {
  const bad = () => invalidCursor(parameter);
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{1,1024}$/.test(value)) throw bad();
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (
    !Array.isArray(parts) ||
    parts.length !== kinds.length ||
    parts.some((p, i) => typeof p !== kinds[i]) ||
    encodeCursor(parts) !== value
  ) {
    throw bad();
  }
  return parts as (string | number)[];
}

/** The error for a cursor this module did not hand out. */
export function invalidCursor(parameter = 'cursor'): InvalidParameterError {
  return new InvalidParameterError(
    parameter,
    `${parameter} is not a valid cursor: use the one in the Link header (rel="next") of the previous page`,
  );
}

/** A value for an error message: short, and never an object's contents. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return 'a list (the parameter was given more than once)';
  if (value === null || typeof value !== 'object') return String(value);
  return 'an object';
}
