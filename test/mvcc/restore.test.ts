import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBackend } from '../../src/mvcc/backend.js';
import { KvStore, type MvccEvent } from '../../src/mvcc/kv-store.js';
import { LmdbBackend } from '../../src/mvcc/lmdb-backend.js';
import { Harness, plain, putReq, rangeReq, removeTempDbs, tempDbPath as tempDbPathWith, text } from './helpers.js';

after(removeTempDbs);

const tempDbPath = (): string => tempDbPathWith('mvcc-restore-');

describe('restore', () => {
  it('a store reopened from LMDB answers reads, revisions and indexes as before', async () => {
    const path = tempDbPath();
    const h = new Harness(LmdbBackend.open(path));
    h.put('a', '1');
    h.put('b', '2');
    h.del('a');
    h.put('a', '3');
    h.put('c', '4');
    h.compact(3);
    h.del('zz'); // deletes nothing but still consumes its entry
    const snapshot = (store: KvStore): unknown[] =>
      [0, 3, 4, 5, 6].map((revision) => store.range(rangeReq('\0', '\0', { revision })).kvs.map(plain));
    const before = snapshot(h.store);
    await h.backend.close();

    const backend = LmdbBackend.open(path);
    const reopened = KvStore.open(backend);
    assert.deepEqual(snapshot(reopened), before);
    assert.equal(reopened.currentRevision, 6);
    assert.equal(reopened.compactRevision, 3);
    assert.equal(reopened.consistentIndex, 7);
    assert.equal(reopened.consistentTerm, 1);
    assert.throws(() => reopened.range(rangeReq('a', '', { revision: 2 })), /compacted/);
    await backend.close();
  });

  it('a key whose oldest surviving revision is mid-life keeps its create revision and version', () => {
    const backend = new MemoryBackend();
    const h = new Harness(backend);
    h.put('k', '1');
    h.put('k', '2');
    h.put('k', '3');
    h.compact(3);
    const reopened = KvStore.open(backend);
    assert.deepEqual(plain(reopened.range(rangeReq('k')).kvs[0]), {
      key: 'k',
      value: '3',
      create: 2,
      mod: 4,
      version: 3,
      lease: 0n,
    });
    assert.deepEqual(plain(reopened.range(rangeReq('k', '', { revision: 3 })).kvs[0]), {
      key: 'k',
      value: '2',
      create: 2,
      mod: 3,
      version: 2,
      lease: 0n,
    });
  });

  it('a compaction recorded as scheduled but not finished is completed on open, as etcd resumes it', () => {
    const backend = new MemoryBackend();
    const h = new Harness(backend);
    h.put('k', '1');
    h.put('k', '2');
    h.put('k', '3');
    backend.write({ puts: [], deletes: [], meta: { scheduledCompactRevision: 3 } });
    const reopened = KvStore.open(backend);
    assert.equal(reopened.compactRevision, 3);
    assert.equal(backend.get({ main: 2, sub: 0 }), undefined);
    assert.equal(backend.readMeta().finishedCompactRevision, 3);
  });

  it('a store opened before its last writes were committed still sees them', async () => {
    const path = tempDbPath();
    const backend = LmdbBackend.open(path);
    const h = new Harness(backend);
    h.put('a', '1');
    h.put('b', '2');
    const sameTurn = KvStore.open(backend);
    assert.deepEqual(
      sameTurn.range(rangeReq('a', '\0')).kvs.map((kv) => text(kv.key)),
      ['a', 'b'],
    );
    assert.equal(sameTurn.consistentIndex, 2);
    await backend.close();
  });
});

describe('change events', () => {
  it('writes report put and delete events with the revision they made', () => {
    const seen: [string, string, number][] = [];
    const h = new Harness(new MemoryBackend(), {
      onChanges: (events: MvccEvent[], revision) =>
        events.forEach((e) => seen.push([e.type, text(e.kv.key), revision])),
    });
    h.put('a', '1');
    h.del('a');
    const outcome = h.store.applyWithEvents(h.nextIndex++, 1, { type: 'put', put: putReq('b', '2') });
    assert.equal(outcome.revision, 4);
    assert.deepEqual(
      outcome.events.map((e) => [e.type, text(e.kv.key), e.kv.modRevision]),
      [['put', 'b', 4]],
    );
    assert.deepEqual(seen, [
      ['put', 'a', 2],
      ['delete', 'a', 3],
      ['put', 'b', 4],
    ]);
  });

  it('scanEvents replays stored history from a revision, deletes carrying their revision', () => {
    const h = new Harness();
    h.put('a', '1');
    h.put('b', '2');
    h.del('a');
    const events: string[] = [];
    h.store.scanEvents(3, (event, rev) => {
      events.push(`${event.type}:${text(event.kv.key)}@${event.kv.modRevision}/${rev.main}`);
    });
    assert.deepEqual(events, ['put:b@3/3', 'delete:a@4/4']);
  });
});
