import type { ModuleRef } from '@nestjs/core';
import type { DeliveryService } from '../delivery/delivery.service.js';
import { messages } from '../messages.js';
import type { RecipientResolver } from '../subscriptions/recipient.resolver.js';
import type { DispatcherOption, ResolvedThornOptions } from '../thorn-options.js';
import { DirectDispatcher } from './direct.dispatcher.js';
import { DisabledDispatcher } from './disabled.dispatcher.js';
import type { Dispatcher } from './dispatcher.js';

/**
 * Builds the dispatcher named by `option`; custom classes are created with Nest DI (they may inject `DeliveryService`
 * and `RecipientResolver`).
 */
export async function createDispatcher(
  option: DispatcherOption,
  options: ResolvedThornOptions,
  delivery: DeliveryService,
  recipients: RecipientResolver,
  moduleRef: ModuleRef,
): Promise<Dispatcher> {
  if (option === 'direct') return new DirectDispatcher(delivery, recipients, options.concurrency);
  if (option === 'disabled') return new DisabledDispatcher();
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
    return bull.BullDispatcher.create(options, delivery, recipients, moduleRef);
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
    return bullmq.BullMQDispatcher.create(options, delivery, recipients, moduleRef);
  }
  if (typeof option === 'function') return moduleRef.create(option);
  throw new Error(messages.unknownDispatcher(option));
}

/** The import failed because a package is missing: the queue library or one of its dependencies (our files ship in dist). */
function isMissingPackage(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}
