import {
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
  type OnModuleInit,
  type Type,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { isObservable, lastValueFrom } from 'rxjs';
import { messages } from '../messages.js';
import { InjectThornOptions } from '../thorn.decorators.js';
import type { ResolvedThornOptions } from '../thorn-options.js';
import { THORN_USER } from './hooks.constants.js';
import { hooksMessages } from './hooks.messages.js';

/**
 * Guards every `/hooks` route: runs the `guards` option in order (they may authenticate, e.g. a passport `AuthGuard`
 * that sets `req.user`), then requires `getUser(req)` to give a user id (401 otherwise; 500 when it is not a string or a
 * finite number) and leaves it, as a string, on the request. A configured guard that refuses gives 403, or 401 when there is no user at all.
 */
@Injectable()
export class HooksGuard implements CanActivate, OnModuleInit {
  private guards?: Promise<CanActivate[]>;

  constructor(
    @InjectThornOptions() private readonly options: ResolvedThornOptions,
    @Inject(ModuleRef) private readonly moduleRef: ModuleRef,
  ) {}

  /** Resolves the guard classes at start-up, so a guard that can't be built fails the boot, not a request. */
  async onModuleInit(): Promise<void> {
    await this.resolveGuards();
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest();
    for (const guard of await this.resolveGuards()) {
      let result = guard.canActivate(context);
      if (isObservable(result)) result = lastValueFrom(result);
      if (!(await result)) {
        if ((await this.userOf(req)) === null)
          throw new UnauthorizedException(hooksMessages.unauthenticated());
        throw new ForbiddenException();
      }
    }
    const user = await this.userOf(req);
    if (user === null) throw new UnauthorizedException(hooksMessages.unauthenticated());
    req[THORN_USER] = user;
    return true;
  }

  /**
   * The requesting user's id as a string, or null; a `getUser` that throws counts as no user. Anything but a string or
   * a finite number (an object, a boolean, NaN) is a misconfigured `getUser`: its string form (`"[object Object]"`,
   * `"true"`) would be one id shared by many users, so the request fails with a 500 and a logged error instead.
   */
  private async userOf(req: unknown): Promise<string | null> {
    let id: unknown;
    try {
      id = await this.options.getUser(req);
    } catch {
      return null;
    }
    if (id === null || id === undefined || id === '') return null;
    if (typeof id === 'string') return id;
    if (typeof id === 'number' && Number.isFinite(id)) return String(id);
    throw new Error(messages.badUserId(id));
  }

  private resolveGuards(): Promise<CanActivate[]> {
    this.guards ??= Promise.all(this.options.guards.map((g) => this.instantiate(g)));
    return this.guards;
  }

  private async instantiate(guard: Type<CanActivate> | CanActivate): Promise<CanActivate> {
    if (typeof guard !== 'function') {
      if (!guard || typeof guard.canActivate !== 'function') {
        throw new Error(
          'ThornModule option "guards" is invalid: use guard classes or objects with a canActivate() method',
        );
      }
      return guard;
    }
    try {
      // a guard the app already provides keeps its one instance
      return this.moduleRef.get(guard, { strict: false });
    } catch {
      return this.moduleRef.create(guard);
    }
  }
}
