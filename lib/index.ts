// The public API of nestjs-thorn (named exports only). The bull dispatcher is loaded lazily and never exported here.
export { ThornModule } from './thorn.module.js';
export { THORN_EXTRAS, type ThornModuleExtras } from './thorn.module-definition.js';
export {
  resolveThornOptions,
  type ThornModuleOptions,
  type ResolvedThornOptions,
  type DeliverySettings,
  type DeliveryOverrides,
  type DispatcherOption,
  type RetryBackoff,
} from './thorn-options.js';
export { THORN_OPTIONS, THORN_QUEUE, HOOK_HEADERS } from './thorn.constants.js';

export { Event, type EventOptions, type SendOptions } from './events/event.js';
export { EventService, senderId } from './events/event.service.js';
export { EventBuffer, type BufferOptions } from './events/event-buffer.js';
export { PayloadError, toJsonSafe } from './events/payload.js';
export type {
  DeliveryRequest,
  DeliveryResult,
  DeliveryCallbacks,
  EventEnvelope,
  SendResult,
} from './events/envelope.js';

export { Q, toQ, isQ, type QLike } from './filters/index.js';

export { Subscriber } from './subscriptions/subscriber.entity.js';
export { CreateThornSubscriber1764150000000 } from './subscriptions/subscriber.migration.js';
export { SubscriptionStore } from './subscriptions/subscription.store.js';
export { matchesPattern, candidatePatterns, storedPatternError } from './subscriptions/pattern.js';
export { staticSubscriberId } from './subscriptions/static-subscribers.js';
export type {
  Recipient,
  SubscriberObject,
  SubscriberContext,
  SubscriberCallback,
  SubscriberSpec,
  SubscribersOption,
} from './subscriptions/recipient.js';

export {
  sign,
  verify,
  compatSign,
  randomSecret,
  toDigest,
  HMAC_DIGESTS,
  type HmacDigest,
  type HmacSigner,
} from './delivery/signing.js';
export {
  DEFAULT_CODECS,
  CONTENT_TYPES,
  jsonCodec,
  formCodec,
  type Codec,
  type ContentType,
} from './delivery/codecs.js';
export {
  blockInternalIps,
  blockCidrNetwork,
  ensureProtocol,
  ensurePort,
  defaultRecipientValidators,
  validateRecipient,
  InvalidUrlError,
  type RecipientValidator,
  type LookupLike,
} from './delivery/validators.js';
export { SecurityError } from './delivery/security-error.js';
export { DeliveryService, type AttemptOutcome } from './delivery/delivery.service.js';
export {
  DeliveryTimeoutError,
  type Transport,
  type TransportRequest,
  type TransportResponse,
} from './delivery/transport.js';
export { THORN_TRANSPORT } from './delivery/transport.token.js';
export { UndiciTransport } from './delivery/undici.transport.js';

export { Dispatcher } from './dispatchers/dispatcher.js';
export { DirectDispatcher } from './dispatchers/direct.dispatcher.js';
export { DisabledDispatcher } from './dispatchers/disabled.dispatcher.js';
export type { ThornQueueStats, ThornBullOptions } from './dispatchers/bull/bull.types.js';

export { HooksController, HooksUser } from './api/hooks.controller.js';
export { createHooksController, hooksControllers } from './api/hooks.controllers.js';
export { HooksGuard } from './api/hooks.guard.js';
export { HOOKS_LIMITS } from './api/hooks.constants.js';
export { CreateSubscriptionDto, UpdateSubscriptionDto } from './api/subscription.dto.js';
export { SubscriptionValidationPipe } from './api/subscription-validation.pipe.js';
export { toSubscriptionJson, type SubscriptionJson } from './api/subscription.mapper.js';

export { WebhookModel, ModelEvent } from './events/decorators.js';
export {
  MODEL_EVENT_TRIGGERS,
  type ModelEventTrigger,
  type ModelEventOptions,
  type WebhookModelOptions,
  type ModelEventDefinition,
  type WebhookModelDefinition,
  type ModelEventInfo,
  type ModelEventMessage,
} from './events/model-event.js';
export { modelReverser, type Reverser } from './events/reverse.js';
export {
  getModelEvents,
  ModelEventHandle,
  type ModelEventSendOptions,
  type ModelEventManualSendOptions,
  type ModelEventFromInstanceOptions,
} from './typeorm/model-events.js';
export { ModelEventSubscriber } from './typeorm/model-event.subscriber.js';
export { ModelEventsMetadataAccessor } from './typeorm/model-events.metadata-accessor.js';
export type { TransportOptions } from './delivery/transport.js';
export { AxiosTransport, type AxiosInstanceLike, type TransportOption } from './delivery/axios.transport.js';
export { createTransport } from './delivery/transport.factory.js';
export { createSafeAgents, type SafeAgentOptions, type SafeAgents } from './delivery/safe-agent.js';
export {
  judgeResponse,
  judgeError,
  parseRetryAfter,
  retryDelayFor,
  type AttemptVerdict,
} from './delivery/retry.js';
export { ModelEventEmitter } from './typeorm/model-event.emitter.js';

// operations (SPEC §13): OpenTelemetry names, the terminus health indicator (OpenAPI needs no export)
export { THORN_TELEMETRY } from './telemetry/telemetry.names.js';
export {
  ThornHealthIndicator,
  type ThornHealthOptions,
  type ThornHealthResult,
  type ThornHealthComponent,
} from './health/thorn.health.js';
