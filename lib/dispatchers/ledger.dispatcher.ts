import type { EventEnvelope, SendResult } from '../events/envelope.js';
import { toJsonSafe } from '../events/payload.js';
import type { ThornLedger } from '../ledger/ledger.js';
import type { LedgerEvent } from '../ledger/ledger.event.js';
import { messages } from '../messages.js';
import { throwFailures, type Dispatcher } from './dispatcher.js';

/**
 * The module's dispatcher with the ledger on: `send()` records the event (through the caller's transaction when given
 * its manager) and resolves with its id; the ledger's relay delivers it through the direct deliverer or the queue
 * dispatcher (`queue`, which this one closes at shutdown).
 */
export class LedgerDispatcher implements Dispatcher {
  constructor(
    private readonly ledger: ThornLedger,
    private readonly queue?: Dispatcher,
  ) {}

  async dispatch(envelope: EventEnvelope): Promise<SendResult> {
    const [event] = await this.ledger.record([checked(envelope)], envelope.manager);
    return result(envelope.name, event);
  }

  /**
   * A buffer flush: every event in one insert. As without the ledger, one event that can't be recorded (refused, or
   * over `maxPayloadSize`) does not stop the others: they are recorded, then its error is thrown (several: an
   * AggregateError).
   */
  async dispatchMany(envelopes: EventEnvelope[]): Promise<SendResult[]> {
    const errors: unknown[] = [];
    const valid: EventEnvelope[] = [];
    for (const e of envelopes) {
      try {
        valid.push(checked(e));
      } catch (err) {
        errors.push(err);
      }
    }
    const recorded = await this.ledger.record(valid).catch((err: unknown) => {
      // over maxPayloadSize: the others were recorded
      const partial = (err as { recorded?: (LedgerEvent | undefined)[] }).recorded;
      if (!partial) throw err;
      errors.push(err);
      return partial;
    });
    throwFailures(errors, envelopes.length, 'recorded');
    return valid.map((e, i) => result(e.name, recorded[i]));
  }

  async close(): Promise<void> {
    await this.queue?.close?.();
  }
}

/** `send()`'s result: recorded with its id, or not recorded (nobody subscribes to it). */
function result(name: string, event: LedgerEvent | undefined): SendResult {
  return event
    ? { event: name, deliveries: [], recorded: true, eventId: event.record.id }
    : { event: name, deliveries: [], recorded: false };
}

/**
 * What exists only in this process can't be recorded (callbacks, per-event validators and subscribers); the context
 * callback subscribers receive is recorded as JSON.
 */
function checked(envelope: EventEnvelope): EventEnvelope {
  const refuse = (what: string) => new Error(messages.ledgerRefuses(envelope.name, what));
  if (envelope.callbacks) throw refuse('onSuccess/onError/onTimeout callbacks');
  if (envelope.validators) throw refuse('its own recipientValidators');
  if (envelope.subscribers) throw refuse('its own subscribers');
  return { ...envelope, context: toJsonSafe(envelope.context, 'context') as Record<string, unknown> };
}
