import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import {
  IsBoolean,
  IsDefined,
  IsIn,
  IsString,
  Matches,
  MaxLength,
  MinLength,
  Validate,
  ValidateIf,
} from 'class-validator';
import { HMAC_DIGESTS, type HmacDigest } from '../delivery/signing.js';
import { HOOKS_LIMITS } from './hooks.constants.js';
import { hooksMessages } from './hooks.messages.js';
import {
  ContentTypeConstraint,
  EventConstraint,
  RecipientUrlConstraint,
} from './subscription.constraints.js';

// Rules run in the order listed and stop at a field's first failure (stopAtFirstError), so each field gets one
// message. A required field rejects undefined and null; an optional one skips undefined but rejects null.
const required = () => IsDefined({ message: hooksMessages.required });
const optional = () => ValidateIf((_o: object, value: unknown) => value !== undefined);
const string = () => IsString({ message: hooksMessages.string });
const notBlank = () => Matches(/\S/, { message: hooksMessages.blank });
// NUL and other control characters: never meaningful here, and PostgreSQL rejects NUL in text (a 500 otherwise)
const printable = () =>
  // eslint-disable-next-line no-control-regex
  Matches(/^[^\u0000-\u001f\u007f]*$/, {
    message: ({ property }) => `${property} must not contain control characters`,
  });
const lowerCase = () => Transform(({ value }) => (typeof value === 'string' ? value.toLowerCase() : value));

const eventRules = (presence: PropertyDecorator) =>
  applyDecorators(
    presence,
    string(),
    notBlank(),
    printable(),
    MaxLength(HOOKS_LIMITS.eventMaxLength, { message: hooksMessages.maxLength }),
    Validate(EventConstraint),
  );
const urlRules = (presence: PropertyDecorator) =>
  applyDecorators(
    presence,
    string(),
    notBlank(),
    printable(),
    MaxLength(HOOKS_LIMITS.urlMaxLength, { message: hooksMessages.maxLength }),
    Validate(RecipientUrlConstraint),
  );
const contentTypeRules = () => applyDecorators(optional(), string(), Validate(ContentTypeConstraint));
const secretRules = () =>
  applyDecorators(
    optional(),
    string(),
    printable(),
    MinLength(HOOKS_LIMITS.secretMinLength, { message: hooksMessages.minLength }),
    MaxLength(HOOKS_LIMITS.secretMaxLength, { message: hooksMessages.maxLength }),
  );
const digestRules = () =>
  applyDecorators(
    lowerCase(),
    optional(),
    string(),
    IsIn([...HMAC_DIGESTS], { message: hooksMessages.digest(HMAC_DIGESTS) }),
  );

/**
 * Body of `POST /hooks` and `PUT /hooks/:id`: `event` and `url` required. Only these fields are accepted; `id`,
 * `user`, timestamps or anything else in the body is answered 400.
 */
export class CreateSubscriptionDto {
  /** Event pattern (`article.created`, `article.*`, `article.#`), one of `eventChoices` when that is set. */
  @eventRules(required())
  event!: string;

  /** Callback URL; must pass the module's recipient validators. */
  @urlRules(required())
  url!: string;

  /** `application/json` (default) or `application/x-www-form-urlencoded` (or a type from the `codecs` option). */
  @contentTypeRules()
  content_type?: string;

  /** HMAC secret, at least 16 characters; generated (64 characters) when not given. */
  @secretRules()
  hmac_secret?: string;

  /** `sha1`, `sha256` (default) or `sha512`, case-insensitive. */
  @digestRules()
  hmac_digest?: HmacDigest;
}

/** Body of `PATCH /hooks/:id`: the fields of `CreateSubscriptionDto`, each optional, with the same rules. */
export class UpdateSubscriptionDto {
  /** See `CreateSubscriptionDto.event`. */
  @eventRules(optional())
  event?: string;

  /** See `CreateSubscriptionDto.url`. */
  @urlRules(optional())
  url?: string;

  /** See `CreateSubscriptionDto.content_type`. */
  @contentTypeRules()
  content_type?: string;

  /** See `CreateSubscriptionDto.hmac_secret`. */
  @secretRules()
  hmac_secret?: string;

  /** See `CreateSubscriptionDto.hmac_digest`. */
  @digestRules()
  hmac_digest?: HmacDigest;

  /** `true` re-enables the subscription and clears its failure streak; `false` pauses it. */
  @optional()
  @IsBoolean({ message: hooksMessages.boolean })
  active?: boolean;
}

/** Body of `POST /hooks/:id/rotate-secret` (optional): the new secret, checked like `hmac_secret` on create. */
export class RotateSecretDto {
  /** See `CreateSubscriptionDto.hmac_secret`; generated when not given. */
  @secretRules()
  hmac_secret?: string;
}
