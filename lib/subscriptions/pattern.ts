/**
 * Event-name patterns: dot-separated words; `*` matches exactly one word, `#` zero or more, `*` alone every event.
 * Matching is case-sensitive.
 */
export function matchesPattern(pattern: string, name: string): boolean {
  if (pattern === '*' || pattern === '#') return true;
  if (pattern === name) return true;
  if (!pattern.includes('*') && !pattern.includes('#')) return false;
  return matchWords(pattern.split('.'), 0, name.split('.'), 0);
}

function matchWords(p: string[], i: number, n: string[], j: number): boolean {
  while (i < p.length) {
    const w = p[i];
    if (w === '#') {
      // try every length of the run `#` absorbs, shortest first
      for (let k = j; k <= n.length; k++) if (matchWords(p, i + 1, n, k)) return true;
      return false;
    }
    if (j >= n.length || (w !== '*' && w !== n[j])) return false;
    i++;
    j++;
  }
  return j === n.length;
}

/** Longest storable pattern (the `event` column is varchar(190)): longer candidates can't match anything. */
const MAX_PATTERN_LENGTH = 190;

/** Longest event name (in words) for which stored lookups enumerate every `*` substitution. */
const MAX_EXPANDED_WORDS = 6;

/**
 * Every stored pattern that can match `name`, so the lookup is one indexed `event IN (...)` query instead of a scan:
 * each word or `*` (2^n), `*`, `#`, and `#` as the first or last word around any of those. Stored patterns are
 * restricted to that shape by `storedPatternError` (a `#` only at the start or end), which keeps this list short
 * (19 candidates for a two-word name, 39 for three).
 */
export function candidatePatterns(name: string): string[] {
  // event names repeat (every save of an entity raises the same few), so the list is computed once per name
  let cached = candidateCache.get(name);
  if (!cached) {
    if (candidateCache.size >= MAX_CACHED_NAMES) candidateCache.clear();
    cached = Object.freeze(computeCandidates(name)) as string[];
    candidateCache.set(name, cached);
  }
  return cached;
}

const MAX_CACHED_NAMES = 1000;
const candidateCache = new Map<string, string[]>();

function computeCandidates(name: string): string[] {
  const words = name.split('.');
  const out = new Set<string>(['*', '#', name]);
  const variants = (ws: string[]): string[][] => {
    if (ws.length > MAX_EXPANDED_WORDS) return [ws];
    let acc: string[][] = [[]];
    for (const w of ws)
      acc = acc.flatMap((a) => [
        [...a, w],
        [...a, '*'],
      ]);
    return acc;
  };
  for (const v of variants(words)) out.add(v.join('.'));
  for (let k = 1; k <= words.length; k++) {
    // even "*.*…*.#" of k words is longer than any storable pattern from here on
    if (2 * k + 1 > MAX_PATTERN_LENGTH) break;
    for (const v of variants(words.slice(0, k))) out.add([...v, '#'].join('.'));
    for (const v of variants(words.slice(words.length - k))) out.add(['#', ...v].join('.'));
  }
  // code points, as the varchar(190) column and the /hooks length check count them
  return [...out].filter((p) => p.length <= MAX_PATTERN_LENGTH || [...p].length <= MAX_PATTERN_LENGTH);
}

/** Why `pattern` can't be stored as a subscription's `event`, or null when it can. */
export function storedPatternError(pattern: string): string | null {
  if (typeof pattern !== 'string' || pattern.trim() === '') return 'must be a non-empty string';
  if (pattern !== pattern.trim()) return 'must not start or end with white space';
  const words = pattern.split('.');
  if (words.some((w) => w === '')) return 'must be dot-separated words without empty words';
  if (words.some((w) => w !== '*' && w !== '#' && /[*#]/.test(w))) return '"*" and "#" must be whole words';
  const hashes = words.filter((w) => w === '#').length;
  if (
    hashes > 1 ||
    (hashes === 1 && words.length > 1 && words[0] !== '#' && words[words.length - 1] !== '#')
  ) {
    return 'may use "#" only once, as its first or last word (e.g. "article.#" or "#.created")';
  }
  if (words.includes('*') && words.filter((w) => w !== '#').length > MAX_EXPANDED_WORDS) {
    return `may use "*" only in patterns of at most ${MAX_EXPANDED_WORDS} words besides "#"`;
  }
  return null;
}
