import type { EntityMetadata } from 'typeorm';
import type { RelationMetadata } from './typeorm-types.js';
import { senderOf, senderValue } from '../events/model-event.js';

/**
 * The sender id at `senderField` (a dotted path), or null when none can be determined. Where the path ends on a
 * relation, the sender is the related entity's primary key as TypeORM's metadata names it (a `uuid` column, say, not
 * necessarily `id`), read from a loaded row or from one known by its key only; a column gives its value. A null
 * relation or value, a row without its key, or a composite key gives null. Parts of the path TypeORM doesn't know
 * (a plain object, no metadata at all) follow the metadata-free rule: an object's `id`, a primitive itself.
 */
export function senderAt(
  instance: unknown,
  senderField: string,
  metadata: EntityMetadata | undefined,
): unknown {
  if (!metadata) return senderOf(instance, senderField);
  const parts = senderField.split('.');
  let value: any = instance;
  let meta: EntityMetadata | undefined = metadata;
  for (let i = 0; i < parts.length; i++) {
    if (value === null || value === undefined || typeof value !== 'object') return null;
    const relation: RelationMetadata | undefined = meta?.findRelationWithPropertyPath(parts[i]);
    const next = value[parts[i]];
    if (i === parts.length - 1 && relation) {
      if (next === null || next === undefined) return null;
      if (typeof next !== 'object') return next; // a bare id where TypeORM would hold a row
      const key = relation.inverseEntityMetadata.getEntityIdMixedMap(next);
      return key === undefined || key === null || typeof key === 'object' ? null : key;
    }
    value = next;
    meta = relation?.inverseEntityMetadata;
  }
  return senderValue(value);
}
