/** Every I/O call has a deadline: a stalled socket must not stop a loop for good. */
import { Sub0Error } from '../fabric/errors.js';

/**
 * Settles as `p` does, or rejects with Sub0Error 'timeout' naming `what` after `ms`. The
 * operation itself goes on (nothing here can cancel it): callers treat a late result as lost.
 */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Sub0Error('timeout', `${what}: no answer in ${ms} ms`)), ms);
  });
  p.catch(() => undefined); // a late failure is nobody's to handle
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
