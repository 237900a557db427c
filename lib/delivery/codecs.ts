/** Turns a payload into the request body for one content type. */
export type Codec = (payload: unknown) => string | Buffer;
/** Content types the `Subscriber` entity accepts. */
export const CONTENT_TYPES = ['application/json', 'application/x-www-form-urlencoded'] as const;
/** One of `CONTENT_TYPES`. */
export type ContentType = (typeof CONTENT_TYPES)[number];

/** JSON codec (the payload is already JSON-safe, see `toJsonSafe`). */
export const jsonCodec: Codec = (payload) => JSON.stringify(payload);

/** Form codec: top-level keys become fields; nested values are JSON-encoded per key; null becomes empty. */
export const formCodec: Codec = (payload) => {
  const form = new URLSearchParams();
  if (payload && typeof payload === 'object' && !Array.isArray(payload)) {
    for (const [k, v] of Object.entries(payload)) {
      if (v === undefined) continue;
      form.append(k, v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
    }
  } else {
    form.append('payload', JSON.stringify(payload));
  }
  return form.toString();
};

/** Built-in codecs, keyed by content type. */
export const DEFAULT_CODECS: Readonly<Record<string, Codec>> = {
  'application/json': jsonCodec,
  'application/x-www-form-urlencoded': formCodec,
};
