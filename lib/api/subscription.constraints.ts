import {
  ValidatorConstraint,
  type ValidationArguments,
  type ValidatorConstraintInterface,
} from 'class-validator';
import { InvalidUrlError, validateRecipient } from '../delivery/validators.js';
import { isSecurityError } from '../delivery/security-error.js';
import { storedPatternError } from '../subscriptions/pattern.js';
import { HOOKS_LIMITS } from './hooks.constants.js';
import { hooksMessages } from './hooks.messages.js';
import { problemOf, setProblem, validationOptionsOf } from './validation-context.js';

// Each constraint only judges strings: type, blank and length are reported by the decorators before it
// (stopAtFirstError), so a value that gets here otherwise is let through rather than reported twice.
// Without module options (an app-wide ValidationPipe validating the DTO before the route's own pipe) the
// option-dependent checks pass: SubscriptionValidationPipe, which every write route applies, runs them.

/** `event`: a storable pattern (`storedPatternError`) and, when `eventChoices` is set, one of them. */
@ValidatorConstraint({ name: 'thornEvent' })
export class EventConstraint implements ValidatorConstraintInterface {
  validate(value: unknown, args: ValidationArguments): boolean {
    if (typeof value !== 'string') return true;
    const why = storedPatternError(value);
    if (why) return setProblem(args.object, args.property, hooksMessages.eventPattern(why));
    const choices = validationOptionsOf(args.object)?.eventChoices;
    if (choices && !choices.includes(value)) {
      return setProblem(args.object, args.property, hooksMessages.eventChoice(choices));
    }
    return true;
  }

  defaultMessage(args: ValidationArguments): string {
    return problemOf(args.object, args.property) ?? `${args.property} is invalid`;
  }
}

/** `content_type`: a content type with a codec (the built-in JSON and form ones, plus the `codecs` option). */
@ValidatorConstraint({ name: 'thornContentType' })
export class ContentTypeConstraint implements ValidatorConstraintInterface {
  validate(value: unknown, args: ValidationArguments): boolean {
    if (typeof value !== 'string') return true;
    const options = validationOptionsOf(args.object);
    if (!options) return true;
    const types = Object.keys(options.codecs);
    if (canonicalContentType(value, types)) return true;
    return setProblem(args.object, args.property, hooksMessages.contentType(types));
  }

  defaultMessage(args: ValidationArguments): string {
    return problemOf(args.object, args.property) ?? `${args.property} is invalid`;
  }
}

/** The codec key `value` names (media types are case-insensitive), or undefined. */
export function canonicalContentType(value: string, types: string[]): string | undefined {
  const lower = value.toLowerCase();
  return types.find((t) => t.toLowerCase() === lower);
}

/**
 * `url`: passes `validateRecipient` with the module's `recipientValidators` and `lookup`, the same check every
 * delivery runs. Blocked, malformed and unresolvable URLs all fail here, so they are answered 400, never 500.
 */
@ValidatorConstraint({ name: 'thornRecipientUrl', async: true })
export class RecipientUrlConstraint implements ValidatorConstraintInterface {
  async validate(value: unknown, args: ValidationArguments): Promise<boolean> {
    if (typeof value !== 'string' || value.length > HOOKS_LIMITS.urlMaxLength) return true;
    const options = validationOptionsOf(args.object);
    if (!options) return true;
    const why = await recipientProblem(value, options.recipientValidators, options.lookup);
    return why ? setProblem(args.object, args.property, why) : true;
  }

  defaultMessage(args: ValidationArguments): string {
    return problemOf(args.object, args.property) ?? `${args.property} is invalid`;
  }
}

/** Why `url` can't be subscribed, or null. Never throws. */
export async function recipientProblem(
  url: string,
  validators: Parameters<typeof validateRecipient>[1],
  lookup: Parameters<typeof validateRecipient>[2],
): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error('lookup timed out'), { code: 'ETIMEOUT' })),
      HOOKS_LIMITS.lookupTimeout,
    );
  });
  try {
    await Promise.race([validateRecipient(url, validators, lookup), timeout]);
    return null;
  } catch (err) {
    if (err instanceof InvalidUrlError) return hooksMessages.urlInvalid();
    if (isSecurityError(err))
      return hooksMessages.urlBlocked(err.message.replace(/^Recipient blocked: /, ''));
    const e = err as NodeJS.ErrnoException & { hostname?: string };
    let host: string;
    try {
      host = new URL(url.trim()).hostname;
    } catch {
      return hooksMessages.urlInvalid();
    }
    if (e && typeof e.code === 'string') return hooksMessages.urlUnresolvable(e.hostname ?? host, e.code);
    // A validator that failed in some other way: refuse (fail closed), it is still the client's URL that was judged.
    return hooksMessages.urlBlocked(e instanceof Error ? e.message : String(e));
  } finally {
    clearTimeout(timer);
  }
}
