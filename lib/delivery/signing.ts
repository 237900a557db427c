import { createHash, createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** HMAC digests a subscription may use. */
export type HmacDigest = 'sha1' | 'sha256' | 'sha512';
/** The digests accepted for `hmacDigest`, lower case. */
export const HMAC_DIGESTS: readonly HmacDigest[] = ['sha1', 'sha256', 'sha512'];
/** Signs `message` with `secret`; the result goes in the `Hook-HMAC` header. */
export type HmacSigner = (digest: HmacDigest, secret: string, message: string | Buffer) => string;

/** Normalises a digest name (`'SHA256'` → `'sha256'`) or throws naming the accepted ones. */
export function toDigest(d: string): HmacDigest {
  const lower = String(d).toLowerCase() as HmacDigest;
  if (!HMAC_DIGESTS.includes(lower)) {
    throw new Error(`Unknown HMAC digest "${d}": use ${HMAC_DIGESTS.map((x) => `'${x}'`).join(', ')}`);
  }
  return lower;
}

/** Default signer: standard Base64 of HMAC-`digest`(secret, message). */
export const sign: HmacSigner = (digest, secret, message) =>
  createHmac(toDigest(digest), secret).update(message).digest('base64');

/** Prefix of Standard Webhooks secrets: `whsec_` + Base64 of the key bytes. */
export const STANDARD_SECRET_PREFIX = 'whsec_';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

/**
 * The HMAC key a secret stands for in `webhook-signature`: for `whsec_<base64>` the decoded bytes (the Standard
 * Webhooks way, so the official libraries verify with the secret as given), for any other secret its UTF-8 bytes.
 */
export function standardWebhooksKey(secret: string): Buffer {
  if (secret.startsWith(STANDARD_SECRET_PREFIX)) {
    const b64 = secret.slice(STANDARD_SECRET_PREFIX.length);
    if (b64 && BASE64.test(b64)) return Buffer.from(b64, 'base64');
  }
  return Buffer.from(secret, 'utf8');
}

/**
 * The Standard Webhooks `webhook-signature` value: `v1,` + Base64 HMAC-SHA256 of `id.timestamp.body`, one per secret
 * (space-separated, in the order given: the current secret first, then a rotated-out one still in its grace period).
 * The message id is part of what is signed, so the delivery id must be final before this is called.
 */
export function standardWebhooksSignature(
  id: string,
  timestamp: string,
  secret: string | readonly string[],
  body: string | Buffer,
): string {
  const secrets = typeof secret === 'string' ? [secret] : secret;
  return secrets
    .map(
      (s) =>
        `v1,${createHmac('sha256', standardWebhooksKey(s)).update(`${id}.${timestamp}.`).update(body).digest('base64')}`,
    )
    .join(' ');
}

/** A new Standard Webhooks secret: `whsec_` + Base64 of 32 bytes from a CSPRNG. */
export function randomStandardWebhooksSecret(): string {
  return STANDARD_SECRET_PREFIX + randomBytes(32).toString('base64');
}

// Standard Base64 with its padding: the only form `sign()` produces.
const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Verifies a `sign()` signature: true only for the exact canonical signature (standard Base64, padded, nothing around
 * it), compared in constant time. Anything else is false, an unknown digest included; it never throws for them.
 */
export function verify(
  signature: string,
  digest: HmacDigest | string,
  secret: string,
  message: string | Buffer,
): boolean {
  if (typeof signature !== 'string' || !signature || !CANONICAL_BASE64.test(signature)) return false;
  const d = String(digest).toLowerCase() as HmacDigest;
  if (!HMAC_DIGESTS.includes(d)) return false;
  const want = Buffer.from(createHmac(d, secret).update(message).digest('base64'), 'latin1');
  const got = Buffer.from(signature, 'latin1');
  // the canonical strings, not decoded bytes: decoding would accept other spellings of the same bytes
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * Thorn's old default signer (itsdangerous `Signer`, django-concat key derivation, URL-safe Base64 without padding).
 * Only for receivers that still verify the old format: new receivers should use `sign`.
 */
export const compatSign: HmacSigner = (digest, secret, message) => {
  const d = toDigest(digest);
  const key = createHash(d).update('itsdangerous.Signer').update('signer').update(secret).digest();
  return createHmac(d, key).update(message).digest('base64url');
};

/** Characters of generated secrets: letters, digits and punctuation except quotes. */
export const SECRET_ALPHABET =
  'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&()*+,-./:;<=>?@[\\]^_`{|}~';

/** A random secret from a CSPRNG (`crypto.randomInt`), never `Math.random`. */
export function randomSecret(length = 64, alphabet = SECRET_ALPHABET): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}
