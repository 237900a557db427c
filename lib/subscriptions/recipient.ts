// defined in delivery/ (the bottom layer, which prepares one request per recipient); exported from here as before
export type { Recipient } from '../delivery/request.js';

/** A subscriber given as an object (static or callback subscribers). */
export interface SubscriberObject {
  url: string;
  contentType?: string;
  hmacSecret?: string;
  hmacDigest?: string;
  id?: string;
}

/** What callback subscribers receive as their second argument. */
export interface SubscriberContext {
  sender?: unknown;
  [key: string]: unknown;
}

/** A callback subscriber: returns any subscriber form (or a promise / iterable of them). */
export type SubscriberCallback = (event: string, context: SubscriberContext) => SubscriberSpec;

/** Every form a static or per-event subscriber may take; falsy items are skipped. */
export type SubscriberSpec =
  | string
  | SubscriberObject
  | SubscriberCallback
  | null
  | undefined
  | false
  | PromiseLike<unknown>
  | Iterable<SubscriberSpec>
  | AsyncIterable<SubscriberSpec>;

/** `subscribers` option: event pattern → subscriber(s). */
export type SubscribersOption = Record<string, SubscriberSpec>;
