/**
 * The password pool's thread (see password-pool.ts): bcrypt hashing and checking, which take
 * tens of milliseconds each at etcd's default cost, away from the member's event loop.
 */
import { hashSync, verifySync } from '@node-rs/bcrypt';

/** A bcrypt hash of `password` at `cost` ($2b$, which Go's bcrypt reads as well as its own $2a$). */
export function hash(task: { password: string; cost: number }): string {
  return hashSync(task.password, task.cost);
}

/** Whether `password` matches `hash`. */
export function verify(task: { password: string; hash: string }): boolean {
  try {
    return verifySync(task.password, task.hash);
  } catch {
    return false;
  }
}
