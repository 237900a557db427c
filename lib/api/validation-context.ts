import type { ResolvedThornOptions } from '../thorn-options.js';

// The rules that depend on the module options (recipient validators, eventChoices, codecs) are class-validator
// constraints, but class-validator has no per-call context: the pipe registers the options for the DTO instance it is
// about to validate, and the constraints look them up by that instance. Weak maps, so nothing outlives the request.
const optionsByObject = new WeakMap<object, ResolvedThornOptions>();
const problemsByObject = new WeakMap<object, Record<string, string>>();

/** Makes `options` visible to the constraints while `dto` is validated. */
export function setValidationOptions(dto: object, options: ResolvedThornOptions): void {
  optionsByObject.set(dto, options);
}

/** The module options registered for `dto`, if any. */
export function validationOptionsOf(dto: object): ResolvedThornOptions | undefined {
  return optionsByObject.get(dto);
}

/** Records why `property` of `dto` failed, for the constraint's message. */
export function setProblem(dto: object, property: string, message: string): false {
  const problems = problemsByObject.get(dto) ?? {};
  problems[property] = message;
  problemsByObject.set(dto, problems);
  return false;
}

/** The message recorded by `setProblem`, if any. */
export function problemOf(dto: object, property: string): string | undefined {
  return problemsByObject.get(dto)?.[property];
}
