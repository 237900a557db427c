import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { PATH_METADATA } from '@nestjs/common/constants.js';
import { HooksController } from '../../lib/api/hooks.controller.js';
import { HooksBodyErrorHandler } from '../../lib/api/body-errors.js';
import {
  createHooksController,
  hooksControllers,
  hooksProviders,
} from '../../lib/api/hooks-controller.factory.js';
import { collectionUrl } from '../../lib/api/subscription.mapper.js';
import { Subscriber } from '../../lib/subscriptions/subscriber.entity.js';

const extras = {
  isGlobal: true,
  controller: true,
  path: 'hooks',
  subscriberEntity: Subscriber,
  dataSource: undefined,
};

describe('the hooks controller factory', () => {
  it('derives one controller class per path and never changes the shared class', () => {
    const a = createHooksController('hooks');
    const b = createHooksController('api/webhooks');
    expect(a).not.toBe(b);
    expect(a.prototype).toBeInstanceOf(HooksController);
    expect(Reflect.getMetadata(PATH_METADATA, a)).toBe('hooks');
    expect(Reflect.getMetadata(PATH_METADATA, b)).toBe('api/webhooks');
    expect(Reflect.getMetadata(PATH_METADATA, HooksController)).toBeUndefined();
  });

  it('mounts nothing with controller: false or without stored subscriptions', () => {
    expect(hooksControllers(extras)).toHaveLength(1);
    expect(Reflect.getMetadata(PATH_METADATA, hooksControllers({ ...extras, path: 'x' })[0])).toBe('x');
    expect(hooksControllers({ ...extras, controller: false })).toEqual([]);
    expect(hooksControllers({ ...extras, subscriberEntity: false })).toEqual([]);
  });

  it('adds the body-error handler exactly when a controller is mounted', () => {
    expect(hooksProviders(extras)).toEqual([HooksBodyErrorHandler]);
    expect(hooksProviders({ ...extras, controller: false })).toEqual([]);
    expect(hooksProviders({ ...extras, subscriberEntity: false })).toEqual([]);
  });
});

describe('collectionUrl', () => {
  const req = (originalUrl: string, extra: Record<string, unknown> = {}) => ({
    protocol: 'https',
    host: 'api.example.com:8443',
    headers: { host: 'ignored' },
    originalUrl,
    ...extra,
  });

  it('keeps the routed path (global prefix, versions) and drops the id, query and trailing slashes', () => {
    expect(collectionUrl(req('/v1/hooks?x=1'), false)).toBe('https://api.example.com:8443/v1/hooks');
    expect(collectionUrl(req('/v1/hooks/'), false)).toBe('https://api.example.com:8443/v1/hooks');
    expect(collectionUrl(req('/api/hooks/abc/?q'), true)).toBe('https://api.example.com:8443/api/hooks');
  });

  it('falls back to the Host header and http', () => {
    expect(collectionUrl({ headers: { host: 'h:3000' }, url: '/hooks/1' }, true)).toBe('http://h:3000/hooks');
  });
});
