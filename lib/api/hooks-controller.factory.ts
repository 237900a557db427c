import { Controller, type Provider, type Type } from '@nestjs/common';
import type { ResolvedThornExtras } from '../thorn-options.js';
import { HooksBodyErrorHandler } from './body-errors.js';
import { HooksController } from './hooks.controller.js';

/**
 * The `/hooks` controller class(es) to mount for these extras (REST API: SPEC §7): none when `controller` is false or
 * there are no stored subscriptions (`subscriberEntity: false`).
 */
export function hooksControllers(extras: ResolvedThornExtras): Type<unknown>[] {
  if (!extras.controller || extras.subscriberEntity === false) return [];
  return [createHooksController(extras.path)];
}

/** The providers the mounted controllers need besides the module's own: the body-error handler for their path. */
export function hooksProviders(extras: ResolvedThornExtras): Provider[] {
  return hooksControllers(extras).length ? [HooksBodyErrorHandler] : [];
}

/** A `HooksController` mounted at `path`: a fresh subclass each time, so the shared class is never changed. */
export function createHooksController(path: string): Type<HooksController> {
  class ThornHooksController extends HooksController {}
  Controller(path)(ThornHooksController);
  return ThornHooksController;
}
