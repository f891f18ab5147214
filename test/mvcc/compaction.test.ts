import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBackend } from '../../src/mvcc/backend.js';
import { Harness, rangeReq, text } from './helpers.js';

const compactedMessage = { message: 'etcdserver: mvcc: required revision has been compacted' };
const futureMessage = { message: 'etcdserver: mvcc: required revision is a future revision' };

/** Revisions: a@2, b@3, a@4, b deleted @5, c@6. */
function history(h = new Harness()): Harness {
  h.put('a', '1');
  h.put('b', '2');
  h.put('a', '3');
  h.del('b');
  h.put('c', '4');
  return h;
}

function storedRevisions(backend: MemoryBackend): string[] {
  const revs: string[] = [];
  backend.scan({ main: 0, sub: 0 }, (rev, stored) => {
    revs.push(`${rev.main}${stored.tombstone ? 't' : ''}:${text(stored.kv.key)}`);
  });
  return revs;
}

describe('compaction', () => {
  it('refuses a revision at or below the last compaction, and a future one', () => {
    const h = history();
    assert.throws(() => h.compact(7), futureMessage);
    h.compact(4);
    assert.throws(() => h.compact(4), compactedMessage);
    assert.throws(() => h.compact(3), compactedMessage);
    assert.equal(h.store.compactRevision, 4);
    assert.equal(h.store.consistentIndex, 9, 'refused compactions still consume their entries');
  });

  it('reads below the compaction revision fail, at and above it succeed', () => {
    const h = history();
    h.compact(4);
    assert.throws(() => h.store.range(rangeReq('a', '', { revision: 3 })), compactedMessage);
    assert.equal(text(h.get('a', 4)!.value), '3');
    assert.equal(text(h.get('b', 4)!.value), '2');
    assert.equal(h.get('b', 5), undefined);
    assert.deepEqual(h.keys('\0', '\0'), ['a', 'c']);
  });

  it('keeps the newest revision of each key at or below it unless that is a tombstone', () => {
    const backend = new MemoryBackend();
    const h = history(new Harness(backend));
    h.compact(5);
    // a@2 is superseded by a@4; b's life ended with its tombstone at 5, so all of b goes.
    assert.deepEqual(storedRevisions(backend), ['4:a', '6:c']);
    assert.equal(h.store.indexedKeys, 2);
  });

  it('keeps a tombstone newer than the compaction revision and the value it deleted', () => {
    const backend = new MemoryBackend();
    const h = history(new Harness(backend));
    h.compact(4);
    assert.deepEqual(storedRevisions(backend), ['3:b', '4:a', '5t:b', '6:c']);
    assert.equal(text(h.get('b', 4)!.value), '2');
  });

  it('a key recreated after a compacted delete starts a fresh life', () => {
    const h = history();
    h.compact(5);
    h.put('b', 'again');
    const b = h.get('b')!;
    assert.equal(b.version, 1);
    assert.equal(b.createRevision, 7);
  });

  it('compacting at the current revision keeps every live key readable', () => {
    const h = history();
    h.compact(6);
    assert.deepEqual(h.keys('\0', '\0'), ['a', 'c']);
    assert.equal(h.store.range(rangeReq('\0', '\0', { revision: 6 })).count, 2);
  });
});

describe('hashKV', () => {
  // Hashes taken from etcd 3.4.23 after the same etcdctl commands (put a 1; put b 2; put a 3;
  // del b; put c 4), HashKV's algorithm being unchanged in 3.5.
  it('matches etcd before any compaction, at the current and an older revision', () => {
    const h = history();
    assert.deepEqual(h.store.hashKV(0), { hash: 2750537463, revision: 6, compactRevision: -1 });
    assert.equal(h.store.hashKV(4).hash, 2069675932);
  });

  it('matches etcd after compactions', () => {
    const h = history();
    h.compact(4);
    assert.deepEqual(h.store.hashKV(0), { hash: 2450235489, revision: 6, compactRevision: 4 });
    h.put('b', '5');
    h.del('a');
    h.compact(7);
    assert.deepEqual(h.store.hashKV(0), { hash: 2701200358, revision: 8, compactRevision: 7 });
  });

  it('refuses compacted and future revisions', () => {
    const h = history();
    h.compact(4);
    assert.throws(() => h.store.hashKV(4), compactedMessage);
    assert.throws(() => h.store.hashKV(7), futureMessage);
  });
});

describe('compaction batches (--experimental-compaction-batch-limit)', () => {
  /** A MemoryBackend that remembers the deletes and compaction marks of every batch written. */
  class RecordingBackend extends MemoryBackend {
    readonly batches: { deletes: number; scheduled?: number; finished?: number }[] = [];
    override write(batch: Parameters<MemoryBackend['write']>[0]): void {
      if (batch.deletes.length > 0 || batch.meta.scheduledCompactRevision !== undefined) {
        this.batches.push({
          deletes: batch.deletes.length,
          ...(batch.meta.scheduledCompactRevision === undefined
            ? {}
            : { scheduled: batch.meta.scheduledCompactRevision }),
          ...(batch.meta.finishedCompactRevision === undefined ? {} : { finished: batch.meta.finishedCompactRevision }),
        });
      }
      super.write(batch);
    }
  }

  it('deletes at most the limit per backend batch, marking the first scheduled and the last finished', () => {
    const backend = new RecordingBackend();
    const h = new Harness(backend, { compactionBatchLimit: 3 });
    for (let value = 0; value < 8; value++) h.put('a', String(value));
    h.compact(9);
    assert.deepEqual(backend.batches, [{ deletes: 3, scheduled: 9 }, { deletes: 3 }, { deletes: 1, finished: 9 }]);
    assert.deepEqual(storedRevisions(backend), ['9:a']);
  });

  it('the default limit of 1000 writes a small compaction in one batch', () => {
    const backend = new RecordingBackend();
    const h = new Harness(backend);
    for (let value = 0; value < 8; value++) h.put('a', String(value));
    h.compact(9);
    assert.deepEqual(backend.batches, [{ deletes: 7, scheduled: 9, finished: 9 }]);
  });
});
