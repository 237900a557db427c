import { Injectable, ValidationPipe } from '@nestjs/common';
import type { ValidatorOptions } from 'class-validator';
import { InjectThornOptions } from '../thorn.decorators.js';
import type { ResolvedThornOptions } from '../thorn-options.js';
import { setValidationOptions } from './validation-context.js';

/**
 * `ValidationPipe` for the subscription DTOs: whitelist with `forbidNonWhitelisted` (an unknown or read-only field is a
 * 400, never silently trusted or dropped), no implicit conversion, one message per field, and the module options made
 * available to the constraints that need them (recipient validators, `eventChoices`, codecs).
 */
@Injectable()
export class SubscriptionValidationPipe extends ValidationPipe {
  constructor(@InjectThornOptions() private readonly thornOptions: ResolvedThornOptions) {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      forbidUnknownValues: true,
      stopAtFirstError: true,
      transform: true,
      transformOptions: { enableImplicitConversion: false },
      validationError: { target: false, value: false },
    });
  }

  protected override validate(object: object, validatorOptions?: ValidatorOptions) {
    setValidationOptions(object, this.thornOptions);
    return super.validate(object, validatorOptions);
  }
}
