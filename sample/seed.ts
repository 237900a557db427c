import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { Account, Author, User } from './entities.js';

/** The two seeded users of the sample and their bearer tokens. */
export const SEEDED_USERS = [
  { username: 'alice', token: 'alice-token' },
  { username: 'bob', token: 'bob-token' },
];

/** Creates alice and bob (user → account → author) on first start. */
@Injectable()
export class SeedService implements OnApplicationBootstrap {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async onApplicationBootstrap(): Promise<void> {
    for (const seed of SEEDED_USERS) {
      const users = this.dataSource.getRepository(User);
      if (await users.findOneBy({ username: seed.username })) continue;
      const user = await users.save(users.create(seed));
      const account = await this.dataSource.getRepository(Account).save({ user });
      await this.dataSource.getRepository(Author).save({ name: seed.username, account });
    }
  }
}
