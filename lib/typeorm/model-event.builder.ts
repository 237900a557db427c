import { Logger } from '@nestjs/common';
import type { EntityManager, EntityMetadata } from 'typeorm';
import type { EventOptions, SendOptions } from '../events/event.js';
import {
  headersOf,
  modelMessage,
  payloadOf,
  refOf,
  senderValue,
  type ModelEventDefinition,
  type ModelEventInfo,
  type ModelEventMessage,
  type WebhookModelDefinition,
} from '../events/model-event.js';
import { messages } from '../messages.js';
import type { ResolvedThornOptions } from '../thorn-options.js';
import { senderAt } from './model-sender.js';
import { pathsOf, withLoadedPaths } from './model-relations.loader.js';
import { logError, logLine } from '../telemetry/log-fields.js';

/** A model event with its message built, waiting to be handed to the dispatcher. */
export interface PreparedModelEvent {
  name: string;
  body: ModelEventMessage;
  eventOptions: EventOptions;
  sendOptions: SendOptions & { ownerlessOnly?: boolean };
  /** Wait for the outermost commit when raised inside a transaction. */
  honors: boolean;
  /** Dispatch errors reach the caller. */
  propagate: boolean;
}

/** What a message is built from besides the instance. */
export interface PrepareContext {
  metadata?: EntityMetadata;
  model?: WebhookModelDefinition;
  /** Used to load an unloaded sender relation (same transaction as the change). */
  manager?: EntityManager;
  /** Many-to-many events. */
  relation?: string;
  ids?: unknown[];
  /** Manual sends: explicit data / sender (`sender` present, even null, wins over `senderField`). */
  data?: unknown;
  sender?: unknown;
  hasData?: boolean;
  hasSender?: boolean;
  /** Manual sends: extra send() options. */
  sendOptions?: SendOptions;
}

/** The options a model-event message depends on. */
export type ModelEventBuildOptions = Pick<
  ResolvedThornOptions,
  'baseUrl' | 'signalHonorsTransaction' | 'propagateErrors'
>;

/** Builds model-event messages (name, ref, sender, data, headers, callback context); sends nothing. */
export class ModelEventBuilder {
  private readonly logger = new Logger('Thorn');
  /** Models already warned about an event without a sender. */
  private readonly warnedNoSender = new Set<unknown>();

  constructor(private readonly options: ModelEventBuildOptions) {}

  /** Whether dispatch errors of `def` reach the caller. */
  propagates(def: ModelEventDefinition): boolean {
    return def.propagateErrors ?? this.options.propagateErrors;
  }

  /** Builds the message of `def` for `instance`, loading the relations it reads that `instance` lacks. */
  async build(
    def: ModelEventDefinition,
    original: any,
    ctx: PrepareContext = {},
  ): Promise<PreparedModelEvent> {
    const senderField = def.senderField ?? ctx.model?.senderField;
    const paths = pathsOf(def, ctx.model, !ctx.hasSender);
    const instance = await withLoadedPaths(original, paths, ctx.metadata, ctx.manager);
    const name = def.template.render(instance);
    const info: ModelEventInfo = { event: name, on: def.on };
    if (ctx.relation !== undefined) Object.assign(info, { relation: ctx.relation, ids: ctx.ids ?? [] });
    const sender = ctx.hasSender
      ? senderValue(ctx.sender)
      : senderField
        ? senderAt(instance, senderField, ctx.metadata)
        : null;
    // a model with a senderField never falls back to "every user's subscriptions" (another tenant's data)
    const ownerlessOnly = !ctx.hasSender && !!senderField && (sender === null || sender === undefined);
    if (ownerlessOnly) this.warnNoSender(def, ctx, original, senderField!);
    const ref = refOf(instance, def, ctx.model, this.options.baseUrl);
    const data = ctx.hasData ? ctx.data : payloadOf(instance, info);
    const body = modelMessage(name, ref, sender, data ?? {}, def.eventOptions.requestData);
    const extra = ctx.sendOptions ?? {};
    const context: Record<string, unknown> = {
      ...(extra.context ?? {}),
      instance: primaryKey(original, ctx.metadata),
    };
    if (ctx.relation !== undefined) Object.assign(context, { relation: ctx.relation, ids: ctx.ids ?? [] });
    return {
      name,
      body,
      eventOptions: def.eventOptions,
      sendOptions: {
        ...extra,
        sender: body.sender,
        ...(ownerlessOnly ? { ownerlessOnly } : {}),
        headers: { ...headersOf(instance, info), ...(extra.headers ?? {}) },
        context,
      },
      honors: def.signalHonorsTransaction ?? this.options.signalHonorsTransaction,
      propagate: this.propagates(def),
    };
  }

  /** Builds every definition's event for one instance: failures are logged and skipped, or thrown with propagateErrors. */
  async buildAll(
    defs: readonly ModelEventDefinition[],
    instance: any,
    ctx: PrepareContext,
  ): Promise<PreparedModelEvent[]> {
    const out: PreparedModelEvent[] = [];
    for (const def of defs) {
      try {
        out.push(await this.build(def, instance, ctx));
      } catch (err) {
        if (this.propagates(def)) throw err;
        this.logger.error(logLine(`A model event was not sent: ${logError(err)}`, { event: def.name }));
      }
    }
    return out;
  }

  private warnNoSender(def: ModelEventDefinition, ctx: PrepareContext, instance: any, senderField: string) {
    const model = ctx.metadata?.target ?? ctx.model ?? def;
    if (this.warnedNoSender.has(model)) return;
    this.warnedNoSender.add(model);
    const name = ctx.metadata?.name ?? instance?.constructor?.name ?? def.name;
    this.logger.warn(messages.noSender(name, def.name, senderField));
  }
}

/** The primary key of an instance (an object for composite keys); `id` without metadata. */
export function primaryKey(instance: any, metadata?: EntityMetadata): unknown {
  const pk = metadata ? metadata.getEntityIdMixedMap(instance) : instance?.id;
  return pk === undefined ? null : pk;
}
