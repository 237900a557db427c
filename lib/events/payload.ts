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
export function toJsonSafe(value: unknown, path = 'data'): unknown {
  return new JsonCopy(path).copy(value);
}

/**
 * One deep copy. The path of the value being copied is kept as a stack of keys and only turned into text for an
 * error (this runs on every event sent: no string per property).
 */
class JsonCopy {
  private readonly keys: (string | number)[] = [];
  private readonly seen = new Set<object>();

  constructor(private readonly root: string) {}

  copy(value: unknown): unknown {
    switch (typeof value) {
      case 'string':
      case 'boolean':
        return value;
      case 'number':
        if (!Number.isFinite(value)) throw this.error(`${value} is not a finite number`);
        return value;
      case 'bigint':
        return value.toString();
      case 'undefined':
        return undefined;
      case 'function':
      case 'symbol':
        throw this.error(`a ${typeof value} is not JSON-serialisable`);
    }
    if (value === null) return null;
    const obj = value as object;
    if (obj instanceof Date) {
      if (Number.isNaN(obj.getTime())) throw this.error('invalid Date');
      return obj.toISOString();
    }
    if (isDecimalLike(obj)) return String(obj);
    if (this.seen.has(obj)) throw this.error('circular reference');
    if (
      obj instanceof Map ||
      ArrayBuffer.isView(obj) ||
      obj instanceof ArrayBuffer ||
      obj instanceof Promise
    ) {
      throw this.error(`${obj.constructor.name} is not JSON-serialisable; convert it first`);
    }
    if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') {
      return this.copy((obj as { toJSON: () => unknown }).toJSON());
    }
    this.seen.add(obj);
    const keys = this.keys;
    try {
      if (Array.isArray(obj) || obj instanceof Set) {
        const items = Array.isArray(obj) ? (obj as unknown[]) : [...(obj as Set<unknown>)];
        const out = new Array<unknown>(items.length);
        for (let i = 0; i < items.length; i++) {
          keys.push(i);
          const enc = this.copy(items[i]);
          keys.pop();
          out[i] = enc === undefined ? null : enc;
        }
        return out;
      }
      const out: Record<string, unknown> = {};
      const names = Object.keys(obj);
      for (let i = 0; i < names.length; i++) {
        const k = names[i];
        keys.push(k);
        const enc = this.copy((obj as Record<string, unknown>)[k]);
        keys.pop();
        if (enc !== undefined) setOwn(out, k, enc);
      }
      return out;
    } finally {
      this.seen.delete(obj);
    }
  }

  /** A `PayloadError` naming the path being copied, e.g. `data.items[2].at`. */
  private error(why: string): PayloadError {
    let path = this.root;
    for (const k of this.keys) path += typeof k === 'number' ? `[${k}]` : `.${k}`;
    return new PayloadError(`Cannot encode ${path}: ${why}`);
  }
}
