import { Injectable } from '@nestjs/common';
import { readModelEvents, readWebhookModel } from '../events/decorators.js';
import type { ModelEventDefinition, WebhookModelDefinition } from '../events/model-event.js';

/** Reads `@WebhookModel` / `@ModelEvent` metadata from entity classes. */
@Injectable()
export class ModelEventsMetadataAccessor {
  /** The class's `@WebhookModel` options, if decorated. */
  getWebhookModel(target: object): WebhookModelDefinition | undefined {
    return readWebhookModel(target);
  }

  /** The class's `@ModelEvent`s in declaration order (parents' first). */
  getModelEvents(target: object): readonly ModelEventDefinition[] {
    return readModelEvents(target);
  }

  /** Whether the class declares any model event. */
  hasModelEvents(target: unknown): target is object {
    return typeof target === 'function' && readModelEvents(target).length > 0;
  }
}
