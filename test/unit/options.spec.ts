import { describe, expect, it } from '@jest/globals';
import {
  DEFAULT_EXTRAS,
  deliveryOverrides,
  resolveDeliverySettings,
  resolveExtras,
  resolveThornOptions,
  withoutExtras,
} from '../../lib/thorn-options.js';
import { Subscriber } from '../../lib/subscriptions/subscriber.entity.js';
import { sign } from '../../lib/delivery/signing.js';

describe('ThornModule options', () => {
  it('applies the SPEC defaults', () => {
    const o = resolveThornOptions({});
    expect(o).toMatchObject({
      dispatcher: 'direct',
      timeout: 3000,
      retry: true,
      retryMax: 10,
      retryDelay: 60000,
      retryBackoff: 'fixed',
      chunkSize: 10,
      subscribers: {},
      allowRedirects: false,
      signalHonorsTransaction: true,
      propagateErrors: false,
      guards: [],
      concurrency: 64,
      maxPayloadSize: 262144,
      maxResponseBody: 65536,
      subscriptionCacheTtl: 1000,
    });
    expect(o.hmacSigner).toBe(sign);
    expect(o.userAgent).toMatch(/^nestjs-thorn\/\d+\.\d+\.\d+$/);
    expect(o.recipientValidators).toHaveLength(3);
    expect(Object.keys(o.codecs).sort()).toEqual(['application/json', 'application/x-www-form-urlencoded']);
    expect(o.getUser({ user: { id: 5 } })).toBe(5);
    expect(o.getUser({})).toBeUndefined();
  });

  it('defaults and resolves the endpoint health and rotation options', () => {
    const o = resolveThornOptions({});
    expect(o.autoDisable).toEqual({ after: 5 * 24 * 3_600_000, minFailures: 10 });
    expect(o.onSubscriptionDisabled).toBeUndefined();
    expect(o.secretRotationGrace).toBe(24 * 3_600_000);
    expect(resolveThornOptions({ autoDisable: false }).autoDisable).toBe(false);
    expect(resolveThornOptions({ autoDisable: true }).autoDisable).toEqual({
      after: 5 * 24 * 3_600_000,
      minFailures: 10,
    });
    expect(resolveThornOptions({ autoDisable: { minFailures: 3 } }).autoDisable).toEqual({
      after: 5 * 24 * 3_600_000,
      minFailures: 3,
    });
    expect(resolveThornOptions({ autoDisable: { after: 0, minFailures: 1 } }).autoDisable).toEqual({
      after: 0,
      minFailures: 1,
    });
    expect(resolveThornOptions({ secretRotationGrace: 0 }).secretRotationGrace).toBe(0);
  });

  it('defaults and resolves the ledger option', () => {
    expect(resolveThornOptions({}).ledger).toBe(false);
    const defaults = {
      pollInterval: 1000,
      retention: 7 * 24 * 3_600_000,
      maxResponseBody: 1024,
      batchSize: 500,
      lease: 60_000,
    };
    expect(resolveThornOptions({ ledger: true }).ledger).toEqual(defaults);
    expect(resolveThornOptions({ ledger: { batchSize: 50, retention: 0 } }).ledger).toEqual({
      ...defaults,
      batchSize: 50,
      retention: 0,
    });
    expect(resolveThornOptions({ ledger: false }).ledger).toBe(false);
  });

  it('merges codecs over the defaults', () => {
    const xml = () => '<x/>';
    const o = resolveThornOptions({ codecs: { 'application/xml': xml } });
    expect(o.codecs['application/xml']).toBe(xml);
    expect(o.codecs['application/json']).toBeDefined();
  });

  it.each([
    [
      { dispatcher: 'bul' },
      /"dispatcher" is invalid \(got "bul"\): use 'direct', 'bull', 'bullmq', 'disabled' or a class/,
    ],
    [{ timeout: -1 }, /"timeout" is invalid \(got -1\)/],
    [{ timeout: 'x' }, /"timeout" is invalid/],
    [{ retryMax: 1.5 }, /"retryMax" is invalid/],
    [{ retry: 'yes' }, /"retry" is invalid.*true or false/],
    [{ retryBackoff: 'linear' }, /"retryBackoff" is invalid.*'fixed' or 'exponential'/],
    [{ eventChoices: 'a.b' }, /"eventChoices" is invalid.*array/],
    [{ eventChoices: [1] }, /"eventChoices" is invalid/],
    [{ recipientValidators: ['x'] }, /"recipientValidators" is invalid/],
    [{ codecs: { 'text/plain': 'nope' } }, /"codecs\["text\/plain"\]" is invalid/],
    [{ subscribers: ['http://x'] }, /"subscribers" is invalid/],
    [{ concurrency: 0 }, /"concurrency" is invalid.*>= 1/],
    [{ chunkSize: 0 }, /"chunkSize" is invalid/],
    [{ hmacSigner: 'sign' }, /"hmacSigner" is invalid.*function/],
    [{ baseUrl: '' }, /"baseUrl" is invalid/],
    [{ timout: 5 }, /"timout" is invalid.*unknown option/],
    [{ enqueueTimeout: 0 }, /"enqueueTimeout" is invalid.*>= 1/],
    [{ enqueueTimeout: '5s' }, /"enqueueTimeout" is invalid/],
    [{ bullmq: 6379 }, /"bullmq" is invalid \(got 6379\): use a Redis URL or BullMQ queue options/],
    [{ bullmq: ['redis://x'] }, /"bullmq" is invalid/],
    [{ subscriptionCacheTtl: -1 }, /"subscriptionCacheTtl" is invalid.*>= 0/],
    [{ subscriptionCacheTtl: 0.5 }, /"subscriptionCacheTtl" is invalid/],
    [{ autoDisable: 'off' }, /"autoDisable" is invalid.*use false, true or \{ after/],
    [{ autoDisable: { after: -1 } }, /"autoDisable" is invalid/],
    [{ autoDisable: { minFailures: 0 } }, /"autoDisable" is invalid/],
    [{ autoDisable: { after: 1, minFailure: 3 } }, /"autoDisable" is invalid/],
    [{ autoDisable: [] }, /"autoDisable" is invalid/],
    [{ onSubscriptionDisabled: 'log' }, /"onSubscriptionDisabled" is invalid.*function/],
    [{ secretRotationGrace: -1 }, /"secretRotationGrace" is invalid.*>= 0/],
    [{ ledger: 'yes' }, /"ledger" is invalid.*use true, false or an object/],
    [{ ledger: [] }, /"ledger" is invalid/],
    [{ ledger: { pollInterval: 0 } }, /"ledger.pollInterval" is invalid.*>= 10/],
    [{ ledger: { batchSize: 1.5 } }, /"ledger.batchSize" is invalid.*integer >= 1/],
    [{ ledger: { retention: -1 } }, /"ledger.retention" is invalid.*>= 0/],
    [{ ledger: { lease: 10 } }, /"ledger.lease" is invalid.*>= 1000/],
    [
      { ledger: { lease: 3000 }, timeout: 2500 },
      /ledger.lease \(3000 ms\) must be longer than one attempt \(2500 ms/,
    ],
    [
      { ledger: { lease: 10_000 }, timeout: 3000, allowRedirects: true, maxRedirects: 3 },
      /ledger.lease \(10000 ms\) must be longer than one attempt \(12000 ms/,
    ],
    [{ ledger: { maxResponsBody: 10 } }, /"ledger.maxResponsBody" is invalid.*unknown ledger option/],
    [{ secretRotationGrace: '1d' }, /"secretRotationGrace" is invalid/],
  ])('rejects %p naming the option', (bad, message) => {
    expect(() => resolveThornOptions(bad as any)).toThrow(message);
  });

  it.each(['isGlobal', 'controller', 'path', 'subscriberEntity', 'dataSource'])(
    'refuses the extra %p among the options (only an async factory can put it there), saying where it goes',
    (extra) => {
      expect(() => resolveThornOptions({ [extra]: undefined } as any)).toThrow(
        new RegExp(
          `extra "${extra}" was returned by the options factory.*forRootAsync\\(\\) next to useFactory`,
        ),
      );
    },
  );

  it('accepts options given alongside the extras when they are among the options (forRoot), refuses them otherwise', () => {
    expect(resolveThornOptions({ timeout: 5 }, { timeout: 5 }).timeout).toBe(5);
    expect(() => resolveThornOptions({}, { timeout: 5 })).toThrow(
      /option "timeout" was passed to forRootAsync\(\) next to the factory/,
    );
    expect(() => resolveThornOptions({}, { timout: 5 })).toThrow(
      /"timout" is invalid \(got 5\): unknown option/,
    );
  });

  it('has a default for every extra, dataSource included, and validates them', () => {
    expect(DEFAULT_EXTRAS).toEqual({
      isGlobal: true,
      controller: true,
      path: 'hooks',
      subscriberEntity: Subscriber,
      dataSource: undefined,
    });
    expect(Object.keys(DEFAULT_EXTRAS)).toContain('dataSource');
    expect(resolveExtras({ path: 'webhooks', subscriberEntity: false })).toEqual({
      ...DEFAULT_EXTRAS,
      path: 'webhooks',
      subscriberEntity: false,
    });
    expect(() => resolveExtras({ controller: 'yes' as any })).toThrow(
      /"controller" is invalid.*true or false/,
    );
    expect(() => resolveExtras({ isGlobal: null as any })).toThrow(/"isGlobal" is invalid/);
    expect(() => resolveExtras({ path: 1 as any })).toThrow(/"path" is invalid/);
    expect(() => resolveExtras({ subscriberEntity: true as any })).toThrow(/"subscriberEntity" is invalid/);
    expect(() => resolveExtras({ dataSource: 1 as any })).toThrow(/"dataSource" is invalid/);
    expect(withoutExtras({ ...DEFAULT_EXTRAS, timeout: 1 })).toEqual({ timeout: 1 });
  });

  it('resolves delivery settings send() → Event → module', () => {
    const module = resolveThornOptions({ timeout: 1000, retryMax: 5 });
    const s = resolveDeliverySettings(module, { timeout: 10 }, { timeout: 20, retryMax: 2, retry: false });
    expect(s).toMatchObject({ timeout: 10, retryMax: 2, retry: false, retryDelay: 60000 });
    expect(resolveDeliverySettings(module, undefined, { timeout: 20 }).timeout).toBe(20);
    expect(resolveDeliverySettings(module).timeout).toBe(1000);
  });

  it('resolved delivery settings hold the delivery settings only, never the rest of the module options', () => {
    const module = resolveThornOptions({
      defaultHmacSecret: 'module-secret',
      subscribers: { 'a.b': 'http://x' },
    });
    expect(Object.keys(resolveDeliverySettings(module, { timeout: 5 })).sort()).toEqual(
      ['retry', 'retryBackoff', 'retryDelay', 'retryDelayMax', 'retryMax', 'timeout'].sort(),
    );
    expect(JSON.stringify(resolveDeliverySettings(module))).not.toContain('module-secret');
  });

  it('collects the send() / Event overrides (send() first), checked like the module options', () => {
    expect(
      deliveryOverrides('a.b', { timeout: 10, sender: 'u1' } as never, { timeout: 20, retry: false }),
    ).toEqual({
      timeout: 10,
      retry: false,
    });
    expect(deliveryOverrides('a.b', undefined, {})).toEqual({});
    expect(() => deliveryOverrides('a.b', { timeout: -1 })).toThrow(/"a\.b".*"timeout".*>= 1/);
    expect(() => deliveryOverrides('a.b', undefined, { retryBackoff: 'linear' as never })).toThrow(
      /retryBackoff/,
    );
  });
});
