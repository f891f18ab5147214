/**
 * etcd's pkg/wait: requests that wait on an ID until the member answers it. A proposal waits on
 * its proposal ID, a conf change on its ConfChange ID; whoever applies the entry takes the waiter
 * out and answers it. Each waiter is answered at most once: taking it removes it, and a second
 * answer to the same waiter throws. (src/concurrency/wait.ts is another thing: the waiting half
 * of the lock and election recipes, on top of watches.)
 */
import { assert } from '../lib/assert.js';

/** The two ways a waiting request learns its outcome. */
export interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

/** One registered waiter; it refuses a second answer, which would mean two entries claimed one ID. */
class OnceWaiter<Id, T> implements Waiter<T> {
  private answered = false;

  constructor(
    private readonly id: Id,
    private readonly onResolve: (value: T) => void,
    private readonly onReject: (error: Error) => void,
  ) {}

  resolve(value: T): void {
    this.answer();
    this.onResolve(value);
  }

  reject(error: Error): void {
    this.answer();
    this.onReject(error);
  }

  private answer(): void {
    assert(!this.answered, () => `waiter ${String(this.id)} answered once, then answered again`);
    this.answered = true;
  }
}

export class Waiters<Id, T> {
  private readonly waiting = new Map<Id, Waiter<T>>();

  /** How many waiters are registered and not yet answered. */
  get size(): number {
    return this.waiting.size;
  }

  /** Registers the waiter of `id`, answered through `resolve` or `reject` at most once. */
  register(id: Id, resolve: (value: T) => void, reject: (error: Error) => void): void {
    assert(!this.waiting.has(id), () => `a waiter for ${String(id)} is registered while one still waits`);
    this.waiting.set(id, new OnceWaiter(id, resolve, reject));
  }

  has(id: Id): boolean {
    return this.waiting.has(id);
  }

  /** Removes and returns the waiter of `id`; undefined when none waits (answered, failed, or never ours). */
  take(id: Id): Waiter<T> | undefined {
    const waiter = this.waiting.get(id);
    if (waiter !== undefined) this.waiting.delete(id);
    return waiter;
  }

  /** Fails every waiter with `error` (a new one for each, from `error`) and forgets them all. */
  failAll(error: () => Error): void {
    const waiters = [...this.waiting.values()];
    this.waiting.clear();
    for (const waiter of waiters) waiter.reject(error());
  }
}
