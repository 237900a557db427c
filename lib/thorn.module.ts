import { Module } from '@nestjs/common';
import { DeliveryService } from './delivery/delivery.service.js';
import { Dispatcher } from './dispatchers/dispatcher.js';
import { EventService } from './events/event.service.js';
import { ThornHealthIndicator } from './health/thorn.health.js';
import { loadTelemetry } from './telemetry/telemetry.js';
import { ModelEventEmitter } from './typeorm/model-event.emitter.js';
import { modelEventProviders } from './typeorm/model-events.providers.js';
import { RecipientResolver } from './subscriptions/recipient.resolver.js';
import { SubscriptionHealth } from './subscriptions/subscription.health.js';
import { SubscriptionService } from './subscriptions/subscription.service.js';
import { SubscriptionStore } from './subscriptions/subscription.store.js';
import { THORN_OPTIONS, THORN_TRANSPORT } from './thorn.constants.js';
import { ConfigurableThornModule } from './thorn.module-definition.js';
import { ThornResources } from './thorn.resources.js';
import type { ResolvedThornOptions } from './thorn-options.js';
import { operationsProviders } from './thorn.operations.js';

/** Webhooks for NestJS: `ThornModule.forRoot(options)` or `ThornModule.forRootAsync({ useFactory, inject })`. */
@Module({
  providers: [
    // creates and closes the transport and the dispatchers; the providers below only hand them out
    ThornResources,
    {
      provide: THORN_TRANSPORT,
      useFactory: (resources: ThornResources) => resources.getTransport(),
      inject: [ThornResources],
    },
    {
      provide: RecipientResolver,
      useFactory: (o: ResolvedThornOptions, store: SubscriptionStore | null) =>
        new RecipientResolver(o, store),
      inject: [THORN_OPTIONS, SubscriptionStore],
    },
    {
      provide: DeliveryService,
      useFactory: async (
        o: ResolvedThornOptions,
        store: SubscriptionStore | null,
        resources: ThornResources,
        recipients: RecipientResolver,
      ) => {
        // before anything is sent: the optional OpenTelemetry API is loaded asynchronously, once
        await loadTelemetry();
        // the hooks keep delivery/ free of the layers above: health tracking, and secrets read at attempt time
        const health = store ? new SubscriptionHealth(store, o) : null;
        return new DeliveryService(o, await resources.getTransport(), {
          onFinished: health ? (request, outcome) => health.finished(request, outcome) : undefined,
          signingKeys: (request) => recipients.signingKeys(request),
        });
      },
      inject: [THORN_OPTIONS, SubscriptionStore, ThornResources, RecipientResolver],
    },
    {
      provide: SubscriptionService,
      useFactory: (o: ResolvedThornOptions, store: SubscriptionStore | null) =>
        new SubscriptionService(store, o),
      inject: [THORN_OPTIONS, SubscriptionStore],
    },
    {
      provide: Dispatcher,
      useFactory: (
        o: ResolvedThornOptions,
        delivery: DeliveryService,
        recipients: RecipientResolver,
        resources: ThornResources,
      ) => resources.getDispatcher(o.dispatcher, delivery, recipients),
      inject: [THORN_OPTIONS, DeliveryService, RecipientResolver, ThornResources],
    },
    EventService,
    ...modelEventProviders,
    ...operationsProviders,
  ],
  exports: [
    EventService,
    DeliveryService,
    SubscriptionService,
    Dispatcher,
    RecipientResolver,
    ModelEventEmitter,
    THORN_OPTIONS,
    ThornHealthIndicator,
  ],
})
export class ThornModule extends ConfigurableThornModule {}
