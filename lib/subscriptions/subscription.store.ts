import type { DataSource, EntityTarget, Repository } from 'typeorm';
import { candidatePatterns } from './pattern.js';
import type { Recipient } from './recipient.js';
import type { Subscriber } from './subscriber.entity.js';

/**
 * Stored subscriptions: lookup by event name with one indexed `event IN (candidate patterns)` query (never a scan),
 * filtered by owner.
 */
export class SubscriptionStore {
  readonly repository: Repository<Subscriber>;

  constructor(dataSource: DataSource, entity: EntityTarget<Subscriber>) {
    this.repository = dataSource.getRepository(entity);
  }

  /** Subscriptions matching `event`; with a sender, only those owned by it or by nobody. */
  async find(event: string, sender?: string | null): Promise<Recipient[]> {
    const qb = this.repository
      .createQueryBuilder('s')
      .select(['s.id', 's.event', 's.url', 's.user', 's.hmacSecret', 's.hmacDigest', 's.contentType'])
      .where('s.event IN (:...patterns)', { patterns: candidatePatterns(event) });
    if (sender !== undefined && sender !== null)
      qb.andWhere('(s.user = :sender OR s.user IS NULL)', { sender });
    const rows = await qb.orderBy('s.createdAt', 'ASC').addOrderBy('s.id', 'ASC').getMany();
    return rows.map((s) => ({
      id: s.id,
      url: s.url,
      event: s.event,
      contentType: s.contentType,
      hmacSecret: s.hmacSecret,
      hmacDigest: s.hmacDigest,
      user: s.user,
      source: 'stored' as const,
    }));
  }

  /** Removes a subscription whose receiver answered 410 Gone. */
  async remove(id: string): Promise<void> {
    await this.repository.delete({ id });
  }
}
