import { describe, expect, it, jest } from '@jest/globals';
import { MAX_CACHED_PATTERNS, PatternCache } from '../../lib/subscriptions/pattern-cache.js';
import { candidatePatterns } from '../../lib/subscriptions/pattern.js';
import { versionTarget } from '../../lib/subscriptions/subscriber-version.js';

/**
 * A fake table: its version and patterns, and every query the cache ran. `hold` makes the next queries wait until
 * released, to interleave a check with writes and invalidations.
 */
class FakeTable {
  version: number | null = 1;
  patterns: string[] = [];
  readonly queries: string[] = [];
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;

  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.gate = null;
    this.open?.();
  }

  readonly repository = {
    query: async (sql: string): Promise<unknown[]> => {
      this.queries.push(sql);
      // snapshot at the start of the statement, as a database does
      const result = sql.includes('"version"')
        ? this.version === null
          ? []
          : [{ version: this.version }]
        : this.patterns.map((event) => ({ event }));
      if (this.gate) await this.gate;
      return result;
    },
  };
}

const target = versionTarget({ options: { type: 'postgres' } } as any, 'thorn_subscriber')!;
const ARTICLE = candidatePatterns('article.created');
const USER = candidatePatterns('user.created');

function cacheOf(table: FakeTable, ttl = 1000): PatternCache {
  return new PatternCache(table.repository as any, target, '"event"', ttl);
}

describe('PatternCache', () => {
  it('answers from memory within the ttl: no query, and false only for events no stored pattern can match', async () => {
    const table = new FakeTable();
    table.patterns = ['article.*'];
    const cache = cacheOf(table, 60_000);
    expect(await cache.mayMatch(ARTICLE)).toBe(true);
    expect(table.queries).toHaveLength(2); // version, then patterns
    expect(cache.mayMatch(USER)).toBe(false);
    expect(cache.mayMatch(ARTICLE)).toBe(true);
    expect(table.queries).toHaveLength(2);
  });

  it('reads the version again once the ttl has passed, and reloads the patterns only when it changed', async () => {
    const now = jest.spyOn(performance, 'now');
    try {
      let t = 1_000;
      now.mockImplementation(() => t);
      const table = new FakeTable();
      const cache = cacheOf(table, 1000);
      expect(await cache.mayMatch(USER)).toBe(false);
      expect(table.queries).toHaveLength(2);
      table.patterns = ['user.*']; // written without bumping: not visible, and not looked for
      t += 999;
      expect(cache.mayMatch(USER)).toBe(false);
      t += 1;
      expect(await cache.mayMatch(USER)).toBe(false); // version unchanged: one read, no reload
      expect(table.queries).toHaveLength(3);
      table.version = 2;
      t += 1000;
      expect(await cache.mayMatch(USER)).toBe(true);
      expect(table.queries).toHaveLength(5);
    } finally {
      now.mockRestore();
    }
  });

  it('a check that started before invalidate() confirms nothing: the next lookup checks again and sees the write', async () => {
    const table = new FakeTable();
    const cache = cacheOf(table, 60_000);
    table.hold();
    const first = cache.mayMatch(USER); // its version read sees version 1, no patterns
    await Promise.resolve();
    // a write commits and is invalidated while that check is still running
    table.version = 2;
    table.patterns = ['user.created'];
    cache.invalidate();
    table.release();
    await first;
    expect(await cache.mayMatch(USER)).toBe(true);
    expect(cache.size).toBe(1);
  });

  it('a lookup past the bound does not wait for a check that started more than ttl ago: it starts its own', async () => {
    const now = jest.spyOn(performance, 'now');
    try {
      let t = 1_000;
      now.mockImplementation(() => t);
      const table = new FakeTable();
      const cache = cacheOf(table, 1000);
      table.hold();
      const slow = cache.mayMatch(USER);
      table.release();
      table.hold();
      await new Promise((r) => setImmediate(r));
      // the slow check has read version 1 and no patterns; its answer is still on the way
      expect(table.queries).toHaveLength(2);
      table.version = 2;
      table.patterns = ['user.created'];
      t += 500;
      const joined = cache.mayMatch(USER); // within the bound of the slow check: waits for it
      t += 600;
      const late = cache.mayMatch(USER); // 1100 ms after the slow check started: must see the write
      table.release();
      expect(await late).toBe(true);
      // within their bound, either answer is allowed
      await Promise.all([slow, joined]);
      expect(table.queries.filter((q) => q.includes('"version"'))).toHaveLength(2);
      expect(cache.size).toBe(1);
    } finally {
      now.mockRestore();
    }
  });

  it('concurrent lookups share one check', async () => {
    const table = new FakeTable();
    const cache = cacheOf(table, 60_000);
    table.hold();
    const all = Promise.all([cache.mayMatch(USER), cache.mayMatch(ARTICLE), cache.mayMatch(USER)]);
    table.release();
    expect(await all).toEqual([false, false, false]);
    expect(table.queries).toHaveLength(2);
  });

  it('without a version row (nothing would bump it) or after a failed check, it answers "query"', async () => {
    const table = new FakeTable();
    table.version = null;
    const cache = cacheOf(table, 60_000);
    expect(await cache.mayMatch(USER)).toBe(true);
    expect(cache.size).toBeNull();

    const failing = new PatternCache(
      { query: async () => Promise.reject(new Error('connection refused')) } as any,
      target,
      '"event"',
      60_000,
    );
    expect(await failing.mayMatch(USER)).toBe(true);
    expect(await failing.mayMatch(USER)).toBe(true);
  });

  it(`holds nothing past ${MAX_CACHED_PATTERNS} distinct patterns, and does not reload them on every write`, async () => {
    const table = new FakeTable();
    table.patterns = Array.from({ length: MAX_CACHED_PATTERNS + 1 }, (_, i) => `p${i}.created`);
    const cache = cacheOf(table, 1);
    expect(await cache.mayMatch(USER)).toBe(true);
    expect(cache.size).toBeNull();
    table.version = 2;
    cache.invalidate();
    expect(await cache.mayMatch(USER)).toBe(true);
    // a version read only: the patterns are tried again a minute later at the soonest
    expect(table.queries.filter((q) => q.includes('DISTINCT'))).toHaveLength(1);
  });
});
