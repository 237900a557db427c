import type { Logger } from '@nestjs/common';
import type { EntityManager, EntityMetadata, ObjectLiteral } from 'typeorm';
import { withLoadedPaths } from './model-relations.loader.js';
import { logError } from '../telemetry/log-fields.js';

/**
 * The relations a delete event reads but the removed entity lacks, loaded in `beforeRemove` (after the DELETE they are
 * gone; TypeORM's databaseEntity has many-to-many ids only) and handed to `afterRemove` by entity.
 */
export class RemovalPreloads {
  private readonly views = new WeakMap<ObjectLiteral, ObjectLiteral>();

  constructor(private readonly logger: Logger) {}

  /** `beforeRemove`: loads what `paths` need (awaited by the hook); a failure is logged, the delete goes on. */
  load(
    entity: ObjectLiteral,
    paths: string[],
    metadata: EntityMetadata,
    manager: EntityManager,
  ): Promise<void> {
    return withLoadedPaths(entity, paths, metadata, manager).then(
      (view) => {
        if (view !== entity) this.views.set(entity, view);
      },
      (err: Error) =>
        this.logger.error(`Could not load what the delete events of ${metadata.name} read: ${logError(err)}`),
    );
  }

  /** `afterRemove`: the relations loaded for `entity` (the view's own properties), once. */
  take(entity: ObjectLiteral | undefined): ObjectLiteral | undefined {
    const view = entity && this.views.get(entity);
    if (!view) return undefined;
    this.views.delete(entity);
    return Object.fromEntries(Object.entries(view));
  }
}
