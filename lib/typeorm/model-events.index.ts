import type { DataSource, EntityMetadata, FindOptionsRelations, ObjectLiteral } from 'typeorm';
import type { ModelEventDefinition, WebhookModelDefinition } from '../events/model-event.js';
import { hasTransitions } from '../filters/q.js';
import type { ModelEventsMetadataAccessor } from './model-events.metadata-accessor.js';
import type { RelationMetadata } from './typeorm-types.js';

/** An entity with model events, as registered in the DataSource. */
export interface IndexedModel {
  metadata: EntityMetadata;
  model?: WebhookModelDefinition;
  events: readonly ModelEventDefinition[];
  create: ModelEventDefinition[];
  change: ModelEventDefinition[];
  delete: ModelEventDefinition[];
  /** A `change` event has a `now_*` filter: the previous row is read, locked, in the update's transaction. */
  lockPrevious: boolean;
  /** Relations loaded with the instance when Thorn loads it (many-to-many events). */
  loadRelations: FindOptionsRelations<ObjectLiteral>;
}

type ColumnMetadata = EntityMetadata['columns'][number];

/** One side of a many-to-many junction table whose entity declares `m2m_*` events for that relation. */
export interface JunctionSide {
  junction: EntityMetadata;
  owner: IndexedModel;
  relation: RelationMetadata;
  /** Junction columns pointing at the owner row / at the related row. */
  ownerColumns: ColumnMetadata[];
  relatedColumns: ColumnMetadata[];
  add: ModelEventDefinition[];
  remove: ModelEventDefinition[];
  clear: ModelEventDefinition[];
}

/** Where model events come from: entity classes, and junction tables mapped back to their owner + relation. */
export interface ModelEventIndex {
  models: Map<object | string, IndexedModel>;
  junctions: Map<EntityMetadata, JunctionSide[]>;
}

/** Builds the index of the DataSource's entities; throws when an `m2m_*` event names no many-to-many relation. */
export function buildModelEventIndex(
  dataSource: DataSource,
  accessor: ModelEventsMetadataAccessor,
): ModelEventIndex {
  const index: ModelEventIndex = { models: new Map(), junctions: new Map() };
  for (const metadata of dataSource.entityMetadatas) {
    const target = metadata.target;
    if (metadata.isJunction || !accessor.hasModelEvents(target)) continue;
    const events = accessor.getModelEvents(target);
    const model = accessor.getWebhookModel(target);
    const byOn = (on: string) => events.filter((e) => e.on === on);
    const change = byOn('change');
    const indexed: IndexedModel = {
      metadata,
      model,
      events,
      create: byOn('create'),
      change,
      delete: byOn('delete'),
      lockPrevious: change.some((e) => e.filter !== undefined && hasTransitions(e.filter)),
      loadRelations: relationTree(metadata, instancePaths(model, events)),
    };
    index.models.set(target, indexed);

    const m2m = events.filter((e) => e.relation);
    for (const relationName of new Set(m2m.map((e) => e.relation!))) {
      const relation = metadata.findRelationWithPropertyPath(relationName);
      const junction = relation?.isOwning
        ? relation.junctionEntityMetadata
        : relation?.inverseRelation?.junctionEntityMetadata;
      if (!relation?.isManyToMany || !junction) {
        throw new Error(
          `@ModelEvent on ${metadata.name}: "${relationName}" is not a many-to-many relation of ${metadata.name}; ` +
            `m2m_* events need a @ManyToMany property`,
        );
      }
      const forRelation = (on: string) => m2m.filter((e) => e.relation === relationName && e.on === on);
      const side: JunctionSide = {
        junction,
        owner: indexed,
        relation,
        ownerColumns: relation.isOwning ? junction.ownerColumns : junction.inverseColumns,
        relatedColumns: relation.isOwning ? junction.inverseColumns : junction.ownerColumns,
        add: forRelation('m2m_add'),
        remove: forRelation('m2m_remove'),
        clear: forRelation('m2m_clear'),
      };
      index.junctions.set(junction, [...(index.junctions.get(junction) ?? []), side]);
    }
  }
  return index;
}

/** Every dotted instance path the model's messages read: sender fields, reverser params, name templates, `relations`. */
function instancePaths(
  model: WebhookModelDefinition | undefined,
  events: readonly ModelEventDefinition[],
): string[] {
  const paths = [...(model?.relations ?? []), ...(model?.senderField ? [model.senderField] : [])];
  paths.push(...(model?.reverse?.paths ?? []));
  for (const e of events) {
    if (e.senderField) paths.push(e.senderField);
    paths.push(...(e.reverse?.paths ?? []), ...e.template.paths);
  }
  return paths;
}

/** The relation part of dotted paths as a `relations` find option: `author.account.user` → `{ author: { account: { user: true } } }`. */
export function relationTree(
  metadata: EntityMetadata,
  paths: Iterable<string>,
): FindOptionsRelations<ObjectLiteral> {
  const tree: Record<string, any> = {};
  for (const path of paths) {
    let meta: EntityMetadata | undefined = metadata;
    let node = tree;
    for (const part of path.split('.')) {
      const relation: RelationMetadata | undefined = meta?.findRelationWithPropertyPath(part);
      if (!relation) break;
      if (typeof node[part] !== 'object') node[part] = {};
      node = node[part];
      meta = relation.inverseEntityMetadata;
    }
  }
  const finish = (n: Record<string, any>): any =>
    Object.keys(n).length ? Object.fromEntries(Object.entries(n).map(([k, v]) => [k, finish(v)])) : true;
  return Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, finish(v)]));
}
