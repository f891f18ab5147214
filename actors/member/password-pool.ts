/**
 * Hashes and checks passwords with bcrypt in a Piscina pool, off the event loop: a proposing
 * member hashes a new password before it enters the log (as etcd 3.5 does, so the log never holds
 * it), and Authenticate compares against the stored hash. The pool starts on first use, or
 * once the member serves when auth is already enabled, so a member that never sees auth never
 * starts its threads.
 *
 * It has a thread per core, as etcd checks passwords on all of them. Once started, one thread
 * stays: starting a thread and loading bcrypt into it costs about as much CPU as one check at
 * cost 10 (60-95 ms measured), which a member seeing an Authenticate now and then would otherwise
 * pay on top of nearly every one. The others end after bcryptThreadIdleMs without work.
 *
 * Checks start in the order they were asked for. Piscina's default sends a waiting task that finds
 * no free thread to the back of its queue, so under steady load some checks went round the queue
 * again and again: 3-4.5 s waits behind 0.3 s checks on a member serving five clients, the
 * Authenticate tail of 3 members. stricterFIFO puts such a task back at the front.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { bcryptThreadIdleMs, bcryptThreadsMax } from '../../src/lib/limits.js';

const workerUrl = new URL('./bcrypt-worker.js', import.meta.url).href;

/** The pool's size on this machine: a thread per core, within bcryptThreadsMax. */
export function passwordThreadsFor(cores: number): number {
  return Math.max(1, Math.min(cores, bcryptThreadsMax));
}

/** The pool's size and how long its extra threads idle before they end. */
export interface PasswordPoolSizing {
  threads: number;
  idleMs: number;
}

export class PasswordPool {
  private pool: Piscina | undefined;

  /** `sizing`: a thread per core and bcryptThreadIdleMs unless given (tests give it). */
  constructor(
    private readonly cost: number,
    private readonly sizing: PasswordPoolSizing = {
      threads: passwordThreadsFor(availableParallelism()),
      idleMs: bcryptThreadIdleMs,
    },
  ) {}

  /** Threads running now (0 before first use). */
  get threads(): number {
    return this.pool?.threads.length ?? 0;
  }

  /** Starts the pool's first thread ahead of the first check. */
  prestart(): void {
    this.started();
  }

  hash(password: string): Promise<string> {
    return this.started().run({ password, cost: this.cost }, { name: 'hash' }) as Promise<string>;
  }

  verify(password: string, hash: string): Promise<boolean> {
    return this.started().run({ password, hash }, { name: 'verify' }) as Promise<boolean>;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.destroy();
  }

  private started(): Piscina {
    this.pool ??= new Piscina({
      filename: workerUrl,
      minThreads: 1,
      maxThreads: this.sizing.threads,
      idleTimeout: this.sizing.idleMs,
      stricterFIFO: true,
      recordTiming: false,
    });
    return this.pool;
  }
}
