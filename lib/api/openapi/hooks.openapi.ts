// The OpenAPI description of the `/hooks` routes. `@nestjs/swagger` is an optional peer, so its decorators are not
// written on the classes: when the app has it installed, `describeHooksApi()` (run by a ThornModule provider while
// the app is created, before any `SwaggerModule.createDocument`) loads it and applies them once, to the shared
// controller, DTO and schema classes, exactly as static decorators would have been. Without swagger nothing happens.
import type { Type } from '@nestjs/common';
import { HMAC_DIGESTS } from '../../delivery/signing.js';
import { HOOKS_LIMITS } from '../hooks.constants.js';
import { HooksController } from '../hooks.controller.js';
import { DELIVERY_STATUSES } from '../../ledger/delivery-log.service.js';
import { PAGE_LIMITS } from '../../pagination.js';
import { RecoverDto } from '../delivery-log.dto.js';
import { CreateSubscriptionDto, RotateSecretDto, UpdateSubscriptionDto } from '../subscription.dto.js';
import {
  HooksAttempt,
  HooksDelivery,
  HooksDeliveryDetail,
  HooksError,
  HooksRecovery,
  HooksSubscription,
} from './hooks.schemas.js';

type Swagger = typeof import('@nestjs/swagger');
type Property = Parameters<Swagger['ApiProperty']>[0];
/** One documented answer of a route (a subset of swagger's `ApiResponseOptions`). */
interface Response {
  status: number;
  description: string;
  type?: Type<unknown>;
  isArray?: boolean;
  headers?: Record<string, { description: string; schema: { type: 'string' } }>;
}

/** Name of the security requirement on every `/hooks` route: `DocumentBuilder.addBearerAuth()`'s default scheme. */
export const HOOKS_SECURITY = 'bearer';
/** OpenAPI tag of the `/hooks` routes. */
export const HOOKS_TAG = 'hooks';

interface Param {
  name: string;
  description: string;
  type: 'string';
}
/** A query parameter of a route (a subset of swagger's `ApiQueryOptions`). */
interface QueryParam {
  name: string;
  description: string;
  required: false;
  schema: Record<string, unknown>;
}
const ID: Param = { name: 'id', description: 'The subscription id', type: 'string' };
const DELIVERY_ID: Param = {
  name: 'deliveryId',
  description: 'The delivery id (its `Hook-Delivery` header)',
  type: 'string',
};
const LIMIT: QueryParam = {
  name: 'limit',
  description: `Page size (default ${PAGE_LIMITS.default})`,
  required: false,
  schema: { type: 'integer', minimum: 1, maximum: PAGE_LIMITS.max, default: PAGE_LIMITS.default },
};
const CURSOR: QueryParam = {
  name: 'cursor',
  description: 'Where the page starts: taken from the `Link` header of the previous page (opaque)',
  required: false,
  schema: { type: 'string' },
};
const STATUS: QueryParam = {
  name: 'status',
  description: 'Only deliveries with this status',
  required: false,
  schema: { type: 'string', enum: [...DELIVERY_STATUSES] },
};
const LINK = {
  Link: {
    description: 'The next page, when there is one: `<url>; rel="next"` (cursor-based, stable under inserts)',
    schema: { type: 'string' as const },
  },
};
const LEDGER_OFF =
  'No such subscription of yours or delivery, or the delivery ledger is off (the message says which)';
const err = (status: number, description: string): Response => ({ status, description, type: HooksError });
const AUTH = [
  err(401, 'No authenticated user (the app’s getUser found none)'),
  err(403, 'A guard from the `guards` option refused the request'),
];
const INVALID = err(
  400,
  'Invalid body: the message names the field (event, url, content_type, hmac_secret, …)',
);
const NOT_FOUND = err(404, 'No such subscription of yours (unknown, malformed or someone else’s id)');
const BAD_QUERY = err(400, 'Invalid query parameter: the message names it (limit, cursor, status)');
const one = (status: number, description: string): Response => ({
  status,
  description,
  type: HooksSubscription,
});

/** Each route of `HooksController`: its summary, path parameters and answers. A new route needs an entry here. */
export const HOOKS_ROUTES: Record<
  string,
  { summary: string; params?: Param[]; query?: QueryParam[]; responses: Response[] }
> = {
  list: {
    summary: 'List your webhook subscriptions (oldest first, a page at a time)',
    query: [LIMIT, CURSOR],
    responses: [
      {
        status: 200,
        description: 'Your subscriptions (without their secrets)',
        type: HooksSubscription,
        isArray: true,
        headers: LINK,
      },
      BAD_QUERY,
    ],
  },
  create: {
    summary: 'Subscribe a URL to an event pattern',
    responses: [
      {
        ...one(201, 'The new subscription'),
        headers: { Location: { description: 'URL of the new subscription', schema: { type: 'string' } } },
      },
      INVALID,
      err(409, 'You hold maxSubscriptionsPerUser subscriptions already'),
    ],
  },
  get: {
    summary: 'Show one of your subscriptions',
    params: [ID],
    responses: [one(200, 'The subscription'), NOT_FOUND],
  },
  replace: {
    summary: 'Replace a subscription (event and url required)',
    params: [ID],
    responses: [one(200, 'The updated subscription'), INVALID, NOT_FOUND],
  },
  patch: {
    summary: 'Change some fields of a subscription',
    params: [ID],
    responses: [one(200, 'The updated subscription'), INVALID, NOT_FOUND],
  },
  rotateSecret: {
    summary: 'Rotate the secret (the previous one stays valid in webhook-signature for secretRotationGrace)',
    params: [ID],
    responses: [one(200, 'The subscription with its new hmac_secret'), INVALID, NOT_FOUND],
  },
  deliveries: {
    summary:
      'List the deliveries of a subscription (newest first, a page at a time; needs the delivery ledger)',
    params: [ID],
    query: [STATUS, LIMIT, CURSOR],
    responses: [
      {
        status: 200,
        description: 'Its deliveries',
        type: HooksDelivery,
        isArray: true,
        headers: LINK,
      },
      BAD_QUERY,
      err(404, LEDGER_OFF),
    ],
  },
  delivery: {
    summary: 'Show one delivery with every attempt (oldest first) and the body as sent',
    params: [ID, DELIVERY_ID],
    responses: [
      { status: 200, description: 'The delivery', type: HooksDeliveryDetail },
      err(404, LEDGER_OFF),
    ],
  },
  redeliver: {
    summary:
      'Attempt a delivery once more soon, whatever its status (same Hook-Delivery, current URL and secret)',
    params: [ID, DELIVERY_ID],
    responses: [
      {
        status: 202,
        description: 'Accepted: the delivery as it now is (an attempt under way is not started twice)',
        type: HooksDelivery,
      },
      err(404, LEDGER_OFF),
    ],
  },
  recover: {
    summary: 'Attempt again every failed delivery of a subscription created since a time',
    params: [ID],
    responses: [
      { status: 202, description: 'Accepted: how many deliveries are attempted again', type: HooksRecovery },
      err(400, 'Invalid body: since missing, not an ISO-8601 date, or in the future'),
      err(404, 'No such subscription of yours, or the delivery ledger is off'),
    ],
  },
  remove: {
    summary: 'Delete a subscription',
    params: [ID],
    responses: [{ status: 204, description: 'Deleted (empty body)' }, NOT_FOUND],
  },
};

const writable = (required: boolean): Record<string, Property> => ({
  event: {
    type: 'string',
    required,
    maxLength: HOOKS_LIMITS.eventMaxLength,
    description:
      'Event name or pattern: `*` matches one dot-separated part, `#` any number (e.g. `article.*`); one of `eventChoices` when the app sets it',
    example: 'article.created',
  },
  url: {
    type: 'string',
    format: 'uri',
    required,
    maxLength: HOOKS_LIMITS.urlMaxLength,
    description:
      'Where deliveries are POSTed; must pass the recipient validators (no internal addresses by default)',
    example: 'https://example.com/webhooks',
  },
  content_type: {
    type: 'string',
    required: false,
    default: 'application/json',
    description: '`application/json`, `application/x-www-form-urlencoded`, or a type from the app’s `codecs`',
  },
  hmac_secret: {
    type: 'string',
    required: false,
    minLength: HOOKS_LIMITS.secretMinLength,
    maxLength: HOOKS_LIMITS.secretMaxLength,
    description: 'Key of the `Hook-HMAC` signature; generated when left out',
  },
  hmac_digest: {
    type: 'string',
    required: false,
    enum: [...HMAC_DIGESTS],
    default: 'sha256',
    description: 'Digest of the `Hook-HMAC` signature (case-insensitive)',
  },
});

const subscription: Record<string, Property> = {
  id: { type: 'string', description: 'Subscription id (sent as `Hook-Subscription`)' },
  event: { type: 'string', example: 'article.created' },
  url: { type: 'string', format: 'uri' },
  content_type: { type: 'string', example: 'application/json' },
  user: { type: 'string', nullable: true, description: 'Owner (the requesting user)' },
  hmac_secret: { type: 'string', description: 'Key of the `Hook-HMAC` signature' },
  hmac_digest: { type: 'string', enum: [...HMAC_DIGESTS] },
  active: {
    type: 'boolean',
    description: 'false: receives nothing (disabled after a 410 or a failure streak, or paused)',
  },
  disabled_at: { type: 'string', format: 'date-time', nullable: true },
  disabled_reason: {
    type: 'string',
    nullable: true,
    enum: ['gone', 'failing', 'paused'],
    description: '`gone` (410), `failing` (autoDisable), `paused` (PATCH active: false)',
  },
  consecutive_failures: { type: 'integer', description: 'Deliveries failed in a row; a success resets it' },
  failing_since: { type: 'string', format: 'date-time', nullable: true },
  created_at: { type: 'string', format: 'date-time', nullable: true },
  updated_at: { type: 'string', format: 'date-time', nullable: true },
  subscription: { type: 'string', format: 'uri', description: 'Absolute URL of this subscription' },
};

const delivery: Record<string, Property> = {
  id: {
    type: 'string',
    format: 'uuid',
    description: 'Delivery id, sent as `Hook-Delivery` on every attempt',
  },
  event: { type: 'string', example: 'article.created' },
  event_id: { type: 'string', format: 'uuid', description: 'The recorded event (one per send)' },
  status: { type: 'string', enum: [...DELIVERY_STATUSES] },
  attempts: { type: 'integer', description: 'Attempts made so far' },
  response_status: { type: 'integer', nullable: true, description: 'HTTP status of the last attempt' },
  error: { type: 'string', nullable: true, description: 'Why the last attempt failed' },
  next_attempt_at: {
    type: 'string',
    format: 'date-time',
    nullable: true,
    description: 'When it is attempted next (pending only)',
  },
  created_at: { type: 'string', format: 'date-time' },
  updated_at: { type: 'string', format: 'date-time' },
  delivery: { type: 'string', format: 'uri', description: 'Absolute URL of this delivery' },
};

const attempt: Record<string, Property> = {
  number: { type: 'integer', description: '1 for the first attempt' },
  started_at: { type: 'string', format: 'date-time' },
  duration_ms: { type: 'integer' },
  response_status: { type: 'integer', nullable: true },
  error: { type: 'string', nullable: true, description: 'Network error, timeout or the status answered' },
  response_body: {
    type: 'string',
    nullable: true,
    description: 'The first `ledger.maxResponseBody` bytes of the answer',
  },
};

const error: Record<string, Property> = {
  statusCode: { type: 'integer', example: 400 },
  message: { type: 'string', description: 'What was wrong (names the field for a 400)' },
  error: { type: 'string', required: false, example: 'Bad Request' },
};

/** Provider token that resolves to whether the `/hooks` routes got their OpenAPI metadata. */
export const THORN_OPENAPI = Symbol('thorn:openapi');

let described: Promise<boolean> | undefined;

/**
 * Gives the `/hooks` controller, its DTOs and response schemas their OpenAPI metadata when `@nestjs/swagger` is
 * installed (once per process); resolves to whether it was.
 */
export function describeHooksApi(): Promise<boolean> {
  described ??= import('@nestjs/swagger').then(
    (swagger) => {
      applyOpenApi(swagger);
      return true;
    },
    (e: { code?: string }) => {
      if (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') return false;
      throw e;
    },
  );
  return described;
}

function properties(swagger: Swagger, target: Type<unknown>, props: Record<string, Property>): void {
  for (const [name, options] of Object.entries(props)) swagger.ApiProperty(options)(target.prototype, name);
}

function applyOpenApi(swagger: Swagger): void {
  properties(swagger, CreateSubscriptionDto, writable(true));
  properties(swagger, UpdateSubscriptionDto, {
    ...writable(false),
    active: {
      type: 'boolean',
      required: false,
      description: '`true` re-enables the subscription and clears its failure streak; `false` pauses it',
    },
  });
  properties(swagger, RotateSecretDto, {
    hmac_secret: {
      ...writable(false).hmac_secret,
      description: 'The new secret; generated when left out (`whsec_…` with standardWebhooks)',
    },
  });
  properties(swagger, HooksSubscription, subscription);
  properties(swagger, HooksError, error);
  properties(swagger, HooksDelivery, delivery);
  properties(swagger, HooksAttempt, attempt);
  properties(swagger, HooksDeliveryDetail, {
    attempt_log: { type: () => HooksAttempt, isArray: true, description: 'Every attempt, oldest first' },
    payload: { type: 'string', nullable: true, description: 'The request body as sent' },
  });
  properties(swagger, HooksRecovery, {
    redelivering: { type: 'integer', description: 'Failed deliveries attempted again' },
  });
  properties(swagger, RecoverDto, {
    since: {
      type: 'string',
      format: 'date-time',
      required: true,
      description: 'Failed deliveries created at or after this time (ISO-8601, not in the future)',
      example: '2025-01-31T12:00:00Z',
    },
  });
  swagger.ApiTags(HOOKS_TAG)(HooksController);
  swagger.ApiBearerAuth(HOOKS_SECURITY)(HooksController);
  swagger.ApiExtraModels(
    HooksSubscription,
    HooksError,
    HooksDelivery,
    HooksDeliveryDetail,
    HooksAttempt,
  )(HooksController);
  const proto = HooksController.prototype as unknown as Record<string, unknown>;
  for (const [method, route] of Object.entries(HOOKS_ROUTES)) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, method);
    if (!descriptor) throw new Error(`HooksController has no route method "${method}" to describe`);
    const decorate = (d: MethodDecorator) => d(proto, method, descriptor);
    decorate(swagger.ApiOperation({ summary: route.summary }));
    for (const p of route.params ?? []) decorate(swagger.ApiParam(p));
    for (const q of route.query ?? []) decorate(swagger.ApiQuery(q));
    if (['create', 'replace', 'patch', 'rotateSecret', 'recover'].includes(method)) {
      decorate(swagger.ApiConsumes('application/json'));
    }
    for (const r of [...route.responses, ...AUTH]) decorate(swagger.ApiResponse(r));
  }
}
