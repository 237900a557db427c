import {
  BadRequestException,
  ConflictException,
  Body,
  Delete,
  Get,
  HttpCode,
  Inject,
  NotFoundException,
  Param,
  Patch,
  Post,
  Put,
  Query,
  Req,
  Res,
  UseGuards,
  UseInterceptors,
  createParamDecorator,
  type ExecutionContext,
} from '@nestjs/common';
import type { Repository } from 'typeorm';
import { DeliveryLogService } from '../ledger/delivery-log.service.js';
import { InvalidParameterError } from '../pagination.js';
import { subscriptionKey } from '../subscriptions/subscription-id.js';
import { SubscriptionService } from '../subscriptions/subscription.service.js';
import { SubscriptionStore } from '../subscriptions/subscription.store.js';
import type { Subscriber } from '../subscriptions/subscriber.entity.js';
import { InjectThornOptions } from '../thorn.decorators.js';
import type { ResolvedThornOptions } from '../thorn-options.js';
import { THORN_USER } from './hooks.constants.js';
import { HooksGuard } from './hooks.guard.js';
import { hooksMessages } from './hooks.messages.js';
import { JsonBodyInterceptor, OptionalJsonBodyInterceptor } from './json-body.interceptor.js';
import { canonicalContentType } from './subscription.constraints.js';
import { CreateSubscriptionDto, RotateSecretDto, UpdateSubscriptionDto } from './subscription.dto.js';
import {
  collectionUrl,
  detailUrl,
  requestUrl,
  toSubscriptionJson,
  type SubscriptionJson,
} from './subscription.mapper.js';
import { SubscriptionValidationPipe } from './subscription-validation.pipe.js';
import { listSubscriptions } from './subscription-list.js';
import { RecoverDto } from './delivery-log.dto.js';
import {
  setNextLink,
  toDeliveryDetailJson,
  toDeliveryJson,
  type DeliveryDetailJson,
  type DeliveryJson,
} from './delivery.mapper.js';
import { UserQuota } from './user-quota.js';

/** The requesting user's id (a string), as `HooksGuard` found it. */
export const HooksUser = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): string => ctx.switchToHttp().getRequest()[THORN_USER],
);

/**
 * The `/hooks` REST API (SPEC §7): a user's own webhook subscriptions. Not mounted as is: `hooksControllers()` derives
 * one subclass per configured `path`.
 */
@UseGuards(HooksGuard)
export class HooksController {
  constructor(
    @Inject(SubscriptionStore) private readonly store: SubscriptionStore,
    @InjectThornOptions() private readonly options: ResolvedThornOptions,
    @Inject(SubscriptionService) private readonly subscriptions: SubscriptionService,
    @Inject(DeliveryLogService) private readonly log: DeliveryLogService,
  ) {
    this.quota = new UserQuota(store.repository);
  }

  private readonly quota: UserQuota;

  private get repository(): Repository<Subscriber> {
    return this.store.repository;
  }

  /**
   * `GET /hooks`: the user's subscriptions, oldest first, without their secrets; `?limit=` (default 50, max 250) at a
   * time, the next page in the `Link` header.
   */
  @Get()
  async list(
    @HooksUser() user: string,
    @Query() query: Record<string, unknown>,
    @Req() req: any,
    @Res({ passthrough: true }) res: any,
  ): Promise<SubscriptionJson[]> {
    const page = await badInput(() => listSubscriptions(this.repository, user, query));
    const base = collectionUrl(req, false);
    setNextLink(req, res, page.next, { limit: query.limit as string | undefined });
    return page.rows.map((s) => toSubscriptionJson(s, detailUrl(base, s.id)));
  }

  /** `POST /hooks`: subscribes the user; 201 with `Location` = the new subscription's URL. */
  @Post()
  @HttpCode(201)
  @UseInterceptors(JsonBodyInterceptor)
  async create(
    @HooksUser() user: string,
    @Body(SubscriptionValidationPipe) body: CreateSubscriptionDto,
    @Req() req: any,
    @Res({ passthrough: true }) res: any,
  ): Promise<SubscriptionJson> {
    const entity = this.repository.create({ ...this.changes(body), user });
    // with standardWebhooks, a `whsec_` secret the official verifiers take as it is
    entity.hmacSecret ??= this.subscriptions.generateSecret();
    const saved = await this.quota.create(user, this.options.maxSubscriptionsPerUser, entity);
    if (!saved) throw new ConflictException(hooksMessages.quota(this.options.maxSubscriptionsPerUser));
    const json = await this.show(saved.id, user, collectionUrl(req, false), true);
    res.setHeader('Location', json.subscription);
    return json;
  }

  /** `GET /hooks/:id`, with the secret: 404 when unknown, malformed or someone else's. */
  @Get(':id')
  async get(@HooksUser() user: string, @Param('id') id: string, @Req() req: any): Promise<SubscriptionJson> {
    return this.show(id, user, collectionUrl(req, true), true);
  }

  /** `PUT /hooks/:id`: full update (`event` and `url` required; fields left out keep their value). */
  @Put(':id')
  @UseInterceptors(JsonBodyInterceptor)
  async replace(
    @HooksUser() user: string,
    @Param('id') id: string,
    @Body(SubscriptionValidationPipe) body: CreateSubscriptionDto,
    @Req() req: any,
  ): Promise<SubscriptionJson> {
    return this.update(user, id, body, req);
  }

  /** `PATCH /hooks/:id`: partial update. */
  @Patch(':id')
  @UseInterceptors(JsonBodyInterceptor)
  async patch(
    @HooksUser() user: string,
    @Param('id') id: string,
    @Body(SubscriptionValidationPipe) body: UpdateSubscriptionDto,
    @Req() req: any,
  ): Promise<SubscriptionJson> {
    return this.update(user, id, body, req);
  }

  /**
   * `POST /hooks/:id/rotate-secret`: a new secret (`hmac_secret` in the optional body, else generated), answered 200
   * with it; the previous one stays valid in `webhook-signature` for `secretRotationGrace` ms.
   */
  @Post(':id/rotate-secret')
  @HttpCode(200)
  @UseInterceptors(OptionalJsonBodyInterceptor)
  async rotateSecret(
    @HooksUser() user: string,
    @Param('id') id: string,
    @Body(SubscriptionValidationPipe) body: RotateSecretDto,
    @Req() req: any,
  ): Promise<SubscriptionJson> {
    const row = await this.find(id, user);
    await this.subscriptions.rotateSecret(row.id, { user, hmacSecret: body.hmac_secret });
    const collection = collectionUrl(req, true);
    return this.show(row.id, user, collection.slice(0, collection.lastIndexOf('/')), true);
  }

  /**
   * `GET /hooks/:id/deliveries`: the subscription's deliveries, newest first; `?status=`, `?limit=` (default 50, max
   * 250), the next page in the `Link` header (SPEC §10).
   */
  @Get(':id/deliveries')
  async deliveries(
    @HooksUser() user: string,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @Req() req: any,
    @Res({ passthrough: true }) res: any,
  ): Promise<DeliveryJson[]> {
    const log = this.deliveryLog();
    const page = await badInput(() =>
      log.list(id, {
        user,
        limit: query.limit as string | undefined,
        status: query.status as string | undefined,
        cursor: query.cursor as string | undefined,
      }),
    );
    if (!page) throw new NotFoundException(hooksMessages.notFound());
    setNextLink(req, res, page.next, {
      limit: query.limit as string | undefined,
      status: query.status as string | undefined,
    });
    const base = requestUrl(req);
    return page.deliveries.map((d) => toDeliveryJson(d, detailUrl(base, d.id)));
  }

  /** `GET /hooks/:id/deliveries/:deliveryId`: the delivery with `attempt_log` (oldest first) and `payload`. */
  @Get(':id/deliveries/:deliveryId')
  async delivery(
    @HooksUser() user: string,
    @Param('id') id: string,
    @Param('deliveryId') deliveryId: string,
    @Req() req: any,
  ): Promise<DeliveryDetailJson> {
    const details = await this.deliveryLog().get(id, deliveryId, { user });
    if (!details) throw new NotFoundException(hooksMessages.deliveryNotFound());
    return toDeliveryDetailJson(details, requestUrl(req));
  }

  /**
   * `POST /hooks/:id/deliveries/:deliveryId/redeliver`: 202, one more attempt soon (same `Hook-Delivery`, current URL
   * and secret), whatever its status; answers the delivery as it now is.
   */
  @Post(':id/deliveries/:deliveryId/redeliver')
  @HttpCode(202)
  async redeliver(
    @HooksUser() user: string,
    @Param('id') id: string,
    @Param('deliveryId') deliveryId: string,
    @Req() req: any,
  ): Promise<DeliveryJson> {
    const done = await this.deliveryLog().redeliver(id, deliveryId, { user });
    if (!done) throw new NotFoundException(hooksMessages.deliveryNotFound());
    return toDeliveryJson(done.delivery, requestUrl(req, 1));
  }

  /** `POST /hooks/:id/recover` `{ "since": ISO-8601 }`: 202 `{ "redelivering": n }`, every failed delivery since then. */
  @Post(':id/recover')
  @HttpCode(202)
  @UseInterceptors(JsonBodyInterceptor)
  async recover(
    @HooksUser() user: string,
    @Param('id') id: string,
    @Body(SubscriptionValidationPipe) body: RecoverDto,
  ): Promise<{ redelivering: number }> {
    const log = this.deliveryLog();
    const n = await badInput(() => log.recover(id, body.since, { user }));
    if (n === null) throw new NotFoundException(hooksMessages.notFound());
    return { redelivering: n };
  }

  /** `DELETE /hooks/:id`: 204, empty body. */
  @Delete(':id')
  @HttpCode(204)
  async remove(@HooksUser() user: string, @Param('id') id: string): Promise<void> {
    const row = await this.find(id, user);
    await this.repository.remove(row);
  }

  /** The delivery log, or a 404 saying the ledger is off. */
  private deliveryLog(): DeliveryLogService {
    if (!this.log.enabled) throw new NotFoundException(hooksMessages.ledgerOff());
    return this.log;
  }

  private async update(
    user: string,
    id: string,
    body: CreateSubscriptionDto | UpdateSubscriptionDto,
    req: any,
  ): Promise<SubscriptionJson> {
    const row = await this.find(id, user);
    await this.repository.save(this.repository.merge(row, this.changes(body)));
    if ('active' in body && typeof body.active === 'boolean') {
      await this.subscriptions.setActive(row.id, body.active, { user });
    }
    return this.show(row.id, user, collectionUrl(req, true));
  }

  /** The entity fields a validated body sets (only those present). */
  private changes(body: CreateSubscriptionDto | UpdateSubscriptionDto): Partial<Subscriber> {
    const out: Partial<Subscriber> = {};
    if (body.event !== undefined) out.event = body.event;
    if (body.url !== undefined) out.url = body.url.trim();
    if (body.content_type !== undefined) {
      out.contentType = canonicalContentType(body.content_type, Object.keys(this.options.codecs));
    }
    if (body.hmac_secret !== undefined) out.hmacSecret = body.hmac_secret;
    if (body.hmac_digest !== undefined) out.hmacDigest = body.hmac_digest;
    return out;
  }

  /** Reads the row back, so timestamps and defaults are the database's; the secret only `withSecret`. */
  private async show(
    id: string,
    user: string,
    collection: string,
    withSecret = false,
  ): Promise<SubscriptionJson> {
    const row = await this.find(id, user);
    return toSubscriptionJson(row, detailUrl(collection, row.id), withSecret);
  }

  private async find(id: string, user: string): Promise<Subscriber> {
    const key = subscriptionKey(this.repository, id);
    const row = key === null ? null : await this.repository.findOneBy({ id: key, user });
    if (!row) throw new NotFoundException(hooksMessages.notFound());
    return row;
  }
}

/** Runs `fn`; an invalid query parameter or argument becomes a 400 naming it. */
async function badInput<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof InvalidParameterError) throw new BadRequestException([err.message]);
    throw err;
  }
}
