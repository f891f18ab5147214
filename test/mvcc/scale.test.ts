/**
 * Scale: a million random keys through the store, and a store reopened from LMDB. Timings are
 * printed, not asserted (the machine is shared); MVCC_SCALE_KEYS changes the key counts.
 */

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PutRequest, RequestOp } from '../../src/api/types.js';
import { Prng } from '../../src/lib/prng.js';
import { MemoryBackend } from '../../src/mvcc/backend.js';
import { KvStore } from '../../src/mvcc/kv-store.js';
import { LmdbBackend } from '../../src/mvcc/lmdb-backend.js';
import { rangeReq } from './helpers.js';

const memoryKeys = Number(process.env.MVCC_SCALE_KEYS ?? 1_000_000);
const lmdbKeys = Number(process.env.MVCC_SCALE_KEYS ?? 250_000);
/** Puts per txn when loading LMDB; etcd's default txn op limit is 128, the store itself has none. */
const putsPerTxn = 100;

function randomKeys(count: number, seed: number): Uint8Array[] {
  const prng = new Prng(seed);
  return Array.from({ length: count }, () =>
    new TextEncoder().encode(`${prng.nextUint32().toString(16).padStart(8, '0')}/${prng.nextUint32().toString(36)}`),
  );
}

function putOf(key: Uint8Array, value: Uint8Array): PutRequest {
  return { key, value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false };
}

function elapsedMs(since: number): string {
  return (performance.now() - since).toFixed(0);
}

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('scale', () => {
  it(`inserts ${memoryKeys} random keys, one put per entry, in seconds`, () => {
    const keys = randomKeys(memoryKeys, 11);
    const value = new Uint8Array(32).fill(7);
    const store = KvStore.open(new MemoryBackend());
    const started = performance.now();
    for (let i = 0; i < keys.length; i++) store.apply(i + 1, 1, { type: 'put', put: putOf(keys[i]!, value) });
    console.log(`# mvcc scale: ${memoryKeys} puts on MemoryBackend took ${elapsedMs(started)} ms`);
    const counted = performance.now();
    const count = store.range(rangeReq('\0', '\0', { countOnly: true })).count;
    // The first range puts the new keys in order (sorted, then into the B+tree), so it pays that.
    console.log(`# mvcc scale: the first full range (ordering ${count} keys) took ${elapsedMs(counted)} ms`);
    assert.equal(count, new Set(keys.map((k) => Buffer.from(k).toString('latin1'))).size);
  });

  it(`reopens ${lmdbKeys} keys from LMDB with identical ranges`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mvcc-scale-'));
    tempDirs.push(dir);
    const keys = randomKeys(lmdbKeys, 12);
    const backend = LmdbBackend.open(join(dir, 'db'));
    const store = KvStore.open(backend);
    const started = performance.now();
    for (let i = 0, index = 1; i < keys.length; i += putsPerTxn, index++) {
      const success = keys.slice(i, i + putsPerTxn).map((key): RequestOp => ({ type: 'put', put: putOf(key, key) }));
      store.apply(index, 1, { type: 'txn', txn: { compare: [], success, failure: [] } });
    }
    await backend.flush();
    console.log(`# mvcc scale: ${lmdbKeys} puts in txns of ${putsPerTxn} on LMDB took ${elapsedMs(started)} ms`);
    const probe = rangeReq('8', '9', { limit: 50 });
    const before = store.range(probe);
    const hash = store.hashKV(0);
    await backend.close();

    const reopenedAt = performance.now();
    const reopenedBackend = LmdbBackend.open(join(dir, 'db'));
    const reopened = KvStore.open(reopenedBackend);
    console.log(`# mvcc scale: restoring ${lmdbKeys} keys from LMDB took ${elapsedMs(reopenedAt)} ms`);
    assert.equal(reopened.currentRevision, store.currentRevision);
    assert.equal(reopened.consistentIndex, store.consistentIndex);
    assert.deepEqual(reopened.range(probe), before);
    assert.deepEqual(reopened.hashKV(0), hash);
    await reopenedBackend.close();
  });
});
