/** The password pool: a thread per core within the bound, one thread kept once started, checks in order. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { availableParallelism } from 'node:os';
import { PasswordPool, passwordThreadsFor } from '../../actors/member/password-pool.js';
import { bcryptCostMin, bcryptThreadsMax } from '../../src/lib/limits.js';

test('the pool has a thread per core, at least one and at most the bound', () => {
  assert.equal(passwordThreadsFor(0), 1);
  assert.equal(passwordThreadsFor(1), 1);
  assert.equal(passwordThreadsFor(2), 2);
  assert.equal(passwordThreadsFor(bcryptThreadsMax * 4), bcryptThreadsMax);
});

test('after a burst the extra threads end, one stays, and it checks the next password', async () => {
  const idleMs = 50;
  const pool = new PasswordPool(bcryptCostMin, { threads: passwordThreadsFor(availableParallelism()), idleMs });
  try {
    assert.equal(pool.threads, 0, 'no thread starts before the first password');
    const hash = await pool.hash('secret');
    const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => pool.verify(i % 2 ? 'secret' : 'wrong', hash)));
    assert.deepEqual(burst, [false, true, false, true, false, true, false, true]);
    // Well past the idle time (bounded): the extra threads have ended, the first has not.
    for (let waitedMs = 0; waitedMs < 40 * idleMs && pool.threads > 1; waitedMs += idleMs) await sleep(idleMs);
    await sleep(4 * idleMs);
    assert.equal(pool.threads, 1, `expected one thread kept after idling, saw ${pool.threads}`);
    assert.equal(await pool.verify('secret', hash), true);
  } finally {
    await pool.close();
  }
});

test('checks that wait for a thread start in the order they were asked for', async () => {
  // One thread, so the order they finish in is the order they started in.
  const pool = new PasswordPool(bcryptCostMin, { threads: 1, idleMs: 1_000 });
  try {
    const hash = await pool.hash('secret');
    const finished: number[] = [];
    const checks = Array.from({ length: 8 }, (_, i) => pool.verify('secret', hash).then(() => finished.push(i)));
    await Promise.all(checks);
    assert.deepEqual(finished, [0, 1, 2, 3, 4, 5, 6, 7]);
  } finally {
    await pool.close();
  }
});
