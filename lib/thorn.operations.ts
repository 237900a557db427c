import type { Provider } from '@nestjs/common';
import { ThornQueueMetrics } from './dispatchers/queue-metrics.js';
import { ThornHealthIndicator } from './health/thorn.health.js';

/**
 * ThornModule's operations providers (SPEC §13): the `/hooks` OpenAPI metadata when `@nestjs/swagger` is installed
 * (applied while the app is created, before any `SwaggerModule.createDocument`), the queue-depth gauge, and the
 * terminus health indicator (exported). None of them loads an optional package unless the app has it.
 */
export const operationsProviders: Provider[] = [
  ThornQueueMetrics,
  ThornHealthIndicator,
];
