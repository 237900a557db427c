import 'reflect-metadata';
import { MODEL_EVENTS_METADATA, WEBHOOK_MODEL_METADATA } from '../thorn.constants.js';
import {
  defineModelEvent,
  defineWebhookModel,
  type ModelEventDefinition,
  type ModelEventOptions,
  type WebhookModelDefinition,
  type WebhookModelOptions,
} from './model-event.js';

/** Marks an entity as a webhook model: sender, `ref` and relations shared by its `@ModelEvent`s. */
export function WebhookModel(options: WebhookModelOptions = {}): ClassDecorator {
  const definition = defineWebhookModel(options);
  return (target) => {
    Reflect.defineMetadata(WEBHOOK_MODEL_METADATA, definition, target);
  };
}

/**
 * Declares a webhook event of an entity (repeatable; declaration order is kept). With `on`, it fires from the TypeORM
 * hooks; without, it is sent manually through `getModelEvents(Entity)`.
 */
export function ModelEvent(name: string, options: ModelEventOptions = {}): ClassDecorator {
  const definition = defineModelEvent(name, options);
  return (target) => {
    // class decorators run bottom-up: prepend so the list reads in source order. Own metadata only: a subclass adds
    // to, never mutates, its parent's list (see readModelEvents).
    const own: ModelEventDefinition[] = Reflect.getOwnMetadata(MODEL_EVENTS_METADATA, target) ?? [];
    Reflect.defineMetadata(MODEL_EVENTS_METADATA, Object.freeze([definition, ...own]), target);
  };
}

/** The `@WebhookModel` of a class (inherited from a parent class when it has none). */
export function readWebhookModel(target: object): WebhookModelDefinition | undefined {
  return Reflect.getMetadata(WEBHOOK_MODEL_METADATA, target);
}

/** The `@ModelEvent`s of a class: its parents' first, then its own, each in declaration order. */
export function readModelEvents(target: object): readonly ModelEventDefinition[] {
  const chain: object[] = [];
  for (let t: any = target; t && t !== Function.prototype; t = Object.getPrototypeOf(t)) chain.unshift(t);
  return chain.flatMap(
    (t) => (Reflect.getOwnMetadata(MODEL_EVENTS_METADATA, t) ?? []) as ModelEventDefinition[],
  );
}
