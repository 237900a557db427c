import { AxiosTransport, type AxiosInstanceLike, type TransportOption } from './axios.transport.js';
import type { Transport, TransportOptions } from './transport.js';
import { UndiciTransport } from './undici.transport.js';

/** True for something that looks like an axios instance (its defaults and interceptors are used; see AxiosTransport). */
export function isAxiosInstanceLike(value: unknown): value is AxiosInstanceLike {
  return (
    (typeof value === 'function' || (typeof value === 'object' && value !== null)) &&
    typeof (value as { request?: unknown }).request === 'function'
  );
}

/** Error text for an invalid `transport` option. */
export const badTransportMessage = (got: string) =>
  `ThornModule option "transport" is invalid (got ${got}): use 'undici', 'axios' or an axios instance (AxiosInstance)`;

/** Builds the transport named by the `transport` option; axios is imported only when selected. */
export async function createTransport(
  option: TransportOption,
  options: TransportOptions,
): Promise<Transport> {
  if (option === 'undici') return new UndiciTransport(options);
  if (option === 'axios') return AxiosTransport.create(options);
  if (isAxiosInstanceLike(option)) return AxiosTransport.create(options, option);
  throw new Error(badTransportMessage(typeof option === 'string' ? JSON.stringify(option) : typeof option));
}
