import type { Type } from '@nestjs/common';
import type { ResolvedThornExtras } from '../thorn.module-definition.js';

/** The `/hooks` controller class(es) to mount for these extras (REST API: SPEC §7). */
export function hooksControllers(_extras: ResolvedThornExtras): Type<unknown>[] {
  return [];
}
