import type { Provider } from '@nestjs/common';
import { ModelEventEmitter } from './model-event.emitter.js';
import { ModelEventsExplorer } from './model-events.explorer.js';
import { ModelEventsMetadataAccessor } from './model-events.metadata-accessor.js';

/** Providers that hook model events (`@WebhookModel` / `@ModelEvent`) into the app's TypeORM DataSource. */
export const modelEventProviders: Provider[] = [
  ModelEventsMetadataAccessor,
  ModelEventEmitter,
  ModelEventsExplorer,
];
