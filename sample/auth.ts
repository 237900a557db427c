import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { User } from './entities.js';

/**
 * The sample's tiny auth: `Authorization: Bearer <token>` sets `req.user` (ThornModule's default `getUser` reads
 * `req.user.id`). It never blocks by itself: `/hooks` answers 401 when there is no user, `/articles` writes too.
 */
@Injectable()
export class BearerAuthGuard implements CanActivate {
  constructor(@InjectRepository(User) private readonly users: Repository<User>) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest();
    const match = /^Bearer\s+(\S+)$/i.exec(req.headers?.authorization ?? '');
    if (match) {
      const user = await this.users.findOneBy({ token: match[1] });
      if (user) req.user = { id: user.id, username: user.username };
    }
    return true;
  }
}
