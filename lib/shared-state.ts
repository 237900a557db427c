import { AsyncLocalStorage } from 'node:async_hooks';
import type { EventBuffer } from './events/event-buffer.js';
import type { EventService } from './events/event.service.js';
import { THORN_VERSION } from './thorn.constants.js';
import type { ModelEventEmitter } from './typeorm/model-event.emitter.js';

/** The package's process-wide state: the few things every copy of this version must agree on. */
export interface ThornSharedState {
  /** The running ThornModule's service, which module-scope `Event`s send through. */
  eventService?: EventService;
  /** The running ThornModule's model-event emitter, for `getModelEvents()` outside DI. */
  modelEventEmitter?: ModelEventEmitter;
  /** The `bufferEvents` context. */
  readonly bufferStorage: AsyncLocalStorage<EventBuffer>;
}

// The ESM build (dist/) and the CommonJS build (dist/cjs/) are two module instances; an app can load both (an ESM
// dependency imports the package while the app require()s it). Module-level variables would then exist twice and an
// `Event` bound through one copy would not see a ThornModule started through the other, so the state lives on
// globalThis under a registered symbol, once per process and version.
const KEY = Symbol.for(`nestjs-thorn@${THORN_VERSION}:state`);
const holder = globalThis as typeof globalThis & { [KEY]?: ThornSharedState };

/** The one state object of this process. */
export const sharedState: ThornSharedState = (holder[KEY] ??= {
  bufferStorage: new AsyncLocalStorage<EventBuffer>(),
});
