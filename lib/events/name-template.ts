/** Reads a dotted property path (`'author.account.user'`) by plain property access; a missing step yields undefined. */
export function getPath(obj: unknown, path: string | readonly string[]): unknown {
  const parts = typeof path === 'string' ? path.split('.') : path;
  let value = obj;
  for (const name of parts) {
    if (value === null || value === undefined) return undefined;
    value = (value as Record<string, unknown>)[name];
  }
  return value;
}

/** A compiled event-name template such as `'user.{username}'` or Thorn's `'user.{.username}'`. */
export interface NameTemplate {
  /** The template as written. */
  readonly source: string;
  /** Dotted paths it reads from the instance (empty for a plain name). */
  readonly paths: readonly string[];
  /**
   * The event name for `instance`; throws when a path is null or undefined. In each value `%`, `.`, `*` and `#` are
   * percent-encoded (`%25`, `%2E`, `%2A`, `%23`), so a value is always exactly one word of the name.
   */
  render(instance: unknown): string;
}

const PLACEHOLDER = /\{([^{}]*)\}/g;
// Characters that would change a name's words or act as wildcards, and `%` so the escaping can be undone.
const WORD_SPECIALS = /[%.*#]/g;

/**
 * One template value as one word of an event name: `%`, `.`, `*` and `#` percent-encoded, so `'a.b'` cannot add a
 * word and `'*'` is no wildcard (`decodeURIComponent` gives the value back).
 */
export function escapeEventWord(value: string): string {
  return value.replace(WORD_SPECIALS, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Compiles an event name: `{path}` and `{.path}` are replaced by the (dotted) property of the instance. */
export function compileNameTemplate(source: string): NameTemplate {
  if (typeof source !== 'string' || !source)
    throw new TypeError('Model event name must be a non-empty string');
  const paths: string[] = [];
  for (const [, raw] of source.matchAll(PLACEHOLDER)) {
    const path = raw.trim().replace(/^\./, '');
    if (!path || path.split('.').some((p) => !p)) {
      throw new Error(`Model event name "${source}": "{${raw}}" names no property; use e.g. "{username}"`);
    }
    paths.push(path);
  }
  if (/[{}]/.test(source.replace(PLACEHOLDER, ''))) {
    throw new Error(`Model event name "${source}" has an unbalanced "{" or "}"`);
  }
  if (!paths.length) return { source, paths, render: () => source };
  return {
    source,
    paths,
    render(instance) {
      return source.replace(PLACEHOLDER, (_, raw: string) => {
        const path = raw.trim().replace(/^\./, '');
        const value = getPath(instance, path);
        if (value === null || value === undefined) {
          throw new Error(`Model event name "${source}": "${path}" is ${value} on the instance`);
        }
        return escapeEventWord(String(value));
      });
    },
  };
}
