import { Module } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { DeliveryService } from './delivery/delivery.service.js';
import { THORN_TRANSPORT } from './delivery/transport.token.js';
import type { Transport } from './delivery/transport.js';
import { createTransport } from './delivery/transport.factory.js';
import { Dispatcher } from './dispatchers/dispatcher.js';
import { createDispatcher } from './dispatchers/dispatcher.factory.js';
import { EventService } from './events/event.service.js';
import { ThornHealthIndicator } from './health/thorn.health.js';
import { ModelEventEmitter } from './typeorm/model-event.emitter.js';
import { modelEventProviders } from './typeorm/model-events.providers.js';
import { SubscriptionStore } from './subscriptions/subscription.store.js';
import { THORN_OPTIONS } from './thorn.constants.js';
import { ConfigurableThornModule, THORN_MODULE_OPTIONS } from './thorn.module-definition.js';
import { operationsProviders } from './thorn.operations.js';
import { resolveThornOptions, type ResolvedThornOptions, type ThornModuleOptions } from './thorn-options.js';

/** Webhooks for NestJS: `ThornModule.forRoot(options)` or `ThornModule.forRootAsync({ useFactory, inject })`. */
@Module({
  providers: [
    {
      provide: THORN_OPTIONS,
      useFactory: (raw: ThornModuleOptions) => resolveThornOptions(raw),
      inject: [THORN_MODULE_OPTIONS],
    },
    {
      provide: THORN_TRANSPORT,
      useFactory: (o: ResolvedThornOptions): Promise<Transport> =>
        createTransport(o.transport, { lookup: o.lookup, maxResponseBody: o.maxResponseBody }),
      inject: [THORN_OPTIONS],
    },
    {
      provide: DeliveryService,
      useFactory: (o: ResolvedThornOptions, store: SubscriptionStore | null, transport: Transport) =>
        new DeliveryService(o, store, transport),
      inject: [THORN_OPTIONS, SubscriptionStore, THORN_TRANSPORT],
    },
    {
      provide: Dispatcher,
      useFactory: (o: ResolvedThornOptions, delivery: DeliveryService, moduleRef: ModuleRef) =>
        createDispatcher(o.dispatcher, o, delivery, moduleRef),
      inject: [THORN_OPTIONS, DeliveryService, ModuleRef],
    },
    EventService,
    ...modelEventProviders,
    ...operationsProviders,
  ],
  exports: [
    EventService,
    DeliveryService,
    Dispatcher,
    ModelEventEmitter,
    THORN_OPTIONS,
    ThornHealthIndicator,
  ],
})
export class ThornModule extends ConfigurableThornModule {}
