import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import type { DataSource, EntityManager, EntityMetadata, ObjectLiteral, QueryRunner } from 'typeorm';
import type { EventOptions, SendOptions } from '../events/event.js';
import { EventService } from '../events/event.service.js';
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
import { sharedState } from '../shared-state.js';
import { THORN_DATA_SOURCE } from '../thorn.constants.js';
import { senderAt } from './model-sender.js';
import { relationTree } from './model-events.index.js';
import { TransactionFrames } from './transaction-frames.js';
import type { RelationMetadata } from './typeorm-types.js';

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

// The emitter of the running app, for `getModelEvents()` called outside DI. One pointer (like `Event`'s), not a registry,
// in the state the ESM and CommonJS builds share.

/** The emitter of the running ThornModule, if any. */
export function activeModelEventEmitter(): ModelEventEmitter | undefined {
  return sharedState.modelEventEmitter;
}

function activate(emitter: ModelEventEmitter): void {
  sharedState.modelEventEmitter = emitter;
}

function deactivate(emitter: ModelEventEmitter): void {
  if (sharedState.modelEventEmitter === emitter) sharedState.modelEventEmitter = undefined;
}

/**
 * Builds model-event messages and decides when they go out: held per transaction until the outermost commit
 * (`signalHonorsTransaction`), or dispatched at once. HTTP is never awaited inside a TypeORM hook, except for events
 * with `propagateErrors`, whose dispatch errors must reach the caller.
 */
@Injectable()
export class ModelEventEmitter implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('Thorn');
  readonly frames = new TransactionFrames<PreparedModelEvent>();
  /** Dispatches running in the background (not awaited by any hook). */
  private readonly inflight = new Set<Promise<void>>();
  /** Models already warned about an event without a sender. */
  private readonly warnedNoSender = new Set<unknown>();

  constructor(
    readonly events: EventService,
    @Optional() @Inject(THORN_DATA_SOURCE) readonly dataSource: DataSource | null = null,
  ) {}

  onModuleInit(): void {
    activate(this);
  }

  /** Lets background dispatches started before shutdown hand their events over (bounded by the request timeout). */
  async beforeApplicationShutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((r) => (timer = setTimeout(r, this.events.options.timeout + 1000)));
    await Promise.race([this.idle(), limit]);
    clearTimeout(timer);
  }

  onApplicationShutdown(): void {
    deactivate(this);
  }

  /** Resolves once no model-event dispatch runs in the background (first attempts done, or handed to a queue). */
  async idle(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  /** Builds the message of `def` for `instance`: name, ref, sender, data, headers and callback context. */
  async prepare(
    def: ModelEventDefinition,
    original: any,
    ctx: PrepareContext = {},
  ): Promise<PreparedModelEvent> {
    const senderField = def.senderField ?? ctx.model?.senderField;
    const paths = pathsOf(def, ctx.model, !ctx.hasSender);
    const instance = await this.withPaths(original, paths, ctx.metadata, ctx.manager);
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
    const ref = refOf(instance, def, ctx.model, this.events.options.baseUrl);
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
      honors: def.signalHonorsTransaction ?? this.events.options.signalHonorsTransaction,
      propagate: this.propagates(def),
    };
  }

  /**
   * Raises events from a TypeORM hook. A slot is reserved in the transaction frame right away (so events keep the order
   * in which the hooks ran) and filled once `build` resolves. Returns what the hook must await: the build (it may query
   * through the hook's QueryRunner), plus the dispatch of events that propagate errors and are sent now.
   */
  raise(qr: QueryRunner | undefined, build: () => Promise<PreparedModelEvent[]>): Promise<void> {
    const slot = this.frames.isHolding(qr) ? this.frames.reserve(qr) : undefined;
    return build().then(
      async (events) => {
        const now = slot ? events.filter((e) => !e.honors) : events;
        if (slot) slot.items = events.filter((e) => e.honors);
        if (!now.length) return;
        const sending = this.dispatchInOrder(now);
        if (now.some((e) => e.propagate)) await sending;
        else this.background(sending);
      },
      (err) => {
        if (slot) slot.items = [];
        throw err;
      },
    );
  }

  private warnNoSender(def: ModelEventDefinition, ctx: PrepareContext, instance: any, senderField: string) {
    const model = ctx.metadata?.target ?? ctx.model ?? def;
    if (this.warnedNoSender.has(model)) return;
    this.warnedNoSender.add(model);
    const name = ctx.metadata?.name ?? instance?.constructor?.name ?? def.name;
    this.logger.warn(messages.noSender(name, def.name, senderField));
  }

  /** Whether dispatch errors of `def` reach the caller. */
  propagates(def: ModelEventDefinition): boolean {
    return def.propagateErrors ?? this.events.options.propagateErrors;
  }

  /** Builds every definition's event for one instance: failures are logged and skipped, or thrown with propagateErrors. */
  async prepareAll(
    defs: readonly ModelEventDefinition[],
    instance: any,
    ctx: PrepareContext,
  ): Promise<PreparedModelEvent[]> {
    const out: PreparedModelEvent[] = [];
    for (const def of defs) {
      try {
        out.push(await this.prepare(def, instance, ctx));
      } catch (err) {
        if (this.propagates(def)) throw err;
        this.logger.error(`Model event "${def.name}" was not sent: ${(err as Error).message}`);
      }
    }
    return out;
  }

  /** After the outermost commit: sends the held events in order; awaited only when one of them propagates errors. */
  committed(qr: QueryRunner): Promise<void> | undefined {
    const events = this.frames.committed(qr);
    if (!events?.length) return undefined;
    const sending = this.dispatchInOrder(events);
    if (events.some((e) => e.propagate)) return sending;
    this.background(sending);
    return undefined;
  }

  private background(sending: Promise<void>): void {
    // never rejects: only events that propagate errors make dispatchInOrder throw, and those are awaited instead
    const tracked = sending.catch(() => undefined).finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
  }

  /** Hands events to the dispatcher one after another; rejects with the first error of an event that propagates. */
  async dispatchInOrder(events: PreparedModelEvent[]): Promise<void> {
    let failure: unknown;
    for (const e of events) {
      try {
        await this.events.sendBody(e.name, e.body, e.eventOptions, e.sendOptions);
      } catch (err) {
        if (e.propagate) failure ??= err;
        else this.logger.error(`Model event "${e.name}" could not be dispatched: ${(err as Error).message}`);
      }
    }
    if (failure !== undefined) throw failure;
  }

  /**
   * `instance`, or a read-only view of it in which every relation on `paths` (sender, ref, name, `relations`) that
   * was not loaded is: `undefined` on the instance, or only an id as in TypeORM's `databaseEntity`. Missing parts are
   * loaded through `manager` (the hook's, so the same transaction) with one query per gap; the entity is never mutated.
   */
  async withPaths(
    instance: any,
    paths: readonly string[],
    metadata: EntityMetadata | undefined,
    manager: EntityManager | undefined,
  ): Promise<any> {
    if (!metadata || !manager || !instance || typeof instance !== 'object') return instance;
    let view: any;
    for (const path of new Set(paths)) {
      const resolved = await this.resolvePath(view ?? instance, path.split('.'), metadata, manager);
      if (!resolved.loaded) continue;
      view ??= Object.create(instance);
      graft(view, path.split('.'), resolved.value);
    }
    return view ?? instance;
  }

  /** Reads a dotted path, loading the rest of it where a relation or column on the way is not loaded. */
  private async resolvePath(
    instance: any,
    parts: string[],
    metadata: EntityMetadata,
    manager: EntityManager,
  ): Promise<{ value: unknown; loaded: boolean }> {
    let value: any = instance;
    let meta: EntityMetadata | undefined = metadata;
    let loaded = false;
    for (let i = 0; i < parts.length; i++) {
      if (value === null || value === undefined || typeof value !== 'object')
        return { value: undefined, loaded };
      const relation: RelationMetadata | undefined = meta?.findRelationWithPropertyPath(parts[i]);
      let next = value[parts[i]];
      // a relation not loaded, or a row known by its id only (as relations are in TypeORM's databaseEntity)
      const known = relation ?? meta?.findColumnWithPropertyPath(parts[i]);
      if (next === undefined && known && meta) {
        const row = await this.loadPath(manager, meta, value, parts.slice(i));
        if (row) {
          next = row[parts[i]];
          loaded = true;
        }
      }
      if (!relation) return { value: next, loaded };
      value = next;
      meta = relation.inverseEntityMetadata;
    }
    return { value, loaded };
  }

  private async loadPath(
    manager: EntityManager,
    meta: EntityMetadata,
    row: ObjectLiteral,
    rest: string[],
  ): Promise<ObjectLiteral | null> {
    const where = meta.getEntityIdMap(row);
    if (!where) return null;
    return manager.findOne(meta.target, {
      where,
      relations: relationTree(meta, [rest.join('.')]),
      withDeleted: true,
    });
  }
}

/** The dotted instance paths a message of `def` reads: sender, reverser params, name template, model `relations`. */
export function pathsOf(
  def: ModelEventDefinition,
  model: WebhookModelDefinition | undefined,
  withSender = true,
): string[] {
  const senderField = def.senderField ?? model?.senderField;
  return [
    ...(withSender && senderField ? [senderField] : []),
    ...((def.reverse ?? model?.reverse)?.paths ?? []),
    ...def.template.paths,
    ...(model?.relations ?? []),
  ];
}

/** Sets `path` on `view` to `value` through views of the objects on the way (never writing to the originals). */
function graft(view: any, parts: string[], value: unknown): void {
  let node = view;
  for (let i = 0; i < parts.length - 1; i++) {
    const key = parts[i];
    if (!Object.hasOwn(node, key)) {
      const current = node[key];
      node[key] = Object.create(current && typeof current === 'object' ? current : Object.prototype);
    }
    node = node[key];
  }
  node[parts[parts.length - 1]] = value;
}

/** The primary key of an instance (an object for composite keys); `id` without metadata. */
export function primaryKey(instance: any, metadata?: EntityMetadata): unknown {
  const pk = metadata ? metadata.getEntityIdMixedMap(instance) : instance?.id;
  return pk === undefined ? null : pk;
}
