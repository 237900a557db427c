// Everything but printable ASCII, and `%` itself (so that every `%` in an encoded value starts an escape).
const UNSAFE = /[^\x20-\x24\x26-\x7e]+/gu;
// A value that needs no encoding: printable ASCII without `%`, not starting or ending with a space.
const PLAIN = /^(?:[\x21-\x24\x26-\x7e](?:[\x20-\x24\x26-\x7e]*[\x21-\x24\x26-\x7e])?)?$/;

/**
 * A generated header value (event name, subscription id, User-Agent) as printable ASCII: every character outside
 * printable ASCII, every `%` and leading or trailing spaces are percent-encoded as UTF-8, as `encodeURIComponent`
 * does, so `decodeURIComponent(header)` gives the value back. Plain ASCII values without `%` are unchanged. Throws a
 * `URIError` for a string that is not well-formed Unicode (a lone surrogate).
 */
export function encodeHeaderValue(value: string): string {
  // the usual case (a plain ASCII name or id): one test, no copy
  if (PLAIN.test(value)) return value;
  return encodeEdgeSpaces(value.replace(UNSAFE, (run) => encodeURIComponent(run)));
}

/**
 * Leading and trailing spaces as `%20` (HTTP parsers strip them). A scan from each end, not a regular expression: `/ +$/`
 * retries at every space of a long inner run, quadratic in its length.
 */
function encodeEdgeSpaces(v: string): string {
  let start = 0;
  while (start < v.length && v.charCodeAt(start) === 32) start++;
  if (start === v.length) return '%20'.repeat(v.length);
  let end = v.length;
  while (v.charCodeAt(end - 1) === 32) end--;
  if (start === 0 && end === v.length) return v;
  return '%20'.repeat(start) + v.slice(start, end) + '%20'.repeat(v.length - end);
}

// RFC 9110 token.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Tab, printable ASCII and Latin-1 (obs-text): what both transports send, byte for byte.
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Why a custom header (`send({ headers })`, `webhookHeaders()`) cannot be sent, or null when it can. The value is
 * never quoted: it may be a secret.
 */
export function customHeaderProblem(name: string, value: string): string | null {
  if (!HEADER_NAME.test(name)) {
    return `Header name ${JSON.stringify(name)} is not a valid HTTP header name: use letters, digits and !#$%&'*+-.^_\`|~ only`;
  }
  if (!HEADER_VALUE.test(value)) {
    const why = /[\r\n]/.test(value)
      ? 'a line break'
      : [...value].some((c) => c.codePointAt(0)! > 0xff)
        ? 'a character beyond Latin-1 (above U+00FF)'
        : 'a control character';
    return `Header "${name}" cannot be sent: its value contains ${why}; header values may hold tab, printable ASCII and Latin-1 only (percent-encode anything else)`;
  }
  return null;
}
