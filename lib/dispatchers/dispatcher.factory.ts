import type { ModuleRef } from '@nestjs/core';
import type { DeliveryService } from '../delivery/delivery.service.js';
import type { ThornLedger } from '../ledger/ledger.js';
import { messages } from '../messages.js';
import type { RecipientResolver } from '../subscriptions/recipient.resolver.js';
import type { DispatcherOption, ResolvedThornOptions } from '../thorn-options.js';
import { DirectDispatcher } from './direct.dispatcher.js';
import { DisabledDispatcher } from './disabled.dispatcher.js';
import type { Dispatcher } from './dispatcher.js';
import { LedgerDispatcher } from './ledger.dispatcher.js';

/**
 * Builds the dispatcher named by `option`; custom classes are created with Nest DI (they may inject `DeliveryService`
 * and `RecipientResolver`). With `ledger`, `send()` records events in it and the dispatcher delivers what its relay
 * hands over: in-process (direct) or through the queue (bull, bullmq).
 */
export async function createDispatcher(
  option: DispatcherOption,
  options: ResolvedThornOptions,
  delivery: DeliveryService,
  recipients: RecipientResolver,
  moduleRef: ModuleRef,
  ledger?: ThornLedger,
): Promise<Dispatcher> {
  if (option === 'disabled') return new DisabledDispatcher();
  if (ledger) {
    if (option === 'direct') {
      ledger.start(ledger.deliverer);
      return new LedgerDispatcher(ledger);
    }
    if (option !== 'bull' && option !== 'bullmq') throw new Error(messages.ledgerDispatcher());
  }
  if (option === 'direct') return new DirectDispatcher(delivery, recipients, options.concurrency);
  // queue dispatchers are loaded only here, so apps on other dispatchers never need their optional packages
  if (option === 'bull') {
    let bull: typeof import('./bull/bull.dispatcher.js');
    try {
      bull = await import('./bull/bull.dispatcher.js');
    } catch (err) {
      if (isMissingPackage(err))
        throw new Error(messages.bullMissing((err as Error).message), { cause: err });
      throw err;
    }
    return withLedger(
      await bull.BullDispatcher.create(options, delivery, recipients, moduleRef, ledger),
      ledger,
    );
  }
  if (option === 'bullmq') {
    let bullmq: typeof import('./bullmq/bullmq.dispatcher.js');
    try {
      bullmq = await import('./bullmq/bullmq.dispatcher.js');
    } catch (err) {
      if (isMissingPackage(err))
        throw new Error(messages.bullmqMissing((err as Error).message), { cause: err });
      throw err;
    }
    return withLedger(
      await bullmq.BullMQDispatcher.create(options, delivery, recipients, moduleRef, ledger),
      ledger,
    );
  }
  if (typeof option === 'function') return moduleRef.create(option);
  throw new Error(messages.unknownDispatcher(option));
}

/** A queue dispatcher as the module's dispatcher: behind the ledger when it is on. */
function withLedger(queue: Dispatcher, ledger?: ThornLedger): Dispatcher {
  return ledger ? new LedgerDispatcher(ledger, queue) : queue;
}

/** The import failed because a package is missing: the queue library or one of its dependencies (our files ship in dist). */
function isMissingPackage(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}
