import type { Repository } from 'typeorm';
import { readVersion, type VersionTarget } from './subscriber-version.js';

/**
 * Most distinct stored patterns kept in memory; with more, the cache holds nothing and every event queries (as with
 * `subscriptionCacheTtl: 0`), re-trying to load them at most every `OVERFLOW_RETRY_MS`.
 */
export const MAX_CACHED_PATTERNS = 10_000;
const OVERFLOW_RETRY_MS = 60_000;

/**
 * The distinct `event` values of the subscription table (only the patterns: no URL, no secret), so an event none of
 * whose candidate patterns is stored skips the lookup query.
 *
 * Staleness bound: the copy is used for at most `ttl` ms after the check that produced it started; then the next event
 * reads the table's version row (one primary-key read) and, when it changed, reloads the patterns before answering.
 * A check that started at `c` sees every write committed before `c`, so a subscription committed at `T` is seen by
 * every lookup that starts after `T + ttl`, whichever process or SQL wrote it (the version is bumped by triggers).
 * `invalidate()` (this process's own writes, on commit) makes the next lookup check at once.
 */
export class PatternCache {
  /** The stored patterns; null = unknown (no check yet, a failed check, too many, no version row): query. */
  private patterns: Set<string> | null = null;
  private version: string | null = null;
  /** When the check that confirmed `patterns` started (performance.now()). */
  private checkedAt = -Infinity;
  /** Bumped by `invalidate()`: a check started before that can't confirm anything. */
  private epoch = 0;
  private checking: { epoch: number; started: number; done: Promise<void> } | null = null;
  private overflowedAt = -Infinity;

  constructor(
    private readonly repository: Repository<any>,
    private readonly target: VersionTarget,
    private readonly eventColumn: string,
    readonly ttl: number,
  ) {}

  /**
   * Whether one of `candidates` may be stored: false only when the copy is current (within the bound) and holds none
   * of them. A promise when the version has to be checked first.
   */
  mayMatch(candidates: readonly string[]): boolean | Promise<boolean> {
    if (performance.now() - this.checkedAt < this.ttl) return this.holdsAny(candidates);
    return this.check().then(() => this.holdsAny(candidates));
  }

  /** Forget the confirmation: the next lookup checks the version (and reloads if it changed). */
  invalidate(): void {
    this.epoch++;
    this.checkedAt = -Infinity;
  }

  /** The cached pattern count, or null when the cache holds nothing (tests, diagnostics). */
  get size(): number | null {
    return this.patterns?.size ?? null;
  }

  private holdsAny(candidates: readonly string[]): boolean {
    const p = this.patterns;
    if (p === null) return true;
    for (const c of candidates) if (p.has(c)) return true;
    return false;
  }

  /**
   * One check at a time: lookups arriving meanwhile wait for it, unless it started before an invalidation or more than
   * `ttl` ago (a slow check can't confirm writes committed after it started, so it can't serve a lookup past the bound).
   */
  private check(): Promise<void> {
    const now = performance.now();
    const c = this.checking;
    if (c && c.epoch === this.epoch && now - c.started < this.ttl) return c.done;
    const epoch = this.epoch;
    const done = this.run(epoch, now).finally(() => {
      if (this.checking?.done === done) this.checking = null;
    });
    this.checking = { epoch, started: now, done };
    return done;
  }

  private async run(epoch: number, started: number): Promise<void> {
    let version: string | null;
    let patterns: Set<string> | null = this.patterns;
    try {
      version = await readVersion(this.repository, this.target);
      if (version === null) {
        // no version row: nothing bumps it, so no copy can be trusted
        patterns = null;
      } else if (version !== this.version || patterns === null) {
        if (started - this.overflowedAt < OVERFLOW_RETRY_MS) {
          // too many patterns a moment ago: don't reload them on every write
          patterns = null;
        } else {
          // the version is read first: the patterns read next hold at least every write it counts
          patterns = await this.load();
          if (patterns === null) this.overflowedAt = started;
        }
      }
    } catch {
      // unknown (e.g. the database is down): query every time until a check succeeds; the query reports the error
      if (epoch === this.epoch) {
        this.patterns = null;
        this.version = null;
      }
      return;
    }
    // an invalidation while this ran, or a newer check already answered: leave the state to the newer one
    if (epoch !== this.epoch || started <= this.checkedAt) return;
    this.patterns = patterns;
    this.version = version;
    this.checkedAt = started;
  }

  /** The distinct stored patterns, or null when there are more than `MAX_CACHED_PATTERNS`. */
  private async load(): Promise<Set<string> | null> {
    const t = this.target;
    const rows: { event: string }[] = await this.repository.query(
      `SELECT DISTINCT ${this.eventColumn} AS "event" FROM ${t.tableSql} LIMIT ${MAX_CACHED_PATTERNS + 1}`,
    );
    if (rows.length > MAX_CACHED_PATTERNS) return null;
    return new Set(rows.map((r) => r.event));
  }
}
