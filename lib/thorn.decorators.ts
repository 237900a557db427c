import { Inject } from '@nestjs/common';
import { THORN_OPTIONS } from './thorn.constants.js';

/** Injects the resolved module options (`ResolvedThornOptions`: every default applied). */
export const InjectThornOptions = (): PropertyDecorator & ParameterDecorator => Inject(THORN_OPTIONS);
