import { BadRequestException, Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { THORN_EXTRAS } from '../thorn.constants.js';
import type { ResolvedThornExtras } from '../thorn-options.js';
import { hooksMessages } from './hooks.messages.js';

/** Installs the body-error handler (below) for the path the `/hooks` controller is mounted at, at start-up. */
@Injectable()
export class HooksBodyErrorHandler implements OnModuleInit {
  constructor(
    @Inject(THORN_EXTRAS) private readonly extras: ResolvedThornExtras,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {}

  onModuleInit(): void {
    installBodyErrorHandler(this.adapterHost, this.extras.path);
  }
}

/**
 * Body-parser errors (malformed JSON, a body over the app parser's limit, an unknown charset) happen in the app's
 * parser middleware, before routing, so no guard, pipe or controller-scoped filter sees them. This installs an Express
 * error middleware, after the routes and before Nest's own exception layer, that turns those errors into a 400 naming
 * `body` for requests to the hooks routes. It passes the exception on (`next`), so the app's global exception filters
 * still shape the answer. Other adapters (Fastify) keep their own handling.
 */
export function installBodyErrorHandler(adapterHost: HttpAdapterHost | undefined, path: string): void {
  const adapter = adapterHost?.httpAdapter;
  if (!adapter || adapter.getType?.() !== 'express') return;
  const mount = path.replace(/^\/+|\/+$/g, '');
  if (!mount) return;
  // `<anything>/<path>` and up to 4 segments below (`/<id>/recover`, `/<id>/deliveries/<deliveryId>/redeliver`): the
  // global prefix and URI versioning are not known here.
  const route = new RegExp(`(?:^|/)${escapeRegExp(mount)}(?:/[^/]+){0,4}/?$`);
  adapter.use((err: any, req: any, _res: unknown, next: (err?: unknown) => void) => {
    if (!isBodyError(err) || typeof req?.path !== 'string' || !route.test(req.path)) return next(err);
    next(new BadRequestException([bodyErrorMessage(err)], { cause: err }));
  });
}

/** A 4xx error from body-parser (http-errors with a `type`), or the SyntaxError it raises for malformed JSON. */
function isBodyError(err: any): boolean {
  const status = err?.statusCode ?? err?.status;
  return (
    err instanceof Error &&
    typeof status === 'number' &&
    status >= 400 &&
    status < 500 &&
    (typeof (err as any).type === 'string' || err instanceof SyntaxError)
  );
}

function bodyErrorMessage(err: any): string {
  switch (err.type) {
    case 'entity.parse.failed':
      return parseFailure(err);
    case 'entity.too.large':
      return hooksMessages.tooLarge(Number(err.limit));
    case 'charset.unsupported':
      return hooksMessages.charset(String(err.charset ?? 'unknown'));
    case 'encoding.unsupported':
      return hooksMessages.encoding();
    default:
      return hooksMessages.unreadable(err.expose === false ? String(err.type ?? 'error') : err.message);
  }
}

function parseFailure(err: any): string {
  // body-parser's strict mode refuses a top-level string, number, boolean or null: valid JSON, but no object
  if (typeof err.body === 'string') {
    try {
      const value = JSON.parse(err.body);
      return hooksMessages.notObject(value === null ? 'null' : `a ${typeof value}`);
    } catch {
      // really malformed: fall through
    }
  }
  return hooksMessages.malformedJson(err.message);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
