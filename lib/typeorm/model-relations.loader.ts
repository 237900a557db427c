import type { EntityManager, EntityMetadata, ObjectLiteral } from 'typeorm';
import type { ModelEventDefinition, WebhookModelDefinition } from '../events/model-event.js';
import { relationTree } from './model-events.index.js';
import type { RelationMetadata } from './typeorm-types.js';

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

/**
 * `instance`, or a read-only view of it in which every relation on `paths` (sender, ref, name, `relations`) that
 * was not loaded is: `undefined` on the instance, or only an id as in TypeORM's `databaseEntity`. Missing parts are
 * loaded through `manager` (the hook's, so the same transaction) with one query per gap; the entity is never mutated.
 */
export async function withLoadedPaths(
  instance: any,
  paths: readonly string[],
  metadata: EntityMetadata | undefined,
  manager: EntityManager | undefined,
): Promise<any> {
  if (!metadata || !manager || !instance || typeof instance !== 'object') return instance;
  let view: any;
  for (const path of new Set(paths)) {
    const resolved = await resolvePath(view ?? instance, path.split('.'), metadata, manager);
    if (!resolved.loaded) continue;
    view ??= Object.create(instance);
    graft(view, path.split('.'), resolved.value);
  }
  return view ?? instance;
}

/** Reads a dotted path, loading the rest of it where a relation or column on the way is not loaded. */
async function resolvePath(
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
      const row = await loadPath(manager, meta, value, parts.slice(i));
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

/** The row `row` is (by its primary key) with the relations on `rest` loaded; soft-deleted rows included. */
async function loadPath(
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
