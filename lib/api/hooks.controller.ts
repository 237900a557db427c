import {
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
  Req,
  Res,
  UseGuards,
  UseInterceptors,
  createParamDecorator,
  type ExecutionContext,
} from '@nestjs/common';
import type { Repository } from 'typeorm';
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
  toSubscriptionJson,
  type SubscriptionJson,
} from './subscription.mapper.js';
import { SubscriptionValidationPipe } from './subscription-validation.pipe.js';
import { UserQuota } from './user-quota.js';

/** The requesting user's id (a string), as `HooksGuard` found it. */
export const HooksUser = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): string => ctx.switchToHttp().getRequest()[THORN_USER],
);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
  ) {
    this.quota = new UserQuota(store.repository);
  }

  private readonly quota: UserQuota;

  private get repository(): Repository<Subscriber> {
    return this.store.repository;
  }

  /** `GET /hooks`: the user's subscriptions, oldest first, without their secrets. */
  @Get()
  async list(@HooksUser() user: string, @Req() req: any): Promise<SubscriptionJson[]> {
    const rows = await this.repository.find({ where: { user }, order: { createdAt: 'ASC', id: 'ASC' } });
    const base = collectionUrl(req, false);
    return rows.map((s) => toSubscriptionJson(s, detailUrl(base, s.id)));
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

  /** `DELETE /hooks/:id`: 204, empty body. */
  @Delete(':id')
  @HttpCode(204)
  async remove(@HooksUser() user: string, @Param('id') id: string): Promise<void> {
    const row = await this.find(id, user);
    await this.repository.remove(row);
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
    const key = this.normaliseId(id);
    const row = key === null ? null : await this.repository.findOneBy({ id: key, user });
    if (!row) throw new NotFoundException(hooksMessages.notFound());
    return row;
  }

  /** The id as the primary column stores it, or null when it can't be one (so no query error becomes a 500). */
  private normaliseId(id: string): string | null {
    if (typeof id !== 'string' || id === '' || id.length > 255) return null;
    const column = this.repository.metadata.primaryColumns[0];
    if (column && (column.generationStrategy === 'uuid' || column.type === 'uuid')) {
      return UUID.test(id) ? id.toLowerCase() : null;
    }
    if (column && (column.type === Number || /int|serial|numeric|decimal/i.test(String(column.type)))) {
      return /^\d{1,15}$/.test(id) ? id : null;
    }
    return id;
  }
}
