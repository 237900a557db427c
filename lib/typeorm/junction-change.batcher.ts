import type { EntityManager, EntityMetadata, ObjectLiteral, QueryRunner } from 'typeorm';
import type { PreparedModelEvent } from './model-event.builder.js';
import type { HookWait, ModelEventEmitter } from './model-event.emitter.js';

/** A junction row added or removed, by property or database column names. */
export interface JunctionChange {
  junction: EntityMetadata;
  kind: 'add' | 'remove';
  row: ObjectLiteral;
}

/**
 * Groups the junction rows of one TypeORM operation. TypeORM calls every "after" hook of an operation synchronously,
 * so the rows reported on one QueryRunner are collected until the next microtask and raised as one batch, in the frame
 * slot of the first row's hook; every hook of the batch awaits the same build.
 */
export class JunctionChangeBatcher {
  private readonly open = new WeakMap<QueryRunner, { changes: JunctionChange[]; done: HookWait }>();

  constructor(
    private readonly emitter: ModelEventEmitter,
    /** The events of one batch (built through `manager`, the hook's). */
    private readonly eventsOf: (
      changes: JunctionChange[],
      manager: EntityManager,
    ) => Promise<PreparedModelEvent[]>,
  ) {}

  /** Adds a row to `qr`'s open batch (opening one); returns what the reporting hook awaits. */
  add(qr: QueryRunner, manager: EntityManager, change: JunctionChange): HookWait {
    let batch = this.open.get(qr);
    if (!batch) {
      const changes: JunctionChange[] = [];
      const done = this.emitter.raise(qr, () =>
        Promise.resolve().then(() => {
          this.open.delete(qr);
          return this.eventsOf(changes, manager);
        }),
      );
      batch = { changes, done };
      this.open.set(qr, batch);
    }
    batch.changes.push(change);
    return batch.done;
  }
}
