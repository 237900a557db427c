import type { EventEnvelope, SendResult } from '../events/envelope.js';

/**
 * Runs the deliveries of sent events. Both the interface to implement for a custom dispatcher
 * (`dispatcher: MyDispatcher`, instantiated with Nest DI so it can inject `RecipientResolver` and `DeliveryService`)
 * and its injection token.
 */
export abstract class Dispatcher {
  /** Delivers (or enqueues) one event. */
  abstract dispatch(envelope: EventEnvelope): Promise<SendResult>;
  /** Delivers many events at once (a buffer flush); defaults to `dispatch` for each. */
  dispatchMany?(envelopes: EventEnvelope[]): Promise<SendResult[]>;
  /** Stops timers and closes connections at application shutdown. */
  close?(): Promise<void>;
}

/**
 * After a batch (`dispatchMany`) in which some events failed: rethrows a lone error as it is, several as one
 * AggregateError naming how many of `total` events could not be `what` (e.g. "sent") and the first reason.
 */
export function throwFailures(errors: unknown[], total: number, what: string): void {
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) {
    const first = errors[0] instanceof Error ? errors[0].message : String(errors[0]);
    throw new AggregateError(
      errors,
      `${errors.length} of ${total} events could not be ${what}; first: ${first}`,
    );
  }
}
