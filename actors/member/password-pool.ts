/**
 * Hashes and checks passwords with bcrypt in a Piscina pool, off the event loop: a proposing
 * member hashes a new password before it enters the log (as etcd 3.5 does, so the log never holds
 * it), and Authenticate compares against the stored hash. The pool starts on first use, so a
 * member that never sees auth never starts its threads.
 */
import { Piscina } from 'piscina';
import { bcryptThreadsMax } from '../../src/lib/limits.js';

const workerUrl = new URL('./bcrypt-worker.js', import.meta.url).href;
/** An idle thread ends after this long; the next password starts one again. */
const idleTimeoutMs = 30_000;

export class PasswordPool {
  private pool: Piscina | undefined;

  constructor(private readonly cost: number) {}

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
      minThreads: 0,
      maxThreads: bcryptThreadsMax,
      idleTimeout: idleTimeoutMs,
    });
    return this.pool;
  }
}
