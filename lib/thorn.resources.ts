import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { DeliveryService } from './delivery/delivery.service.js';
import { createTransport } from './delivery/transport.factory.js';
import type { Transport } from './delivery/transport.js';
import { createDispatcher } from './dispatchers/dispatcher.factory.js';
import type { Dispatcher } from './dispatchers/dispatcher.js';
import type { ThornLedger } from './ledger/ledger.js';
import type { RecipientResolver } from './subscriptions/recipient.resolver.js';
import { InjectThornOptions } from './thorn.decorators.js';
import type { DispatcherOption, ResolvedThornOptions } from './thorn-options.js';

/**
 * Owns what the module opens: the HTTP transport and every dispatcher (the module's own and those `Event`s choose with
 * their `dispatcher` option). Each is created once, on first use, and all are closed at shutdown: dispatchers first
 * (a bull worker finishes its jobs over the transport), then the transport.
 */
@Injectable()
export class ThornResources implements OnApplicationShutdown {
  private transport?: Promise<Transport>;
  private readonly dispatchers = new Map<DispatcherOption, Promise<Dispatcher>>();
  /** The module's dispatcher when the ledger is on (relaying the ledger, not the one an Event may name). */
  private ledgerDispatcher?: Promise<Dispatcher>;

  constructor(
    @InjectThornOptions() private readonly options: ResolvedThornOptions,
    @Inject(ModuleRef) private readonly moduleRef: ModuleRef,
  ) {}

  /** The HTTP transport every delivery uses. */
  getTransport(): Promise<Transport> {
    this.transport ??= createTransport(this.options.transport, {
      lookup: this.options.lookup,
      maxResponseBody: this.options.maxResponseBody,
      maxConnections: this.options.concurrency,
    });
    return this.transport;
  }

  /**
   * The dispatcher named by `option`; custom classes are created with Nest DI. With `ledger`: the module's dispatcher,
   * relaying that ledger.
   */
  getDispatcher(
    option: DispatcherOption,
    delivery: DeliveryService,
    recipients: RecipientResolver,
    ledger?: ThornLedger | null,
  ): Promise<Dispatcher> {
    if (ledger) {
      this.ledgerDispatcher ??= createDispatcher(
        option,
        this.options,
        delivery,
        recipients,
        this.moduleRef,
        ledger,
      );
      return this.ledgerDispatcher;
    }
    let d = this.dispatchers.get(option);
    if (!d) {
      // with the ledger on a queue, an Event naming the same queue gets a producer only: the module's worker runs its
      // jobs too, and a second worker without the ledger would take the ledger's `deliveries` jobs and fail them
      const options =
        this.options.ledger && option === this.options.dispatcher
          ? { ...this.options, worker: false }
          : this.options;
      d = createDispatcher(option, options, delivery, recipients, this.moduleRef);
      this.dispatchers.set(option, d);
    }
    return d;
  }

  async onApplicationShutdown(): Promise<void> {
    for (const d of [
      ...this.dispatchers.values(),
      ...(this.ledgerDispatcher ? [this.ledgerDispatcher] : []),
    ]) {
      // one that failed to be created has nothing to close (its error reached whoever asked for it)
      const dispatcher = await d.catch(() => undefined);
      await dispatcher?.close?.();
    }
    const transport = await this.transport?.catch(() => undefined);
    await transport?.close();
  }
}
