/** Texts of the health indicator. */
export const healthMessages = {
  terminusMissing: (cause: string) =>
    `ThornHealthIndicator needs the optional package "@nestjs/terminus": npm install @nestjs/terminus (${cause})`,
  timeout: (ms: number) => `no answer within ${ms} ms`,
  noStore: () => 'not used: no stored subscriptions (subscriberEntity: false)',
  noQueue: () => "not used: the dispatcher has no queue (only dispatcher: 'bull' and 'bullmq' have one)",
  noLedger: () => 'not used: the delivery ledger is off (option ledger)',
  ledgerBehind: (age: number, max: number) =>
    `the oldest pending delivery has been due for ${age} ms, more than maxLedgerAge (${max} ms)`,
  tooManyWaiting: (waiting: number, max: number) =>
    `${waiting} jobs waiting, more than maxQueueWaiting (${max})`,
};
