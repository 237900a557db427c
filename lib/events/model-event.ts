import { toQ, type Q, type QLike } from '../filters/index.js';
import type { EventOptions } from './event.js';
import { compileNameTemplate, getPath, type NameTemplate } from './name-template.js';
import { setOwn, toJsonSafe } from './payload.js';
import { absoluteRef, type Reverser } from './reverse.js';

/** What makes a model event fire by itself; without `on` it is sent manually only. */
export type ModelEventTrigger = 'create' | 'change' | 'delete' | 'm2m_add' | 'm2m_remove' | 'm2m_clear';

/** Every `on` value. */
export const MODEL_EVENT_TRIGGERS: readonly ModelEventTrigger[] = Object.freeze([
  'create',
  'change',
  'delete',
  'm2m_add',
  'm2m_remove',
  'm2m_clear',
]);

/** Options of `@WebhookModel()`. */
export interface WebhookModelOptions {
  /** Dotted path of the instance's sender (`'author.account.user'`): an object's `id`, or a primitive itself. */
  senderField?: string;
  /** The `ref` of every event of the model (unless the event has its own); default `getAbsoluteUrl()`. */
  reverse?: Reverser;
  /** Extra relation paths to load when Thorn loads the instance itself (many-to-many events). */
  relations?: string[];
}

/** Options of `@ModelEvent(name, options)`: when it fires, how its message is built, plus every `Event` option. */
export interface ModelEventOptions extends EventOptions {
  /** `create`, `change`, `delete`, `m2m_add`, `m2m_remove`, `m2m_clear`; absent: manual sending only. */
  on?: ModelEventTrigger;
  /** The many-to-many relation property of the `m2m_*` triggers. */
  relation?: string;
  /** Only fire when the instance matches (`now_*` operators compare with the row before a change). */
  filter?: QLike;
  /** Overrides the model's `reverse`. */
  reverse?: Reverser;
  /** Overrides the model's `senderField`. */
  senderField?: string;
  /** Hold the event until the outermost commit (default: the module's `signalHonorsTransaction`, true). */
  signalHonorsTransaction?: boolean;
  /** Throw dispatch errors into the caller of `save()` (default: the module's `propagateErrors`, false). */
  propagateErrors?: boolean;
  /** `on: 'delete'` also fires on soft remove (`softRemove()`); default true. */
  softRemove?: boolean;
}

/** A `@ModelEvent` as stored on the entity class (immutable, validated when the decorator runs). */
export interface ModelEventDefinition {
  readonly name: string;
  readonly template: NameTemplate;
  readonly on?: ModelEventTrigger;
  readonly relation?: string;
  readonly filter?: Q;
  readonly reverse?: Reverser;
  readonly senderField?: string;
  readonly signalHonorsTransaction?: boolean;
  readonly propagateErrors?: boolean;
  readonly softRemove: boolean;
  /** The `Event` options (timeout, retry, subscribers, requestData, dispatcher, ...). */
  readonly eventOptions: EventOptions;
}

/** A `@WebhookModel` as stored on the entity class. */
export interface WebhookModelDefinition {
  readonly senderField?: string;
  readonly reverse?: Reverser;
  readonly relations: readonly string[];
}

/** What `webhookPayload(info)` / `webhookHeaders(info)` receive (they may ignore it). */
export interface ModelEventInfo {
  /** The event name, templates expanded. */
  event: string;
  on?: ModelEventTrigger;
  /** Many-to-many events: the relation and the related ids added or removed. */
  relation?: string;
  ids?: unknown[];
}

/** The JSON body of a model event: `{ event, ref, sender, data }` plus the event's `requestData` keys. */
export interface ModelEventMessage {
  event: string;
  ref: string | null;
  sender: unknown;
  data: unknown;
  [key: string]: unknown;
}

const MODEL_KEYS = new Set([
  'on',
  'relation',
  'filter',
  'reverse',
  'senderField',
  'signalHonorsTransaction',
  'propagateErrors',
  'softRemove',
]);
const MESSAGE_KEYS = new Set(['event', 'ref', 'sender', 'data']);

/** Validates `@ModelEvent` arguments and compiles them (filter → `Q`, name → template). */
export function defineModelEvent(name: string, options: ModelEventOptions = {}): ModelEventDefinition {
  const where = `@ModelEvent("${name}")`;
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`${where}: options must be an object`);
  const { on, relation, reverse, senderField, softRemove } = options;
  if (on !== undefined && !MODEL_EVENT_TRIGGERS.includes(on)) {
    throw new Error(
      `${where}: unknown "on" value ${JSON.stringify(on)}; use one of ${MODEL_EVENT_TRIGGERS.join(', ')}`,
    );
  }
  const m2m = on?.startsWith('m2m_') ?? false;
  if (m2m && (typeof relation !== 'string' || !relation)) {
    throw new Error(
      `${where}: on: '${on}' needs the many-to-many relation, e.g. { on: '${on}', relation: 'tags' }`,
    );
  }
  if (!m2m && relation !== undefined) {
    throw new Error(`${where}: "relation" only applies to on: 'm2m_add' | 'm2m_remove' | 'm2m_clear'`);
  }
  if (reverse !== undefined && typeof reverse !== 'function') {
    throw new Error(
      `${where}: "reverse" must be a function, e.g. modelReverser('/articles/:id', { id: 'id' })`,
    );
  }
  if (senderField !== undefined && (typeof senderField !== 'string' || !senderField)) {
    throw new Error(`${where}: "senderField" must be a dotted path such as 'author.account.user'`);
  }
  for (const key of ['signalHonorsTransaction', 'propagateErrors', 'softRemove'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean') {
      throw new Error(`${where}: "${key}" must be true or false`);
    }
  }
  const eventOptions = Object.fromEntries(
    Object.entries(options).filter(([k]) => !MODEL_KEYS.has(k)),
  ) as EventOptions;
  return Object.freeze({
    name,
    template: compileNameTemplate(name),
    on,
    relation,
    filter: options.filter === undefined ? undefined : toQ(options.filter),
    reverse,
    senderField,
    signalHonorsTransaction: options.signalHonorsTransaction,
    propagateErrors: options.propagateErrors,
    softRemove: softRemove ?? true,
    eventOptions: Object.freeze(eventOptions),
  });
}

/** Validates `@WebhookModel` arguments. */
export function defineWebhookModel(options: WebhookModelOptions = {}): WebhookModelDefinition {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('@WebhookModel: options must be an object');
  const { senderField, reverse, relations = [] } = options;
  if (senderField !== undefined && (typeof senderField !== 'string' || !senderField)) {
    throw new Error(`@WebhookModel: "senderField" must be a dotted path such as 'author.account.user'`);
  }
  if (reverse !== undefined && typeof reverse !== 'function') {
    throw new Error(
      `@WebhookModel: "reverse" must be a function, e.g. modelReverser('/articles/:id', { id: 'id' })`,
    );
  }
  if (!Array.isArray(relations) || relations.some((r) => typeof r !== 'string' || !r)) {
    throw new Error(`@WebhookModel: "relations" must be an array of relation paths such as 'author.account'`);
  }
  return Object.freeze({ senderField, reverse, relations: Object.freeze([...relations]) });
}

/** The sender of an instance: the value at `senderField`; an object gives its `id`, a primitive itself. */
export function senderOf(instance: unknown, senderField: string | undefined): unknown {
  return senderField ? senderValue(getPath(instance, senderField)) : null;
}

/** The sender id of a value: an object's `id`, a primitive itself, null when absent. */
export function senderValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'object' && !(value instanceof Date)) {
    const id = (value as { id?: unknown }).id;
    return id === undefined ? null : id;
  }
  return value;
}

/** The `ref` of an instance: event `reverse`, else model `reverse`, else `getAbsoluteUrl()`, else null. */
export function refOf(
  instance: any,
  def: ModelEventDefinition,
  model: WebhookModelDefinition | undefined,
  baseUrl?: string,
): string | null {
  const reverse = def.reverse ?? model?.reverse;
  let ref: unknown = null;
  if (reverse) ref = reverse(instance);
  else if (typeof instance?.getAbsoluteUrl === 'function') ref = instance.getAbsoluteUrl();
  if (ref !== null && ref !== undefined && typeof ref !== 'string' && !(ref instanceof URL)) {
    throw new Error(`The ref of "${def.name}" must be a string or URL, got ${typeof ref}`);
  }
  return absoluteRef(ref === null || ref === undefined ? null : String(ref), baseUrl);
}

/** `instance.webhookPayload(info)` (default `{}`). */
export function payloadOf(instance: any, info: ModelEventInfo): unknown {
  return typeof instance?.webhookPayload === 'function' ? (instance.webhookPayload(info) ?? {}) : {};
}

/** `instance.webhookHeaders(info)` as string headers (default none). */
export function headersOf(instance: any, info: ModelEventInfo): Record<string, string> {
  if (typeof instance?.webhookHeaders !== 'function') return {};
  const headers = instance.webhookHeaders(info) ?? {};
  if (typeof headers !== 'object') throw new Error(`webhookHeaders() must return an object of header values`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && v !== null) out[k] = String(v);
  return out;
}

/** The JSON-safe body: `{ event, ref, sender, data }` plus `requestData` keys (which never replace those four). */
export function modelMessage(
  name: string,
  ref: string | null,
  sender: unknown,
  data: unknown,
  requestData?: Record<string, unknown>,
): ModelEventMessage {
  const message: ModelEventMessage = {
    event: name,
    ref,
    sender: toJsonSafe(sender ?? null, 'sender') ?? null,
    data: toJsonSafe(data, 'data') ?? null,
  };
  if (requestData) {
    const extra = toJsonSafe(requestData, 'requestData') as Record<string, unknown>;
    for (const [k, v] of Object.entries(extra)) if (!MESSAGE_KEYS.has(k)) setOwn(message, k, v);
  }
  return message;
}
