import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import * as api from '../../lib/index.js';

// The package's runtime exports. Adding or removing one is a deliberate change to the public contract: update this
// list and the README's "Public API" section together.
const RUNTIME_EXPORTS = [
  'AddThornSubscriberHealth1764170000000',
  'CreateThornSubscriber1764150000000',
  'CreateThornLedger1764180000000',
  'CreateThornSubscriberVersion1764160000000',
  'DeliveryLogService',
  'DeliveryService',
  'DeliveryTimeoutError',
  'Dispatcher',
  'Event',
  'EventService',
  'HOOK_HEADERS',
  'InjectThornOptions',
  'InvalidParameterError',
  'InvalidUrlError',
  'ModelEvent',
  'ModelEventEmitter',
  'PayloadError',
  'Q',
  'RecipientResolver',
  'SecurityError',
  'Subscriber',
  'SubscriptionService',
  'THORN_LEDGER_ENTITIES',
  'THORN_OPTIONS',
  'THORN_QUEUE',
  'THORN_TELEMETRY',
  'ThornAttempt',
  'ThornDelivery',
  'ThornEvent',
  'ThornHealthIndicator',
  'ThornLedger',
  'ThornModule',
  'WebhookModel',
  'WebhookVerificationError',
  'blockCidrNetwork',
  'blockInternalIps',
  'compatSign',
  'defaultRecipientValidators',
  'ensurePort',
  'ensureProtocol',
  'escapeEventWord',
  'formCodec',
  'getModelEvents',
  'jsonCodec',
  'matchesPattern',
  'modelReverser',
  'randomSecret',
  'randomStandardWebhooksSecret',
  'sign',
  'validateRecipient',
  'verify',
  'verifyHookHmac',
  'verifyStandardWebhook',
];

/** The README's "Public API" section. */
function publicApiSection(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('\n## Public API\n');
  expect(start).toBeGreaterThan(-1);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end === -1 ? undefined : end);
}

describe('the public API', () => {
  it('exports exactly the pinned runtime values (at most 60)', () => {
    expect(Object.keys(api).sort()).toEqual([...RUNTIME_EXPORTS].sort());
    expect(RUNTIME_EXPORTS.length).toBeLessThanOrEqual(60);
  });

  it('names every runtime export in the README "Public API" section', () => {
    const section = publicApiSection();
    const missing = RUNTIME_EXPORTS.filter((name) => !section.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });
});
