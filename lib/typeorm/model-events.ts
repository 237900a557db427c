import type { EntityManager, EntityMetadata } from 'typeorm';
import { readModelEvents, readWebhookModel } from '../events/decorators.js';
import type { SendResult } from '../events/envelope.js';
import type { SendOptions } from '../events/event.js';
import type { ModelEventDefinition, WebhookModelDefinition } from '../events/model-event.js';
import { activeEventService } from '../events/runtime.js';
import type { PrepareContext } from './model-event.builder.js';
import { activeModelEventEmitter, ModelEventEmitter } from './model-event.emitter.js';

/** Options of a manual model-event send. */
export interface ModelEventSendOptions extends SendOptions {
  /** Pass the transaction's EntityManager to hold the event until the outermost commit, like hook-raised events. */
  manager?: EntityManager;
}

/** Options of `send(instance, options)`: the message `data` and `sender` are given, not taken from the instance. */
export interface ModelEventManualSendOptions extends ModelEventSendOptions {
  /** `message.data` (default `{}`). */
  data?: unknown;
  /** The sender (an object's `id` or a primitive); default: the instance's `senderField`. Pass null for none. */
  sender?: unknown;
}

/** Options of `sendFromInstance(instance, options)`. */
export interface ModelEventFromInstanceOptions extends ModelEventSendOptions {
  /** Many-to-many events: the related ids (context `ids`, and `webhookPayload({ ids })`). */
  ids?: unknown[];
}

/** A declared model event, for sending by hand (operations TypeORM reports no entity for, or events without `on`). */
export class ModelEventHandle<T extends object = any> {
  constructor(
    readonly target: new (...args: any[]) => T,
    readonly definition: ModelEventDefinition,
    private readonly model: WebhookModelDefinition | undefined,
  ) {}

  /** The name as declared (a template such as `'user.{username}'` is expanded per instance). */
  get name(): string {
    return this.definition.name;
  }

  /** Whether the event's filter lets `instance` through (`previous`: the version before the change). */
  matches(instance: T, previous?: Partial<T>): boolean {
    return !this.definition.filter || this.definition.filter.matches(instance, previous);
  }

  /** Sends the message for `instance` with the given `data` (default `{}`) and `sender` (default: `senderField`). */
  send(instance: T, options: ModelEventManualSendOptions = {}): Promise<SendResult> {
    const { data, sender, manager, ...sendOptions } = options;
    return this.dispatch(instance, manager, {
      data: data ?? {},
      hasData: true,
      sender,
      hasSender: 'sender' in options,
      sendOptions,
    });
  }

  /** Sends the message exactly as the hook would build it (`webhookPayload()`, `senderField`, headers); no filter. */
  sendFromInstance(instance: T, options: ModelEventFromInstanceOptions = {}): Promise<SendResult> {
    const { manager, ids, ...sendOptions } = options;
    const m2m = this.definition.relation !== undefined;
    return this.dispatch(instance, manager, {
      sendOptions,
      ...(m2m ? { relation: this.definition.relation, ids: ids ?? [] } : {}),
    });
  }

  private async dispatch(
    given: T,
    manager: EntityManager | undefined,
    ctx: PrepareContext,
  ): Promise<SendResult> {
    // a plain object (what repository.save({...}) returns) gets the class's methods: webhookPayload(), getAbsoluteUrl()
    const instance: T =
      given instanceof this.target ? given : Object.assign(Object.create(this.target.prototype), given);
    const emitter =
      activeModelEventEmitter() ?? new ModelEventEmitter(activeEventService(this.definition.name), null);
    const dataSource = manager?.connection ?? emitter.dataSource;
    const metadata: EntityMetadata | undefined = dataSource?.hasMetadata(this.target)
      ? dataSource.getMetadata(this.target)
      : undefined;
    return emitter.send(manager, () =>
      emitter.builder.build(this.definition, instance, {
        ...ctx,
        metadata,
        model: this.model,
        manager: manager ?? emitter.dataSource?.manager,
      }),
    );
  }
}

/** The `@ModelEvent`s of an entity class by declared name, each with `send()` and `sendFromInstance()`. */
export function getModelEvents<T extends object>(
  target: new (...args: any[]) => T,
): Record<string, ModelEventHandle<T>> {
  const model = readWebhookModel(target);
  const out: Record<string, ModelEventHandle<T>> = {};
  for (const def of readModelEvents(target)) out[def.name] ??= new ModelEventHandle(target, def, model);
  return out;
}
