import { Logger } from '@nestjs/common';
import {
  deliveryFailedLog,
  type AttemptOutcome,
  type DeliveryService,
} from '../delivery/delivery.service.js';
import { ConcurrencyLimit } from '../delivery/concurrency-limit.js';
import { nextRetry } from '../delivery/retry.js';
import type {
  DeliveryCallbacks,
  DeliveryRequest,
  DeliveryResult,
  EventEnvelope,
  SendResult,
} from '../events/envelope.js';
import type { RecipientResolver } from '../subscriptions/recipient.resolver.js';
import { deliveryIds, logError, logLine } from '../telemetry/log-fields.js';
import { throwFailures, type Dispatcher } from './dispatcher.js';

// The longest delay setTimeout honours; it fires longer ones after 1 ms.
const MAX_TIMER_DELAY = 2 ** 31 - 1;

/** A scheduled retry; `handle` is the current step's timer. */
interface RetryTimer {
  handle: NodeJS.Timeout | undefined;
}

/**
 * `dispatcher: 'direct'`: delivers in-process, at most `concurrency` requests in flight. `dispatch()` resolves when
 * every delivery's first attempt has finished; retries run later on in-process timers (not durable: use bull).
 */
export class DirectDispatcher implements Dispatcher {
  private readonly logger = new Logger('Thorn');
  private readonly limit: ConcurrencyLimit;
  private readonly timers = new Set<RetryTimer>();
  private closed = false;

  constructor(
    private readonly delivery: DeliveryService,
    private readonly recipients: RecipientResolver,
    private readonly concurrency: number,
  ) {
    this.limit = new ConcurrencyLimit(concurrency);
  }

  async dispatch(envelope: EventEnvelope): Promise<SendResult> {
    const found = this.recipients.recipientsOf(envelope);
    const recipients = Array.isArray(found) ? found : await found;
    if (!recipients.length) return { event: envelope.name, deliveries: [] };
    // a JSON body over maxPayloadSize rejects send(); any other recipient that can't be encoded fails alone
    const bodies = this.delivery.jsonBody(envelope);
    const requests = this.delivery.prepare(envelope, recipients, { bodies });
    const cb = envelope.callbacks;
    const deliveries =
      requests.length === 1
        ? [await this.deliver(requests[0], cb)]
        : await Promise.all(requests.map((r) => this.deliver(r, cb)));
    return { event: envelope.name, deliveries };
  }

  /**
   * A buffer flush: events start in order, at most `concurrency` of them at a time, so a flush of 10,000 events holds
   * a few dozen prepared deliveries in memory instead of 10,000 suspended ones.
   */
  async dispatchMany(envelopes: EventEnvelope[]): Promise<SendResult[]> {
    const results: SendResult[] = new Array(envelopes.length);
    const errors: unknown[] = [];
    let next = 0;
    const lane = async () => {
      while (next < envelopes.length) {
        const i = next++;
        // one event that can't be sent (e.g. an oversized payload) must not stop the others
        results[i] = await this.dispatch(envelopes[i]).catch((err: unknown) => {
          errors.push(err);
          return { event: envelopes[i].name, deliveries: [] };
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, envelopes.length) }, lane));
    throwFailures(errors, envelopes.length, 'sent');
    return results;
  }

  /** Retries still scheduled (for shutdown and tests). */
  get pendingRetries(): number {
    return this.timers.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t.handle);
    if (this.timers.size)
      this.logger.warn(`${this.timers.size} scheduled retries dropped at shutdown (direct dispatcher)`);
    this.timers.clear();
  }

  private deliver(req: DeliveryRequest, callbacks?: DeliveryCallbacks): Promise<DeliveryResult> {
    return this.attempt(req).then((outcome) => {
      const result = (retrying: boolean): DeliveryResult => ({
        subscription: req.subscription,
        url: req.url,
        deliveryId: req.id,
        ok: outcome.verdict.ok,
        status: outcome.response?.status,
        error: outcome.error?.message,
        retrying,
      });
      const retrying = this.settle(req, outcome, callbacks);
      return typeof retrying === 'boolean' ? result(retrying) : retrying.then(result);
    });
  }

  /** One attempt of `req`, in a concurrency slot. */
  private attempt(req: DeliveryRequest): Promise<AttemptOutcome> {
    return this.limit.run(() => this.delivery.attempt(req));
  }

  /**
   * Schedules a retry, or ends the delivery (`DeliveryService.finished()`, then the final callback); returns whether a
   * retry was scheduled (a promise only while the end is being recorded).
   */
  private settle(
    req: DeliveryRequest,
    outcome: AttemptOutcome,
    callbacks?: DeliveryCallbacks,
  ): boolean | Promise<boolean> {
    const { verdict } = outcome;
    const retry = nextRetry(req, verdict);
    const delay = this.closed ? undefined : retry;
    if (delay !== undefined) {
      this.schedule(delay, () => {
        void this.attempt(req)
          .then((o) => this.settle(req, o, callbacks))
          .catch((err: unknown) =>
            // attempt() and settle() do not reject; if one ever did, say so instead of an unhandled rejection
            this.logger.error(logLine(`A retry could not run: ${logError(err)}`, deliveryIds(req))),
          );
      });
      return true;
    }
    const end = (): false => {
      if (!verdict.ok) this.logger.warn(deliveryFailedLog(req, outcome));
      if (callbacks) void this.callback(req, outcome, callbacks);
      return false;
    };
    // a retry dropped at shutdown did not end the delivery: the receiver's health is not told
    if (retry !== undefined) return end();
    const finished = this.delivery.end(req, outcome);
    return finished ? finished.then(end) : end();
  }

  /**
   * Runs `run` after `delay` ms. setTimeout fires delays over 2^31 - 1 ms (about 24.8 days) after 1 ms, so a longer
   * delay (e.g. a Retry-After of weeks with a large retryDelayMax) waits in steps of at most that.
   */
  private schedule(delay: number, run: () => void): void {
    const timer: RetryTimer = { handle: undefined };
    const arm = (remaining: number) => {
      timer.handle = setTimeout(
        () => {
          if (remaining > MAX_TIMER_DELAY) return arm(remaining - MAX_TIMER_DELAY);
          this.timers.delete(timer);
          run();
        },
        Math.min(remaining, MAX_TIMER_DELAY),
      );
    };
    arm(delay);
    this.timers.add(timer);
  }

  private async callback(
    req: DeliveryRequest,
    outcome: AttemptOutcome,
    cb?: DeliveryCallbacks,
  ): Promise<void> {
    if (!cb) return;
    try {
      if (outcome.verdict.ok) await cb.onSuccess?.(req);
      else if (outcome.error?.name === 'DeliveryTimeoutError' && cb.onTimeout)
        await cb.onTimeout(req, outcome.error);
      else await cb.onError?.(req, outcome.error ?? new Error('delivery failed'));
    } catch (err) {
      this.logger.error(logLine(`A send() callback threw: ${logError(err)}`, deliveryIds(req)));
    }
  }
}
