/** Details of a blocked recipient, for logs and API answers. */
export interface SecurityErrorDetails {
  /** The recipient, reduced to `scheme://host[:port]` so credentials, paths and queries never reach logs. */
  url?: string;
  /** The IP address that was refused, when an address rule blocked it. */
  address?: string;
  /** The rule that blocked it, e.g. `loopback 127.0.0.0/8` or `port 8080 not in 80, 443`. */
  rule?: string;
}

/** Thrown by a recipient validator (and passed to undici by the safe connector) when a recipient is blocked. */
export class SecurityError extends Error {
  /** Where the request would have gone (`scheme://host[:port]`). */
  readonly url?: string;
  /** The refused IP address, if an address rule blocked it. */
  readonly address?: string;
  /** The rule that blocked it. */
  readonly rule?: string;

  constructor(message: string, details: SecurityErrorDetails = {}) {
    super(message);
    this.name = 'SecurityError';
    this.url = details.url;
    this.address = details.address;
    this.rule = details.rule;
  }
}

/** True for a `SecurityError`, also one from another copy of this package (checked by name). */
export function isSecurityError(err: unknown): err is SecurityError {
  return err instanceof SecurityError || (err instanceof Error && err.name === 'SecurityError');
}
