import type { EventEnvelope, SendResult } from '../events/envelope.js';
import type { Dispatcher } from './dispatcher.js';

/** `dispatcher: 'disabled'`: sends nothing and looks nothing up. */
export class DisabledDispatcher implements Dispatcher {
  async dispatch(envelope: EventEnvelope): Promise<SendResult> {
    return { event: envelope.name, deliveries: [] };
  }
}
