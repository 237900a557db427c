import { getPath } from './name-template.js';

/** Turns a model instance into its URL (the message `ref`); relative URLs get the module's `baseUrl` prepended. */
export type Reverser = ((instance: any) => string | null | undefined) & {
  /** Dotted instance paths the reverser reads (used to load relations when Thorn loads the instance itself). */
  readonly paths?: readonly string[];
};

const PARAM = /:([A-Za-z_][A-Za-z0-9_]*)/g;

/**
 * A reverser from a URL template and the instance paths of its `:param` placeholders:
 * `modelReverser('/articles/:uuid', { uuid: 'uuid' })`, `modelReverser('/c/:name', { name: 'category.name' })`.
 * Values are URL-encoded; a null or undefined value throws.
 */
export function modelReverser(template: string, params: Record<string, string> = {}): Reverser {
  if (typeof template !== 'string' || !template)
    throw new TypeError('modelReverser: template must be a string');
  const names = [...template.matchAll(PARAM)].map((m) => m[1]);
  for (const name of names) {
    if (typeof params[name] !== 'string' || !params[name]) {
      throw new Error(
        `modelReverser("${template}"): no instance path for ":${name}"; pass { ${name}: '<path>' }`,
      );
    }
  }
  for (const name of Object.keys(params)) {
    if (!names.includes(name))
      throw new Error(`modelReverser("${template}"): the template has no ":${name}"`);
  }
  const reverse = (instance: unknown): string =>
    template.replace(PARAM, (_, name: string) => {
      const value = getPath(instance, params[name]);
      if (value === null || value === undefined) {
        throw new Error(`modelReverser("${template}"): "${params[name]}" is ${value} on the instance`);
      }
      return encodeURIComponent(String(value instanceof Date ? value.toISOString() : value));
    });
  return Object.assign(reverse, { paths: Object.freeze(Object.values(params)) });
}

/** Whether `url` is absolute (has a scheme). */
export function isAbsoluteUrl(url: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(url);
}

/** Prepends `baseUrl` to a relative `ref`; absolute refs and null pass through. */
export function absoluteRef(ref: string | null | undefined, baseUrl?: string): string | null {
  if (ref === null || ref === undefined || ref === '') return null;
  const s = String(ref);
  if (!baseUrl || isAbsoluteUrl(s)) return s;
  return `${baseUrl.replace(/\/+$/, '')}/${s.replace(/^\/+/, '')}`;
}
