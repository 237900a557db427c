import { messages } from '../messages.js';
import { sharedState } from '../shared-state.js';
import type { EventService } from './event.service.js';

// The running ThornModule that module-scope `Event`s bind to when first sent. One pointer, not a registry: the
// most recently initialised app wins, and it is cleared when that app shuts down. It lives in the shared state so
// the ESM and CommonJS builds agree on it.

/** Makes `service` the one unbound events send through. */
export function activateEventService(service: EventService): void {
  sharedState.eventService = service;
}

/** Clears the pointer if it still points at `service`. */
export function deactivateEventService(service: EventService): void {
  if (sharedState.eventService === service) sharedState.eventService = undefined;
}

/** The running service, or a clear error when no ThornModule is initialised. */
export function activeEventService(eventName: string): EventService {
  const active = sharedState.eventService;
  if (!active) throw new Error(messages.notInitialised(eventName));
  return active;
}
