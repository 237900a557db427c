import type { EntityManager, Repository } from 'typeorm';
import type { Subscriber } from '../subscriptions/subscriber.entity.js';

/**
 * Creates a subscription only while its user holds fewer than `max`, atomically: concurrent creates of one user are
 * serialised, so N parallel requests can never overshoot the quota.
 * - in-process: one queue per user (SQLite runs every query of a DataSource on one connection, so a database lock
 *   would not separate two requests of one process);
 * - PostgreSQL: also a transaction-scoped advisory lock per user, so several app processes on one database agree.
 */
export class UserQuota {
  /** Per user: the tail of its queue (resolves when the last create of that user has finished). */
  private readonly tails = new Map<string, Promise<unknown>>();

  constructor(private readonly repository: Repository<Subscriber>) {}

  /** Saves `entity` for `user` unless the user already holds `max`; resolves to the saved row, or null when full. */
  async create(user: string, max: number, entity: Subscriber): Promise<Subscriber | null> {
    const previous = this.tails.get(user) ?? Promise.resolve();
    const run = previous.then(() => this.createLocked(user, max, entity));
    const tail = run.catch(() => undefined);
    this.tails.set(user, tail);
    try {
      return await run;
    } finally {
      // the last in line removes the entry, so the map holds only users with a create in flight
      if (this.tails.get(user) === tail) this.tails.delete(user);
    }
  }

  private createLocked(user: string, max: number, entity: Subscriber): Promise<Subscriber | null> {
    const repo = this.repository;
    return repo.manager.transaction(async (m: EntityManager) => {
      if (repo.manager.connection.options.type === 'postgres') {
        await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`thorn_subscriber.user:${user}`]);
      }
      if ((await m.countBy(repo.target, { user })) >= max) return null;
      return m.save(repo.target, entity) as Promise<Subscriber>;
    });
  }
}
