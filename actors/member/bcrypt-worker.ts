/**
 * The password pool's thread (see password-pool.ts): bcrypt hashing and checking, which take
 * tens of milliseconds each at etcd's default cost, away from the member's event loop.
 */
import { hashSync, verifySync } from '@node-rs/bcrypt';

/** A bcrypt hash of `password` at `cost`, in Go's $2a$ form as etcd writes it. */
export function hash(task: { password: string; cost: number }): string {
  return hashSync(task.password, { cost: task.cost, version: '2a' });
}

/** Whether `password` matches `hash`. */
export function verify(task: { password: string; hash: string }): boolean {
  try {
    return verifySync(task.password, task.hash);
  } catch {
    return false;
  }
}
