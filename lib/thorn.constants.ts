/** Injection token of the resolved module options (`ResolvedThornOptions`). */
export const THORN_OPTIONS = Symbol('thorn:options');
/** Name of the Bull queue used by the bull dispatcher. */
export const THORN_QUEUE = 'thorn';
/** Metadata key of `@WebhookModel`. */
export const WEBHOOK_MODEL_METADATA = 'thorn:webhook-model';
/** Metadata key of the `@ModelEvent` list. */
export const MODEL_EVENTS_METADATA = 'thorn:model-events';

/** Request headers set on every delivery; user headers may not override them. */
export const HOOK_HEADERS = {
  event: 'Hook-Event',
  delivery: 'Hook-Delivery',
  subscription: 'Hook-Subscription',
  hmac: 'Hook-HMAC',
} as const;

/** Package version, used in the default User-Agent. */
export const THORN_VERSION = '0.1.0';
