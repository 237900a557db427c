// The public API of nestjs-thorn (named exports only; README "Public API" names each runtime export, and
// test/unit/public-api.spec.ts pins the list). The bull and bullmq dispatchers are loaded lazily and never exported here.

// the module and its options
export { ThornModule } from './thorn.module.js';
export { InjectThornOptions } from './thorn.decorators.js';
export { THORN_OPTIONS, THORN_QUEUE, HOOK_HEADERS } from './thorn.constants.js';
export type {
  ThornModuleOptions,
  ThornModuleExtras,
  ResolvedThornOptions,
  DeliverySettings,
  DeliveryOverrides,
  DispatcherOption,
  RetryBackoff,
  AutoDisableOptions,
  DisabledReason,
} from './thorn-options.js';

// events
export { Event, type EventOptions, type SendOptions } from './events/event.js';
export { EventService } from './events/event.service.js';
export type { EventBuffer, BufferOptions } from './events/event-buffer.js';
export { PayloadError } from './events/payload.js';
export { escapeEventWord } from './events/name-template.js';
export type {
  DeliveryRequest,
  DeliveryResult,
  DeliveryCallbacks,
  EventEnvelope,
  SendResult,
} from './events/envelope.js';

// model events
export { WebhookModel, ModelEvent } from './events/decorators.js';
export type {
  ModelEventTrigger,
  ModelEventOptions,
  WebhookModelOptions,
  ModelEventDefinition,
  WebhookModelDefinition,
  ModelEventInfo,
  ModelEventMessage,
} from './events/model-event.js';
export { modelReverser, type Reverser } from './events/reverse.js';
export {
  getModelEvents,
  type ModelEventHandle,
  type ModelEventSendOptions,
  type ModelEventManualSendOptions,
  type ModelEventFromInstanceOptions,
} from './typeorm/model-events.js';
export { ModelEventEmitter } from './typeorm/model-event.emitter.js';
export { Q, type QLike } from './filters/index.js';

// subscriptions
export { Subscriber } from './subscriptions/subscriber.entity.js';
export { CreateThornSubscriber1764150000000 } from './subscriptions/subscriber.migration.js';
export { CreateThornSubscriberVersion1764160000000 } from './subscriptions/subscriber-version.migration.js';
export { AddThornSubscriberHealth1764170000000 } from './subscriptions/subscriber-health.migration.js';
export { SubscriptionService, type SubscriptionScope } from './subscriptions/subscription.service.js';
export { matchesPattern } from './subscriptions/pattern.js';

// the delivery ledger (option `ledger`)
export {
  ThornEvent,
  ThornDelivery,
  ThornAttempt,
  THORN_LEDGER_ENTITIES,
  type ThornDeliveryStatus,
} from './ledger/ledger.entities.js';
export { CreateThornLedger1764180000000 } from './ledger/ledger.migration.js';
export { ThornLedger } from './ledger/ledger.js';
export type { LedgerOptions } from './ledger/ledger.types.js';
export {
  DeliveryLogService,
  type DeliveryLogScope,
  type DeliveryListOptions,
  type DeliveryLogEntry,
  type DeliveryLogAttempt,
  type DeliveryLogDetails,
  type DeliveryLogPage,
  type Redelivery,
} from './ledger/delivery-log.service.js';
export { InvalidParameterError } from './pagination.js';
export type { SigningKeys } from './delivery/request.js';
export type {
  Recipient,
  SubscriberObject,
  SubscriberContext,
  SubscriberCallback,
  SubscriberSpec,
  SubscribersOption,
} from './subscriptions/recipient.js';

// signing, codecs, recipient validation
export {
  sign,
  verify,
  compatSign,
  randomSecret,
  randomStandardWebhooksSecret,
  type HmacDigest,
  type HmacSigner,
} from './delivery/signing.js';
export {
  verifyStandardWebhook,
  verifyHookHmac,
  WebhookVerificationError,
  type WebhookHeaders,
  type VerifyStandardWebhookOptions,
  type VerifyHookHmacOptions,
} from './delivery/receiver.js';
export { jsonCodec, formCodec, type Codec, type ContentType } from './delivery/codecs.js';
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

// delivery and dispatchers (custom dispatchers use RecipientResolver and DeliveryService)
export { RecipientResolver, type RecipientQuery } from './subscriptions/recipient.resolver.js';
export {
  DeliveryService,
  type AttemptOutcome,
  type DeliveryHooks,
  type EncodedBodies,
  type PrepareOptions,
} from './delivery/delivery.service.js';
export type { AttemptVerdict } from './delivery/retry.js';
export {
  DeliveryTimeoutError,
  type Transport,
  type TransportOptions,
  type TransportRequest,
  type TransportResponse,
} from './delivery/transport.js';
export type { AxiosInstanceLike, TransportOption } from './delivery/axios.transport.js';
export { Dispatcher } from './dispatchers/dispatcher.js';
export type { ThornQueueStats } from './dispatchers/queue/queue.types.js';
export type { ThornBullOptions } from './dispatchers/bull/bull.types.js';
export type { ThornBullMQOptions } from './dispatchers/bullmq/bullmq.types.js';

// operations (SPEC §13): OpenTelemetry names, the terminus health indicator (OpenAPI needs no export)
export { THORN_TELEMETRY } from './telemetry/telemetry.names.js';
export {
  ThornHealthIndicator,
  type ThornHealthOptions,
  type ThornHealthResult,
  type ThornHealthComponent,
} from './health/thorn.health.js';
