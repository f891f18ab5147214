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

// Hashes at cost 4 made by Go's golang.org/x/crypto/bcrypt (etcd's) and by the Rust binding earlier
// tsetcd builds used ("$2y$"): a member keeps checking them after a snapshot from etcd or an upgrade.
// The long password is 260 bytes and not periodic, where OpenBSD's "$2a$" length wrap would differ.
const longPassword = Array.from({ length: 260 }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join('');
const storedHashes = [
  { by: 'Go', password: 'secret', hash: '$2a$04$UkzFjs59444Nf/qcyOYJ5uvns2SbanOnC83svGU5zwTzvyneQg5QS' },
  { by: 'Go', password: longPassword, hash: '$2a$04$sf2h6IDbZMMULPlsaOiw9.k75Nd9pWzLvh/25Rn.13FkDseeGVXzi' },
  { by: 'Rust', password: 'secret', hash: '$2y$04$mIvrEO/u43UoZVoqaHpZMurDnSPLOo4SyVb..zosRPBEt4Q35xQHe' },
  { by: 'Rust', password: longPassword, hash: '$2y$04$ubEjYSq2D3qogJVDciIY4.3jDDT2O.f0lpNDt9BQGGZAF1URdcupe' },
];

test('hashes made by Go (etcd) and by earlier builds are checked as Go checks them', async () => {
  const pool = new PasswordPool(bcryptCostMin, { threads: 1, idleMs: 1_000 });
  try {
    for (const { by, password, hash } of storedHashes) {
      const label = `${by} ${hash.slice(0, 4)} hash of a ${password.length}-byte password`;
      assert.equal(await pool.verify(password, hash), true, label);
      assert.equal(await pool.verify(password.slice(0, 70), hash), password.length <= 70, `${label}, cut to 70 bytes`);
      assert.equal(await pool.verify(`${password}x`, hash), password.length >= 72, `${label}, one byte more`);
    }
    assert.equal(await pool.verify('secret', 'not a bcrypt hash'), false);
  } finally {
    await pool.close();
  }
});

test('a new hash has etcd\'s "$2a$" form and reads the first 72 bytes of the password, as Go does', async () => {
  const pool = new PasswordPool(bcryptCostMin, { threads: 1, idleMs: 1_000 });
  try {
    const hash = await pool.hash(longPassword);
    assert.match(hash, /^\$2a\$04\$[./A-Za-z0-9]{53}$/);
    assert.equal(await pool.verify(longPassword.slice(0, 72), hash), true, 'the first 72 bytes decide');
    assert.equal(await pool.verify(longPassword.slice(0, 71), hash), false, 'one byte fewer is another password');
  } finally {
    await pool.close();
  }
});
