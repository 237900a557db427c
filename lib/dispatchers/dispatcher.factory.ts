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
  if (option === 'bull') {
    // loaded only here, so apps on other dispatchers never need the optional `bull` package
    let bull: typeof import('./bull/bull.dispatcher.js');
    try {
      bull = await import('./bull/bull.dispatcher.js');
    } catch (err) {
      if (isMissingBull(err)) throw new Error(messages.bullMissing((err as Error).message), { cause: err });
      throw err;
    }
    return bull.BullDispatcher.create(options, delivery, recipients, moduleRef);
  }
  if (typeof option === 'function') return moduleRef.create(option);
  throw new Error(messages.unknownDispatcher(option));
}

/** The import failed because a package is missing: `bull` itself or one of its dependencies (our files ship in dist). */
function isMissingBull(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}
