import { PayloadError } from '../delivery/payload-error.js';

// defined in delivery/ (the bottom layer, which throws it too); exported from here as before
export { PayloadError };

/**
 * Sets `obj[key]` as an own property, `__proto__` included: assigning `obj['__proto__']` would replace the object's
 * prototype instead, and the key would vanish from the JSON body.
 */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

function isDecimalLike(v: object): boolean {
  // decimal.js, big.js, bignumber.js and Prisma/TypeORM decimal wrappers all expose these two.
  const o = v as { toFixed?: unknown; constructor?: { name?: string } };
  return typeof o.toFixed === 'function' && /decimal|big/i.test(o.constructor?.name ?? '');
}

/**
 * Returns a JSON-safe deep copy of `value`: `Date` → ISO-8601, `bigint` and decimal objects → string, objects with
 * `toJSON()` → its result. Anything else that JSON cannot carry (functions, symbols, cycles, non-finite numbers,
 * Maps, typed arrays) throws a `PayloadError` naming the path.
 */
export function toJsonSafe(value: unknown, path = 'data', seen: Set<object> = new Set()): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value))
        throw new PayloadError(`Cannot encode ${path}: ${value} is not a finite number`);
      return value;
    case 'bigint':
      return value.toString();
    case 'undefined':
      return undefined;
    case 'function':
    case 'symbol':
      throw new PayloadError(`Cannot encode ${path}: a ${typeof value} is not JSON-serialisable`);
  }
  if (value === null) return null;
  const obj = value as object;
  if (obj instanceof Date) {
    if (Number.isNaN(obj.getTime())) throw new PayloadError(`Cannot encode ${path}: invalid Date`);
    return obj.toISOString();
  }
  if (isDecimalLike(obj)) return String(obj);
  if (seen.has(obj)) throw new PayloadError(`Cannot encode ${path}: circular reference`);
  if (obj instanceof Map || ArrayBuffer.isView(obj) || obj instanceof ArrayBuffer || obj instanceof Promise) {
    throw new PayloadError(
      `Cannot encode ${path}: ${obj.constructor.name} is not JSON-serialisable; convert it first`,
    );
  }
  if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') {
    return toJsonSafe((obj as { toJSON: () => unknown }).toJSON(), path, seen);
  }
  seen.add(obj);
  try {
    if (Array.isArray(obj) || obj instanceof Set) {
      return Array.from(obj as Iterable<unknown>, (v, i) => {
        const out = toJsonSafe(v, `${path}[${i}]`, seen);
        return out === undefined ? null : out;
      });
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) {
      const enc = toJsonSafe(v, `${path}.${k}`, seen);
      if (enc !== undefined) setOwn(out, k, enc);
    }
    return out;
  } finally {
    seen.delete(obj);
  }
}
