/** Thrown by `send()` when the payload cannot be encoded; no request has been made. */
export class PayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PayloadError';
  }
}
