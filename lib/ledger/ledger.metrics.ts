import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LEDGER_BACKLOG_COUNT_CAP } from '../telemetry/telemetry.names.js';
import { observeLedgerBacklog } from '../telemetry/telemetry.js';
import { ThornLedger } from './ledger.js';

/**
 * Reports the delivery ledger's backlog as the observable gauges `thorn.ledger.backlog.age` (how overdue the most
 * overdue pending delivery is, ms) and `thorn.ledger.backlog.due` (due deliveries, counted up to 10000), when the
 * ledger is on. Both come from two index-backed queries run at most once a second, only when a metric reader collects.
 * Registered at bootstrap, so an OpenTelemetry SDK started before the app (as OpenTelemetry requires) receives it.
 */
@Injectable()
export class ThornLedgerMetrics implements OnApplicationBootstrap, OnApplicationShutdown {
  private stop?: () => void;

  constructor(@Inject(ThornLedger) private readonly ledger: ThornLedger | null) {}

  onApplicationBootstrap(): void {
    const ledger = this.ledger;
    if (!ledger) return;
    this.stop = observeLedgerBacklog(async () => {
      const now = Date.now();
      const [oldestDue, due] = await Promise.all([
        ledger.store.oldestDue(now),
        ledger.store.countDue(now, LEDGER_BACKLOG_COUNT_CAP),
      ]);
      return { oldestDue, due };
    });
  }

  onApplicationShutdown(): void {
    this.stop?.();
    this.stop = undefined;
  }
}
