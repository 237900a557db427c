import { describe, expect, it } from '@jest/globals';
import { formCodec, jsonCodec } from '../../lib/delivery/codecs.js';
import { modelMessage } from '../../lib/events/model-event.js';
import { PayloadError, toJsonSafe } from '../../lib/events/payload.js';

class Decimal {
  constructor(private readonly v: string) {}
  toFixed() {
    return this.v;
  }
  toString() {
    return this.v;
  }
}

describe('codecs', () => {
  it('JSON-encodes the payload', () => {
    expect(jsonCodec({ a: 1, b: [true, null] })).toBe('{"a":1,"b":[true,null]}');
  });
  it('form-encodes top-level keys and JSON-encodes nested values per key', () => {
    const body = formCodec({ event: 'a.b', n: 3, data: { x: [1, 2] }, none: null, skip: undefined });
    const parsed = new URLSearchParams(body as string);
    expect(parsed.get('event')).toBe('a.b');
    expect(parsed.get('n')).toBe('3');
    expect(JSON.parse(parsed.get('data')!)).toEqual({ x: [1, 2] });
    expect(parsed.get('none')).toBe('');
    expect(parsed.has('skip')).toBe(false);
  });
});

describe('toJsonSafe (payload encoding)', () => {
  it('converts Date, bigint, decimals, Sets and toJSON objects', () => {
    const out = toJsonSafe({
      at: new Date('2026-05-06T07:08:09.010Z'),
      big: 12345678901234567890n,
      price: new Decimal('12.50'),
      tags: new Set(['a', 'b']),
      custom: { toJSON: () => ({ y: 1 }) },
      list: [undefined, 1],
      gone: undefined,
    });
    expect(out).toEqual({
      at: '2026-05-06T07:08:09.010Z',
      big: '12345678901234567890',
      price: '12.50',
      tags: ['a', 'b'],
      custom: { y: 1 },
      list: [null, 1],
    });
  });

  it.each([
    [{ f: () => 1 }, /data\.f: a function/],
    [{ s: Symbol('x') }, /data\.s: a symbol/],
    [{ n: NaN }, /data\.n: NaN is not a finite number/],
    [{ m: new Map() }, /data\.m: Map/],
    [{ d: new Date('nope') }, /data\.d: invalid Date/],
    [{ b: Buffer.from('x') }, /data\.b: Buffer/],
  ])('rejects %p with a PayloadError naming the path', (value, message) => {
    expect(() => toJsonSafe(value)).toThrow(PayloadError);
    expect(() => toJsonSafe(value)).toThrow(message);
  });

  it('rejects cycles but accepts shared references', () => {
    const shared = { x: 1 };
    expect(toJsonSafe({ a: shared, b: shared })).toEqual({ a: { x: 1 }, b: { x: 1 } });
    const cyc: any = { a: {} };
    cyc.a.back = cyc;
    expect(() => toJsonSafe(cyc)).toThrow(/data\.a\.back: circular reference/);
  });

  it('keeps every own key, __proto__ and constructor included, at every depth', () => {
    // JSON.parse makes __proto__ an own key, as a request body parsed by any JSON body parser does
    const data = JSON.parse(
      '{"__proto__":{"polluted":1},"constructor":"c","nested":{"__proto__":[1],"toString":"t"},"list":[{"__proto__":null}]}',
    );
    const out = toJsonSafe(data) as Record<string, any>;
    expect(Object.keys(out)).toEqual(['__proto__', 'constructor', 'nested', 'list']);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({ polluted: 1 });
    expect(out.polluted).toBeUndefined();
    const body = jsonCodec(out) as string;
    expect(body).toBe(
      '{"__proto__":{"polluted":1},"constructor":"c","nested":{"__proto__":[1],"toString":"t"},"list":[{"__proto__":null}]}',
    );
    expect(new URLSearchParams(formCodec(out) as string).get('__proto__')).toBe('{"polluted":1}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('keeps __proto__ and constructor keys of requestData in a model message', () => {
    const message = modelMessage('a.b', null, null, {}, JSON.parse('{"__proto__":{"x":1},"constructor":2}'));
    expect(jsonCodec(message)).toBe(
      '{"event":"a.b","ref":null,"sender":null,"data":{},"__proto__":{"x":1},"constructor":2}',
    );
  });
});
