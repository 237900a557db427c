import { ConfigurableModuleBuilder } from '@nestjs/common';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { hooksControllers, hooksProviders } from './api/hooks-controller.factory.js';
import { messages } from './messages.js';
import { SubscriptionStore } from './subscriptions/subscription.store.js';
import { THORN_DATA_SOURCE, THORN_EXTRAS, THORN_MODULE_OPTIONS, THORN_OPTIONS } from './thorn.constants.js';
import {
  DEFAULT_EXTRAS,
  resolveExtras,
  resolveThornOptions,
  withoutExtras,
  type ResolvedThornOptions,
  type ThornModuleExtras,
  type ThornModuleOptions,
} from './thorn-options.js';

export type { ResolvedThornExtras, ThornModuleExtras } from './thorn-options.js';

/**
 * `forRoot({ ...options, ...extras })` and `forRootAsync({ useFactory | useClass | useExisting, ...extras })`, one code
 * path: the extras (`isGlobal`, `controller`, `path`, `subscriberEntity`, `dataSource`) shape the module graph here;
 * the options are resolved once, from `THORN_MODULE_OPTIONS`, into `THORN_OPTIONS`.
 */
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
    // forRoot(): the options themselves; forRootAsync(): what was passed next to the factory (refused there)
    const alongside = withoutExtras(extras);
    const entity = resolved.subscriberEntity;
    return {
      ...definition,
      global: resolved.isGlobal,
      // forFeature registers the entity for `autoLoadEntities: true`; listing it in `entities` works too
      imports: [
        ...(definition.imports ?? []),
        ...(entity ? [TypeOrmModule.forFeature([entity], resolved.dataSource)] : []),
      ],
      controllers: hooksControllers(resolved),
      providers: [
        ...(definition.providers ?? []),
        {
          provide: THORN_OPTIONS,
          useFactory: (raw: ThornModuleOptions) => resolveThornOptions(raw, alongside),
          inject: [THORN_MODULE_OPTIONS],
        },
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
          useFactory: (dataSource: DataSource | null, options: ResolvedThornOptions) => {
            if (!entity) return null;
            if (!dataSource) throw new Error(messages.noDataSource(resolved.dataSource ?? 'default'));
            if (!dataSource.hasMetadata(entity)) throw new Error(messages.entityNotRegistered(entity.name));
            // started (version triggers, write listener) in its onModuleInit
            return new SubscriptionStore(dataSource, entity, { cacheTtl: options.subscriptionCacheTtl });
          },
          inject: [THORN_DATA_SOURCE, THORN_OPTIONS],
        },
      ],
    };
  })
  .build();
