/** Injection token of the HTTP `Transport` used for deliveries. */
export const THORN_TRANSPORT = Symbol('thorn:transport');
