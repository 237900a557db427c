/** Answers of the `/hooks` REST API: each names the field (or `body`) it is about and says what to send. */
export const hooksMessages = {
  unauthenticated: () => 'authentication required: this route needs a signed-in user',
  notFound: () => 'subscription not found',
  deliveryNotFound: () => 'delivery not found',
  ledgerOff: () =>
    'delivery log not available: the delivery ledger is off (the app sets the ThornModule option ledger to turn it on)',
  quota: (max: number) =>
    `subscription limit reached: a user may hold ${max} subscriptions; delete some first`,
  notJson: () => 'body must be JSON: send Content-Type: application/json',
  missingBody: () => 'body is required: send a JSON object with the subscription fields',
  notObject: (kind: string) => `body must be a JSON object, not ${kind}`,
  malformedJson: (detail: string) => `body is not valid JSON (${detail})`,
  tooLarge: (limit: number) => `body is too large: the limit is ${limit} bytes`,
  charset: (charset: string) => `body charset "${charset}" is not supported: use UTF-8`,
  encoding: () => 'body content encoding is not supported: send it uncompressed',
  unreadable: (detail: string) => `body could not be read (${detail})`,
  required: '$property is required',
  string: '$property must be a string',
  boolean: '$property must be true or false',
  blank: '$property must not be blank',
  maxLength: '$property must be at most $constraint1 characters long',
  minLength: '$property must be at least $constraint1 characters long',
  digest: (choices: readonly string[]) =>
    `hmac_digest must be one of ${choices.join(', ')} (case-insensitive)`,
  contentType: (choices: string[]) => `content_type must be one of ${choices.join(', ')}`,
  eventPattern: (why: string) => (/^(must|may) /.test(why) ? `event ${why}` : `event is invalid: ${why}`),
  eventChoice: (choices: string[]) => `event must be one of ${choices.join(', ')}`,
  urlInvalid: () => 'url must be an absolute URL such as https://example.com/hooks',
  urlBlocked: (why: string) => `url is not allowed: ${why}`,
  urlUnresolvable: (host: string, code: string) => `url host "${host}" could not be resolved (${code})`,
};
