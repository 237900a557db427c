import type { ModuleRef } from '@nestjs/core';
import type { DeliveryService } from '../delivery/delivery.service.js';
import { messages } from '../messages.js';
import type { DispatcherOption, ResolvedThornOptions } from '../thorn-options.js';
import { DirectDispatcher } from './direct.dispatcher.js';
import { DisabledDispatcher } from './disabled.dispatcher.js';
import type { Dispatcher } from './dispatcher.js';

/** Builds the dispatcher named by `option`; custom classes are created with Nest DI (they may inject `DeliveryService`). */
export async function createDispatcher(
  option: DispatcherOption,
  options: ResolvedThornOptions,
  delivery: DeliveryService,
  moduleRef: ModuleRef,
): Promise<Dispatcher> {
  if (option === 'direct') return new DirectDispatcher(delivery, options.concurrency);
  if (option === 'disabled') return new DisabledDispatcher();
  if (option === 'bull') {
    throw new Error(messages.bullNotYet());
  }
  if (typeof option === 'function') return moduleRef.create(option);
  throw new Error(messages.unknownDispatcher(option));
}
