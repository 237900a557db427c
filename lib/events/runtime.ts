import { messages } from '../messages.js';
import type { EventService } from './event.service.js';

// The running ThornModule that module-scope `Event`s bind to when first sent. One pointer, not a registry: the
// most recently initialised app wins, and it is cleared when that app shuts down.
let active: EventService | undefined;

/** Makes `service` the one unbound events send through. */
export function activateEventService(service: EventService): void {
  active = service;
}

/** Clears the pointer if it still points at `service`. */
export function deactivateEventService(service: EventService): void {
  if (active === service) active = undefined;
}

/** The running service, or a clear error when no ThornModule is initialised. */
export function activeEventService(eventName: string): EventService {
  if (!active) throw new Error(messages.notInitialised(eventName));
  return active;
}
