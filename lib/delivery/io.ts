/** Reads at most `cap` bytes of a response body as UTF-8, then drops the rest (never buffers unbounded). */
export async function readCapped(
  body: AsyncIterable<Buffer | string> & { destroy(): unknown },
  cap: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  if (cap <= 0) {
    body.destroy();
    return '';
  }
  for await (const raw of body) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    const room = cap - size;
    if (room > 0) {
      chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      size += Math.min(room, chunk.length);
    }
    if (size >= cap) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `err` as an Error; also recognises errors from another realm (vm contexts, test runners), which fail `instanceof`. */
export function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  if (err && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string') {
    return err as Error;
  }
  return new Error(String(err));
}

/** A URL safe for messages and logs: scheme, host and path, without credentials, query or fragment. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}
