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
  /** The event name for `instance`; throws when a path is null or undefined. */
  render(instance: unknown): string;
}

const PLACEHOLDER = /\{([^{}]*)\}/g;

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
        return String(value);
      });
    },
  };
}
