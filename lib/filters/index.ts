export { Q, isQ, toQ } from './q.js';
export type { QLike } from './q.js';
