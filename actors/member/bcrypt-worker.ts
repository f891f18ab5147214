/**
 * The password pool's thread (see password-pool.ts): bcrypt hashing and checking, which take
 * tens of milliseconds each at etcd's default cost, away from the member's event loop.
 *
 * The bcrypt package's C code (OpenBSD's) checks a password at cost 10 in about 56 ms of CPU on
 * this machine's cores, against 63-68 ms for Go's (etcd's) and 66-75 ms for the Rust binding used
 * before; bcrypt is most of an Authenticate's CPU.
 *
 * Versions: OpenBSD's code computes "$2b$" as Go computes every version (a password's first 72
 * bytes), while its "$2a$" keeps the old length wrap for passwords of 255 bytes and more, and it
 * refuses "$2y$". So both directions go through "$2b$": hashes are written with etcd's "$2a$"
 * prefix, and a stored "$2a$" or "$2y$" hash (etcd's, or an earlier tsetcd's) is checked as "$2b$".
 */
import bcrypt from 'bcrypt';
import { nameThread } from '../shared/thread-name.js';

nameThread('tsetcd-bcrypt');

const computedPrefix = '$2b$';
const writtenPrefix = '$2a$';
const checkedAsComputed = new Set(['$2a$', '$2y$']);

/** A bcrypt hash of `password` at `cost`, in etcd's "$2a$" format. */
export function hash(task: { password: string; cost: number }): string {
  const computed = bcrypt.hashSync(task.password, bcrypt.genSaltSync(task.cost, 'b'));
  if (!computed.startsWith(computedPrefix))
    throw new Error(`bcrypt made ${computed.slice(0, 4)}, expected ${computedPrefix}`);
  return writtenPrefix + computed.slice(computedPrefix.length);
}

/** Whether `password` matches `hash` (any of the "$2a$", "$2b$" and "$2y$" versions). */
export function verify(task: { password: string; hash: string }): boolean {
  const prefix = task.hash.slice(0, computedPrefix.length);
  const checked = checkedAsComputed.has(prefix) ? computedPrefix + task.hash.slice(prefix.length) : task.hash;
  try {
    return bcrypt.compareSync(task.password, checked);
  } catch {
    return false;
  }
}
