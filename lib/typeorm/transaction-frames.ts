import type { QueryRunner } from 'typeorm';

/** A place in a transaction frame, reserved when an event is raised and filled once its message is built. */
export interface HeldSlot<T> {
  items?: T[];
}

/**
 * Events held per QueryRunner until the outermost commit, as a stack of frames: one per transaction level (TypeORM runs
 * nested `transaction()` calls as savepoints and reports each level through the same transaction hooks, with
 * `queryRunner.transactionDepth` already updated). Releasing a savepoint merges its frame into the one below; rolling
 * one back drops its frame only; the outermost commit hands every held item over, in the order raised.
 */
export class TransactionFrames<T> {
  private readonly stacks = new WeakMap<QueryRunner, HeldSlot<T>[][]>();

  /** Whether events raised on `qr` now would be held. */
  isHolding(qr: QueryRunner | undefined): qr is QueryRunner {
    return !!qr && qr.isTransactionActive && depthOf(qr) > 0;
  }

  /** Reserves a slot in the innermost frame of `qr` (the caller fills `items` later). */
  reserve(qr: QueryRunner): HeldSlot<T> {
    const stack = this.sync(qr);
    const slot: HeldSlot<T> = {};
    stack[stack.length - 1].push(slot);
    return slot;
  }

  /** A transaction or savepoint started (`afterTransactionStart`). */
  started(qr: QueryRunner): void {
    this.sync(qr);
  }

  /** A commit or savepoint release finished: at depth 0 returns every held item (and forgets `qr`), else merges. */
  committed(qr: QueryRunner): T[] | undefined {
    const stack = this.stacks.get(qr);
    if (!stack) return undefined;
    const depth = depthOf(qr);
    if (depth === 0) {
      this.stacks.delete(qr);
      return stack.flat().flatMap((slot) => slot.items ?? []);
    }
    while (stack.length > depth) {
      const top = stack.pop()!;
      stack[stack.length - 1].push(...top);
    }
    return undefined;
  }

  /** A rollback finished: drops the frames above the new depth (all of them at depth 0). */
  rolledBack(qr: QueryRunner): void {
    const stack = this.stacks.get(qr);
    if (!stack) return;
    const depth = depthOf(qr);
    if (depth === 0) this.stacks.delete(qr);
    else stack.length = Math.min(stack.length, depth);
  }

  /** The stack of `qr`, padded to its current depth (a transaction may have begun before we were registered). */
  private sync(qr: QueryRunner): HeldSlot<T>[][] {
    let stack = this.stacks.get(qr);
    if (!stack) {
      stack = [];
      this.stacks.set(qr, stack);
    }
    while (stack.length < Math.max(depthOf(qr), 1)) stack.push([]);
    return stack;
  }
}

/** Transaction nesting level of `qr` (TypeORM's drivers keep it on the runner; savepoints count). */
export function depthOf(qr: QueryRunner): number {
  const depth = (qr as QueryRunner & { transactionDepth?: number }).transactionDepth;
  return typeof depth === 'number' ? Math.max(depth, 0) : qr.isTransactionActive ? 1 : 0;
}
