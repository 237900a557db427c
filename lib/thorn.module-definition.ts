import { ConfigurableModuleBuilder, type Type } from '@nestjs/common';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { hooksControllers, hooksProviders } from './api/hooks-controller.factory.js';
import { messages } from './messages.js';
import { SubscriptionStore } from './subscriptions/subscription.store.js';
import { Subscriber } from './subscriptions/subscriber.entity.js';
import { THORN_DATA_SOURCE, THORN_EXTRAS, THORN_MODULE_OPTIONS } from './thorn.constants.js';
import type { ThornModuleOptions } from './thorn-options.js';

/**
 * Choices that shape the module graph, so they must be known before an async options factory runs:
 * `forRoot({ ...options, ...extras })` and `forRootAsync({ useFactory, ...extras })` both take them.
 */
export interface ThornModuleExtras {
  /** Register the module globally (default true). */
  isGlobal?: boolean;
  /** Mount the `/hooks` REST controller (default true). */
  controller?: boolean;
  /** Where the controller is mounted (default `'hooks'`). */
  path?: string;
  /** Entity used for stored subscriptions (default `Subscriber`); `false` = static subscribers only, no TypeORM. */
  subscriberEntity?: Type<any> | false;
  /** Name of the TypeORM DataSource (default: the default one). */
  dataSource?: string;
}

/** Extras with their defaults applied. */
export type ResolvedThornExtras = Required<Omit<ThornModuleExtras, 'dataSource'>> & { dataSource?: string };

const DEFAULT_EXTRAS: ResolvedThornExtras = {
  isGlobal: true,
  controller: true,
  path: 'hooks',
  subscriberEntity: Subscriber,
};

export const {
  ConfigurableModuleClass: ConfigurableThornModule,
  OPTIONS_TYPE: THORN_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: THORN_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<ThornModuleOptions>({
  moduleName: 'Thorn',
  optionsInjectionToken: THORN_MODULE_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createThornOptions')
  .setExtras<ThornModuleExtras>(DEFAULT_EXTRAS, (definition, extras) => {
    const resolved = resolveExtras(extras);
    const entity = resolved.subscriberEntity;
    return {
      ...definition,
      global: resolved.isGlobal,
      // forFeature registers the entity for `autoLoadEntities: true`; listing it in `entities` works too
      imports: [
        ...(definition.imports ?? []),
        ...(entity ? [TypeOrmModule.forFeature([entity], resolved.dataSource)] : []),
      ],
      controllers: resolved.controller ? hooksControllers(resolved) : [],
      providers: [
        ...(definition.providers ?? []),
        { provide: THORN_EXTRAS, useValue: resolved },
        ...hooksProviders(resolved),
        {
          // the app's DataSource, when there is one (stored subscriptions, model events)
          provide: THORN_DATA_SOURCE,
          useFactory: (dataSource?: DataSource) => dataSource ?? null,
          inject: [{ token: getDataSourceToken(resolved.dataSource), optional: true }],
        },
        {
          provide: SubscriptionStore,
          useFactory: (dataSource: DataSource | null) => {
            if (!entity) return null;
            if (!dataSource) throw new Error(messages.noDataSource(resolved.dataSource ?? 'default'));
            if (!dataSource.hasMetadata(entity)) throw new Error(messages.entityNotRegistered(entity.name));
            return new SubscriptionStore(dataSource, entity);
          },
          inject: [THORN_DATA_SOURCE],
        },
      ],
    };
  })
  .build();

/** Applies defaults to the extras and validates them. */
export function resolveExtras(extras: ThornModuleExtras): ResolvedThornExtras {
  const r = {
    ...DEFAULT_EXTRAS,
    ...Object.fromEntries(Object.entries(extras ?? {}).filter(([, v]) => v !== undefined)),
  } as ResolvedThornExtras;
  if (typeof r.isGlobal !== 'boolean')
    throw new Error(`ThornModule option "isGlobal" is invalid: use true or false`);
  if (typeof r.controller !== 'boolean')
    throw new Error(`ThornModule option "controller" is invalid: use true or false`);
  if (typeof r.path !== 'string')
    throw new Error(`ThornModule option "path" is invalid: use a string such as 'hooks'`);
  if (r.subscriberEntity !== false && typeof r.subscriberEntity !== 'function') {
    throw new Error(`ThornModule option "subscriberEntity" is invalid: use an entity class or false`);
  }
  return r;
}
