// Every injection token, the queue name, header names and metadata keys of the module, in one place. This file imports
// nothing, so any layer may use it without loading another.

/** Injection token of the resolved module options (`ResolvedThornOptions`); inject it with `@InjectThornOptions()`. */
export const THORN_OPTIONS = Symbol('thorn:options');
/** Injection token of the options as given to `forRoot()` / returned by the `forRootAsync()` factory (unresolved). */
export const THORN_MODULE_OPTIONS = Symbol('thorn:module-options');
/** Injection token of the resolved module extras (`ResolvedThornExtras`). */
export const THORN_EXTRAS = Symbol('thorn:extras');
/** Injection token of the app's TypeORM DataSource (null when the app has none). */
export const THORN_DATA_SOURCE = Symbol('thorn:data-source');
/** Injection token of the HTTP `Transport` used for deliveries. */
export const THORN_TRANSPORT = Symbol('thorn:transport');

/** Name of the queue the bull and bullmq dispatchers use. */
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
