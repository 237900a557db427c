import { IsDefined, IsString } from 'class-validator';
import { hooksMessages } from './hooks.messages.js';

/**
 * Body of `POST /hooks/:id/recover`: `since`, an ISO-8601 date not in the future (checked by the delivery log, which
 * names it in the 400). Anything else in the body is answered 400.
 */
export class RecoverDto {
  /** Failed deliveries created at or after this time are attempted again. */
  @IsDefined({ message: hooksMessages.required })
  @IsString({ message: 'since must be an ISO-8601 date string such as 2025-01-31T12:00:00Z' })
  since!: string;
}
