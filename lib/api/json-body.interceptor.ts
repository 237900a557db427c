import {
  BadRequestException,
  Injectable,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import type { Observable } from 'rxjs';
import { HOOKS_LIMITS } from './hooks.constants.js';
import { hooksMessages } from './hooks.messages.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * Makes sure the body of a write is one JSON object of at most `HOOKS_LIMITS.bodyMaxBytes`, whatever body parser the
 * app runs: the app's (Nest's default JSON parser, or a bigger limit), or none at all (`bodyParser: false`, then the
 * body is read here). Anything else is a 400 naming `body`, before validation.
 */
@Injectable()
export class JsonBodyInterceptor implements NestInterceptor {
  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const req = context.switchToHttp().getRequest();
    req.body = await jsonBody(req);
    return next.handle();
  }
}

/** `JsonBodyInterceptor` for a route whose body may be left out (no body at all counts as `{}`). */
@Injectable()
export class OptionalJsonBodyInterceptor implements NestInterceptor {
  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const req = context.switchToHttp().getRequest();
    const headers = req.headers ?? {};
    const empty =
      !headers['content-type'] &&
      headers['transfer-encoding'] === undefined &&
      !(Number(headers['content-length']) > 0);
    req.body = empty ? {} : await jsonBody(req);
    return next.handle();
  }
}

async function jsonBody(req: any): Promise<Record<string, unknown>> {
  const headers = req.headers ?? {};
  const length = Number(headers['content-length']);
  if (Number.isFinite(length) && length > HOOKS_LIMITS.bodyMaxBytes) {
    throw bad(hooksMessages.tooLarge(HOOKS_LIMITS.bodyMaxBytes));
  }
  const type = String(headers['content-type'] ?? '');
  const hasBody = headers['transfer-encoding'] !== undefined || length > 0;
  if (!type) throw bad(hasBody ? hooksMessages.notJson() : hooksMessages.missingBody());
  if (!JSON_TYPE.test(type)) throw bad(hooksMessages.notJson());

  let body: unknown = req.body;
  if (body === undefined && hasBody && !req.readableEnded) body = await readJson(req);
  if (typeof body === 'string' || Buffer.isBuffer(body)) body = parseJson(body.toString());
  if (body === undefined) throw bad(hooksMessages.missingBody());
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw bad(hooksMessages.notObject(kindOf(body)));
  return body as Record<string, unknown>;
}

/** Reads an unparsed body (the app runs without a JSON parser), up to the limit. */
async function readJson(req: NodeJS.ReadableStream & { headers: Record<string, unknown> }): Promise<unknown> {
  const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity') throw bad(hooksMessages.encoding());
  const charset = /;\s*charset\s*=\s*"?([\w-]+)/i.exec(String(req.headers['content-type']))?.[1];
  if (charset && !/^utf-?8$/i.test(charset)) throw bad(hooksMessages.charset(charset));
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > HOOKS_LIMITS.bodyMaxBytes) {
      // Stop reading; the rest of the request is discarded with the connection's next use.
      throw bad(hooksMessages.tooLarge(HOOKS_LIMITS.bodyMaxBytes));
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text.trim() === '' ? undefined : parseJson(text);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw bad(hooksMessages.malformedJson((err as Error).message));
  }
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

function bad(message: string): BadRequestException {
  return new BadRequestException([message]);
}
