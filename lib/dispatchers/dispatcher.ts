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
