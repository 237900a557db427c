/** Limits of the `/hooks` REST API (SPEC §7); the column sizes come from the `Subscriber` entity. */
export const HOOKS_LIMITS = {
  /** Longest `event` pattern (the `event` column is varchar(190)). */
  eventMaxLength: 190,
  /** Longest callback `url` (the `url` column is varchar(2048)). */
  urlMaxLength: 2048,
  /** Shortest `hmac_secret` a client may choose (generated ones have 64 characters). */
  secretMinLength: 16,
  /** Longest `hmac_secret` a client may choose. */
  secretMaxLength: 1024,
  /** Largest request body, in bytes; a valid subscription needs far less. */
  bodyMaxBytes: 16 * 1024,
  /** How long the host name of a `url` may take to resolve at subscribe time, in ms. */
  lookupTimeout: 10_000,
} as const;

/** Where the hooks guard leaves the requesting user's id (a string) on the request. */
export const THORN_USER = Symbol('thorn:user');
