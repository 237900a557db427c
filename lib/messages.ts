/** Error and log texts, in one place so they stay consistent and say what to do. */
export const messages = {
  badOption: (name: string, got: unknown, want: string) =>
    `ThornModule option "${name}" is invalid (got ${describe(got)}): ${want}`,
  badSendOption: (event: string, name: string, got: unknown, want: string) =>
    `Cannot send "${event}": its "${name}" setting (send() or Event option) is invalid (got ${describe(got)}): ${want}`,
  extraFromFactory: (name: string) =>
    `ThornModule extra "${name}" was returned by the options factory, where it has no effect: extras shape the module before the factory runs. Pass it to forRootAsync() next to useFactory: ThornModule.forRootAsync({ useFactory, ${name}: ... })`,
  optionBesideFactory: (name: string) =>
    `ThornModule option "${name}" was passed to forRootAsync() next to the factory, where it has no effect: return it from useFactory (or from createThornOptions() of useClass / useExisting)`,
  // names the type only: the value may be a whole user object (hashes, tokens)
  badUserId: (got: unknown) =>
    `ThornModule option "getUser" returned ${typeof got === 'number' ? String(got) : `a value of type ${got === null ? 'null' : typeof got}`}, not a user id: return a string or a finite number (e.g. req.user?.id), or null/undefined when there is no user`,
  unknownDispatcher: (got: unknown) =>
    `ThornModule option "dispatcher" is invalid (got ${describe(got)}): use 'direct', 'bull', 'bullmq', 'disabled' or a class implementing Dispatcher`,
  notInitialised: (event: string) =>
    `Cannot send "${event}": no ThornModule is running. Import ThornModule.forRoot() and send after the app has initialised (app.init() / listen())`,
  noDataSource: (name: string) =>
    `ThornModule needs a TypeORM DataSource${name === 'default' ? '' : ` named "${name}"`} for stored subscriptions: import TypeOrmModule.forRoot(...), or pass subscriberEntity: false to use static subscribers only`,
  entityNotRegistered: (entity: string) =>
    `The TypeORM DataSource does not know the "${entity}" entity: add it to "entities" or set autoLoadEntities: true`,
  noSender: (model: string, event: string, senderField: string) =>
    `${model}: no sender at senderField "${senderField}" for "${event}" (a null relation or value, or a related row without its primary key): such events go only to subscriptions owned by nobody, never to every user's. Logged once per model`,
  subscriptionCacheOff: (table: string, reason: string) =>
    `Subscription cache off: could not create the version triggers of "${table}" (${reason}); every event queries the table. Run the CreateThornSubscriberVersion1764160000000 migration (or create them as it does), or set subscriptionCacheTtl: 0 to silence this`,
  unsignedStatic: () =>
    'Static subscribers without hmacSecret will be sent unsigned: set hmacSecret on them or the defaultHmacSecret option',
  payloadTooLarge: (event: string, size: number, max: number) =>
    `Cannot send "${event}": the encoded body is ${size} bytes, over maxPayloadSize (${max}); send less data or raise the option`,
  payloadTooLargeFor: (event: string, contentType: string, size: number, max: number) =>
    `Cannot send "${event}" as ${contentType}: the encoded body is ${size} bytes, over maxPayloadSize (${max}); send less data, raise the option or use another content type for this subscription`,
  malformedName: (event: string) =>
    `Cannot send "${event}": the event name is not well-formed Unicode (it holds a lone surrogate), so no Hook-Event header can carry it`,
  malformedSubscriptionId: () =>
    'Cannot send to this subscriber: its id is not well-formed Unicode (it holds a lone surrogate), so no Hook-Subscription header can carry it',
  subscriptionVanished: (id: string) =>
    `Subscription ${id} no longer exists (deleted since the delivery was prepared): the delivery is not sent`,
  subscriptionDisabled: (id: string, reason: string) =>
    `Subscription ${id} disabled (${reason}). Re-enable it with PATCH {"active": true} once the receiver works.`,
  codecFailed: (contentType: string, why: string) => `The codec for "${contentType}" failed: ${why}`,
  noCodec: (contentType: string) =>
    `No codec for content type "${contentType}": add it to the "codecs" option`,
  bullNoConnection: (why: string) =>
    `dispatcher: 'bull' needs a Redis connection (${why}): set the "bull" option to a Redis URL or Bull queue options, or import BullModule.forRoot(...) from @nestjs/bull`,
  queueCallbacks: (dispatcher: string, event: string) =>
    `Cannot send "${event}" with onSuccess/onError/onTimeout through the ${dispatcher} dispatcher: functions can't cross the queue. Drop the callbacks, or send this event with dispatcher: 'direct' (Event option)`,
  queueValidators: (dispatcher: string, event: string) =>
    `Cannot send "${event}" with its own recipientValidators through the ${dispatcher} dispatcher: workers check every URL with the module's recipientValidators. Set them on ThornModule, or send this event with dispatcher: 'direct'`,
  ledgerRefuses: (event: string, what: string) =>
    `Cannot record "${event}" in the delivery ledger with ${what}: they exist only in this process, and a recorded event must be deliverable by any process, after any restart. Use the module's options instead, or give this Event its own dispatcher: 'direct' (it then bypasses the ledger, as in 0.1)`,
  ledgerForeignManager: (event: string) =>
    `Cannot record "${event}": the manager given to send() belongs to another DataSource than the one ThornModule's ledger writes to`,
  ledgerNeedsDataSource: (name: string) =>
    `ledger is on, but there is no TypeORM DataSource "${name}": the ledger records events in the app's database (register TypeOrmModule.forRoot(), or turn the ledger off)`,
  ledgerDispatcher: () =>
    `ledger is on, but the dispatcher is a custom class: the ledger relays through the 'direct', 'bull' and 'bullmq' dispatchers. Use one of those, or turn the ledger off`,
  ledgerTables: (cause: string) =>
    `ledger is on, but its tables are missing (${cause}): run the CreateThornLedger1764180000000 migration, or add THORN_LEDGER_ENTITIES to the DataSource's entities (with synchronize)`,
  ledgerLease: (lease: number, attempt: number) =>
    `ledger.lease (${lease} ms) must be longer than one attempt (${attempt} ms: timeout, times maxRedirects + 1 when allowRedirects is on) plus 1000 ms: a delivery's claim must outlast its attempt`,
  enqueueTimeout: (events: string, ms: number, state: string) =>
    `Cannot queue ${events}: Redis did not accept the job within ${ms} ms (enqueueTimeout): ${state}. Check that Redis is reachable, or raise enqueueTimeout`,
  enqueueFailed: (events: string, detail: string) =>
    `Cannot queue ${events}: the add to Redis failed: ${detail}`,
  queueClosed: (dispatcher: string, events: string) =>
    `Cannot queue ${events}: the ${dispatcher} dispatcher is shut down (the app is closing)`,
  queueDropped: (count: number, names: string) =>
    `${count} event(s) dropped at shutdown, never accepted by Redis: ${names}`,
  bullMissing: (cause: string) =>
    `dispatcher: 'bull' needs the optional package "bull" (and "@nestjs/bull" to reuse BullModule.forRoot): npm install bull @nestjs/bull (${cause})`,
  bullmqNoConnection: (why: string) =>
    `dispatcher: 'bullmq' needs a Redis connection (${why}): set the "bullmq" option to a Redis URL or BullMQ queue options, or import BullModule.forRoot(...) from @nestjs/bullmq`,
  bullmqMissing: (cause: string) =>
    `dispatcher: 'bullmq' needs the optional packages "bullmq" and "ioredis" (and "@nestjs/bullmq" to reuse BullModule.forRoot): npm install bullmq ioredis @nestjs/bullmq (${cause})`,
};

function describe(v: unknown): string {
  if (typeof v === 'function') return `function ${v.name || '(anonymous)'}`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
