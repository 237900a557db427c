import { Module } from '@nestjs/common';
import { DeliveryService } from './delivery/delivery.service.js';
import type { DataSource } from 'typeorm';
import { Dispatcher } from './dispatchers/dispatcher.js';
import { DeliveryLogService } from './ledger/delivery-log.service.js';
import { ThornLedger, type LedgerThornOptions } from './ledger/ledger.js';
import { messages } from './messages.js';
import { EventService } from './events/event.service.js';
import { ThornHealthIndicator } from './health/thorn.health.js';
import { loadTelemetry } from './telemetry/telemetry.js';
import { ModelEventEmitter } from './typeorm/model-event.emitter.js';
import { modelEventProviders } from './typeorm/model-events.providers.js';
import { RecipientResolver } from './subscriptions/recipient.resolver.js';
import { SubscriptionHealth } from './subscriptions/subscription.health.js';
import { SubscriptionService } from './subscriptions/subscription.service.js';
import { SubscriptionStore } from './subscriptions/subscription.store.js';
import { THORN_DATA_SOURCE, THORN_EXTRAS, THORN_OPTIONS, THORN_TRANSPORT } from './thorn.constants.js';
import { ConfigurableThornModule } from './thorn.module-definition.js';
import { ThornResources } from './thorn.resources.js';
import type { ResolvedThornExtras, ResolvedThornOptions } from './thorn-options.js';
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
      // the delivery ledger (option `ledger`), or null; stops relaying before the DataSource closes
      provide: ThornLedger,
      useFactory: async (
        o: ResolvedThornOptions,
        extras: ResolvedThornExtras,
        dataSource: DataSource | null,
        recipients: RecipientResolver,
        delivery: DeliveryService,
        store: SubscriptionStore | null,
      ) => {
        if (!o.ledger || o.dispatcher === 'disabled') return null;
        if (!dataSource) throw new Error(messages.ledgerNeedsDataSource(extras.dataSource ?? 'default'));
        const ledger = new ThornLedger(o as LedgerThornOptions, dataSource, recipients, delivery, store);
        await ledger.checkTables();
        return ledger;
      },
      inject: [
        THORN_OPTIONS,
        THORN_EXTRAS,
        THORN_DATA_SOURCE,
        RecipientResolver,
        DeliveryService,
        SubscriptionStore,
      ],
    },
    {
      // the delivery log (SPEC §10) for the app and the /hooks routes; disabled without the ledger
      provide: DeliveryLogService,
      useFactory: (o: ResolvedThornOptions, ledger: ThornLedger | null, store: SubscriptionStore | null) =>
        new DeliveryLogService(ledger, store, o),
      inject: [THORN_OPTIONS, ThornLedger, SubscriptionStore],
    },
    {
      provide: Dispatcher,
      useFactory: (
        o: ResolvedThornOptions,
        delivery: DeliveryService,
        recipients: RecipientResolver,
        resources: ThornResources,
        ledger: ThornLedger | null,
      ) => resources.getDispatcher(o.dispatcher, delivery, recipients, ledger),
      inject: [THORN_OPTIONS, DeliveryService, RecipientResolver, ThornResources, ThornLedger],
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
    ThornLedger,
    DeliveryLogService,
  ],
})
export class ThornModule extends ConfigurableThornModule {}
