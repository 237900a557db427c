import type { Repository } from 'typeorm';
import type { Subscriber } from './subscriber.entity.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A subscription id as the entity's primary column stores it, or null when the string can't be one (a malformed UUID
 * or number), so a lookup answers "not found" instead of failing with a database error (a 500 through the API).
 */
export function subscriptionKey(repository: Repository<Subscriber>, id: unknown): string | null {
  if (typeof id !== 'string' || id === '' || id.length > 255) return null;
  const column = repository.metadata.primaryColumns[0];
  if (column && (column.generationStrategy === 'uuid' || column.type === 'uuid')) {
    return UUID.test(id) ? id.toLowerCase() : null;
  }
  if (column && (column.type === Number || /int|serial|numeric|decimal/i.test(String(column.type)))) {
    return /^\d{1,15}$/.test(id) ? id : null;
  }
  return id;
}
