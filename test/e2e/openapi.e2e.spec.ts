// With @nestjs/swagger in the app, every /hooks route is in the document SwaggerModule builds, with schemas, status
// codes and the auth requirement. (Without swagger: test/e2e/optional-peers.e2e.spec.ts.)
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { RequestMethod } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { TypeOrmModule } from '@nestjs/typeorm';
import request from 'supertest';
import { blockInternalIps, ensureProtocol, Subscriber, ThornModule } from '../../lib/index.js';
import { HooksController } from '../../lib/api/hooks.controller.js';
import { HOOKS_ROUTES } from '../../lib/api/openapi/hooks.openapi.js';

/** Names of HooksController's route handlers (methods with a route path). */
function routeMethods(): string[] {
  const proto = HooksController.prototype;
  return Object.getOwnPropertyNames(proto).filter((name) => {
    const value: unknown = Object.getOwnPropertyDescriptor(proto, name)?.value;
    return typeof value === 'function' && Reflect.hasMetadata(PATH_METADATA, value);
  });
}

/** Every route HooksController declares, as OpenAPI path + method (`:id` → `{id}`). */
function declaredRoutes(prefix: string): string[] {
  return routeMethods()
    .map((name) => {
      const fn = Object.getOwnPropertyDescriptor(HooksController.prototype, name)!.value as object;
      const path = String(Reflect.getMetadata(PATH_METADATA, fn))
        .replace(/^\/?/, '')
        .replace(/:(\w+)/g, '{$1}');
      const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, fn) as number].toLowerCase();
      return `${method} /${prefix}${path ? `/${path}` : ''}`;
    })
    .sort();
}

describe('OpenAPI document of /hooks (@nestjs/swagger)', () => {
  let app: INestApplication;
  let doc: OpenAPIObject;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({
          type: 'better-sqlite3',
          database: ':memory:',
          entities: [Subscriber],
          synchronize: true,
        }),
        ThornModule.forRoot({
          path: 'webhooks',
          getUser: (req: any) => req.headers['x-user'],
          recipientValidators: [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http')],
        }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    // built before init/listen, as apps usually do
    doc = SwaggerModule.createDocument(app, new DocumentBuilder().setTitle('t').addBearerAuth().build());
    await app.init();
  });
  afterAll(async () => {
    await app.close();
  });

  const op = (method: string, path: string) => (doc.paths[path] as any)?.[method];

  it('lists every route the controller declares, each described with summary, auth and error answers', () => {
    const routes = declaredRoutes('webhooks');
    expect(routes).toHaveLength(11);
    const documented = Object.entries(doc.paths)
      .flatMap(([path, item]) => Object.keys(item).map((m) => `${m} ${path}`))
      .sort();
    expect(documented).toEqual(routes);
    // every route method has a description entry (a new route without one fails here)
    expect(Object.keys(HOOKS_ROUTES).sort()).toEqual(routeMethods().sort());
    for (const route of routes) {
      const [method, path] = route.split(' ');
      const o = op(method, path);
      expect(o.summary).toEqual(expect.any(String));
      expect(o.tags).toEqual(['hooks']);
      expect(o.security).toEqual([{ bearer: [] }]);
      expect(Object.keys(o.responses)).toEqual(expect.arrayContaining(['401', '403']));
      expect(o.responses['401'].content['application/json'].schema).toEqual({
        $ref: '#/components/schemas/HooksError',
      });
      if (path.includes('{id}')) {
        expect(o.parameters).toEqual(
          expect.arrayContaining([expect.objectContaining({ name: 'id', in: 'path', required: true })]),
        );
        expect(o.responses['404']).toBeDefined();
      }
    }
    expect(doc.components?.securitySchemes?.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('gives each route its status codes and request/response schemas', () => {
    const codes = (m: string, p: string) => Object.keys(op(m, p).responses).sort();
    expect(codes('get', '/webhooks')).toEqual(['200', '400', '401', '403']);
    expect(codes('post', '/webhooks')).toEqual(['201', '400', '401', '403', '409']);
    expect(codes('get', '/webhooks/{id}')).toEqual(['200', '401', '403', '404']);
    expect(codes('put', '/webhooks/{id}')).toEqual(['200', '400', '401', '403', '404']);
    expect(codes('patch', '/webhooks/{id}')).toEqual(['200', '400', '401', '403', '404']);
    expect(codes('delete', '/webhooks/{id}')).toEqual(['204', '401', '403', '404']);

    const subscription = { $ref: '#/components/schemas/HooksSubscription' };
    expect(op('get', '/webhooks').responses['200'].content['application/json'].schema).toEqual({
      type: 'array',
      items: subscription,
    });
    const created = op('post', '/webhooks').responses['201'];
    expect(created.content['application/json'].schema).toEqual(subscription);
    expect(created.headers.Location).toBeDefined();
    expect(op('delete', '/webhooks/{id}').responses['204'].content).toBeUndefined();

    const body = (m: string, p: string) => op(m, p).requestBody.content['application/json'].schema;
    expect(body('post', '/webhooks')).toEqual({ $ref: '#/components/schemas/CreateSubscriptionDto' });
    expect(body('put', '/webhooks/{id}')).toEqual({ $ref: '#/components/schemas/CreateSubscriptionDto' });
    expect(body('patch', '/webhooks/{id}')).toEqual({ $ref: '#/components/schemas/UpdateSubscriptionDto' });

    const schemas = doc.components!.schemas as Record<string, any>;
    const create = schemas.CreateSubscriptionDto;
    expect(create.required.sort()).toEqual(['event', 'url']);
    expect(Object.keys(create.properties).sort()).toEqual(
      ['content_type', 'event', 'hmac_digest', 'hmac_secret', 'url'].sort(),
    );
    expect(create.properties.hmac_digest.enum).toEqual(['sha1', 'sha256', 'sha512']);
    expect(create.properties.url).toMatchObject({ type: 'string', format: 'uri', maxLength: 2048 });
    expect(create.properties.hmac_secret).toMatchObject({ minLength: 16 });
    expect(schemas.UpdateSubscriptionDto.required).toBeUndefined();
    // PATCH also takes `active`; rotate-secret an optional hmac_secret checked like create's
    expect(schemas.UpdateSubscriptionDto.properties.active).toMatchObject({ type: 'boolean' });
    expect(schemas.RotateSecretDto.properties.hmac_secret).toMatchObject({ minLength: 16 });
    const rotate = op('post', '/webhooks/{id}/rotate-secret');
    expect(codes('post', '/webhooks/{id}/rotate-secret')).toEqual(['200', '400', '401', '403', '404']);
    expect(rotate.responses['200'].content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/HooksSubscription',
    });
    expect(rotate.requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/RotateSecretDto',
    });
    expect(schemas.HooksSubscription.properties.disabled_reason.enum).toEqual(['gone', 'failing', 'paused']);
    expect(Object.keys(schemas.HooksSubscription.properties).sort()).toEqual(
      [
        'active',
        'disabled_at',
        'disabled_reason',
        'consecutive_failures',
        'failing_since',
        'content_type',
        'created_at',
        'event',
        'hmac_digest',
        'hmac_secret',
        'id',
        'subscription',
        'updated_at',
        'url',
        'user',
      ].sort(),
    );
  });

  it('describes the delivery-log routes: paging parameters, Link header, delivery and attempt schemas', () => {
    const codes = (m: string, p: string) => Object.keys(op(m, p).responses).sort();
    const list = op('get', '/webhooks/{id}/deliveries');
    expect(codes('get', '/webhooks/{id}/deliveries')).toEqual(['200', '400', '401', '403', '404']);
    expect(list.responses['200'].content['application/json'].schema).toEqual({
      type: 'array',
      items: { $ref: '#/components/schemas/HooksDelivery' },
    });
    expect(list.responses['200'].headers.Link).toBeDefined();
    const query = Object.fromEntries(
      list.parameters.filter((p: any) => p.in === 'query').map((p: any) => [p.name, p.schema]),
    );
    expect(query.limit).toMatchObject({ type: 'integer', minimum: 1, maximum: 250, default: 50 });
    expect(query.status.enum).toEqual(['pending', 'succeeded', 'failed', 'gone', 'cancelled']);
    expect(query.cursor).toMatchObject({ type: 'string' });
    expect(
      op('get', '/webhooks')
        .parameters.map((p: any) => p.name)
        .sort(),
    ).toEqual(['cursor', 'limit']);
    expect(op('get', '/webhooks').responses['200'].headers.Link).toBeDefined();

    const one = op('get', '/webhooks/{id}/deliveries/{deliveryId}');
    expect(codes('get', '/webhooks/{id}/deliveries/{deliveryId}')).toEqual(['200', '401', '403', '404']);
    expect(one.parameters.map((p: any) => p.name).sort()).toEqual(['deliveryId', 'id']);
    expect(one.responses['200'].content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/HooksDeliveryDetail',
    });
    expect(codes('post', '/webhooks/{id}/deliveries/{deliveryId}/redeliver')).toEqual([
      '202',
      '401',
      '403',
      '404',
    ]);
    const recover = op('post', '/webhooks/{id}/recover');
    expect(codes('post', '/webhooks/{id}/recover')).toEqual(['202', '400', '401', '403', '404']);
    expect(recover.requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/RecoverDto',
    });
    const schemas = doc.components!.schemas as Record<string, any>;
    expect(schemas.RecoverDto.required).toEqual(['since']);
    expect(Object.keys(schemas.HooksDelivery.properties).sort()).toEqual(
      [
        'id',
        'event',
        'event_id',
        'status',
        'attempts',
        'response_status',
        'error',
        'next_attempt_at',
        'created_at',
        'updated_at',
        'delivery',
      ].sort(),
    );
    expect(Object.keys(schemas.HooksAttempt.properties).sort()).toEqual(
      ['number', 'started_at', 'duration_ms', 'response_status', 'error', 'response_body'].sort(),
    );
    const detail = schemas.HooksDeliveryDetail;
    const detailProps = detail.allOf
      ? Object.assign({}, ...detail.allOf.map((x: any) => x.properties ?? {}))
      : detail.properties;
    expect(detailProps.attempt_log).toMatchObject({
      type: 'array',
      items: { $ref: '#/components/schemas/HooksAttempt' },
    });
    expect(detailProps.payload).toMatchObject({ type: 'string' });
  });

  it('the schema matches what the API answers', async () => {
    const res = await request(app.getHttpServer())
      .post('/webhooks')
      .set('x-user', 'u1')
      .send({ event: 'a.b', url: 'http://127.0.0.1:8080/hook' })
      .expect(201);
    const schema = (doc.components!.schemas as any).HooksSubscription;
    expect(Object.keys(res.body).sort()).toEqual(Object.keys(schema.properties).sort());
    await request(app.getHttpServer()).get('/webhooks').expect(401);
  });
});
