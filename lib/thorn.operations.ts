import type { Provider } from '@nestjs/common';
import { describeHooksApi, THORN_OPENAPI } from './api/openapi/hooks.openapi.js';
import { ThornQueueMetrics } from './dispatchers/queue-metrics.js';
import { ThornHealthIndicator } from './health/thorn.health.js';
import { ThornLedgerMetrics } from './ledger/ledger.metrics.js';
import { THORN_EXTRAS } from './thorn.constants.js';
import type { ResolvedThornExtras } from './thorn-options.js';

/**
 * ThornModule's operations providers (SPEC §13): the `/hooks` OpenAPI metadata when `@nestjs/swagger` is installed
 * (applied while the app is created, before any `SwaggerModule.createDocument`), the queue-depth and ledger backlog gauges, and the
 * terminus health indicator (exported). None of them loads an optional package unless the app has it.
 */
export const operationsProviders: Provider[] = [
  {
    provide: THORN_OPENAPI,
    useFactory: (extras: ResolvedThornExtras) => (extras.controller ? describeHooksApi() : false),
    inject: [THORN_EXTRAS],
  },
  ThornQueueMetrics,
  ThornLedgerMetrics,
  ThornHealthIndicator,
];
