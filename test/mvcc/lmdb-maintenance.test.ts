/**
 * The LMDB backend's maintenance: the alarm area survives a reopen (and so a restart, and a
 * snapshot, which ships the file), dbSizeInUse falls below the file's size once data is deleted,
 * defragmentation gives the free pages back without losing a record (nor the alarm and auth
 * records), and Hash is a function of the stored records alone.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LmdbBackend } from '../../src/mvcc/lmdb-backend.js';
import type { AlarmMember } from '../../src/alarm/alarm-store.js';
import type { StoredKeyValue } from '../../src/mvcc/backend.js';
import { bytes, removeTempDbs, tempDbPath } from './helpers.js';

after(removeTempDbs);

const recordCount = 2_000;

function stored(main: number): StoredKeyValue {
  return {
    kv: {
      key: bytes(`key-${main}`),
      value: bytes(`value-${main}-${'x'.repeat(200)}`),
      createRevision: main,
      modRevision: main,
      version: 1,
      lease: 0n,
    },
    tombstone: false,
  };
}

function alarmsOf(backend: LmdbBackend): AlarmMember[] {
  const found: AlarmMember[] = [];
  backend.scanAlarms((member) => found.push(member));
  return found.sort((a, b) => a.alarm - b.alarm);
}

function writeRecords(backend: LmdbBackend, from: number, to: number): void {
  for (let main = from; main <= to; main++)
    backend.write({
      puts: [{ rev: { main, sub: 0 }, stored: stored(main) }],
      deletes: [],
      meta: { consistentIndex: main },
    });
}

describe('the LMDB backend maintenance', () => {
  it('keeps raised alarms across a reopen and forgets disarmed ones', async () => {
    const path = tempDbPath('lmdb-alarm-');
    let backend = LmdbBackend.open(path);
    const noSpace = { memberId: 0xbdae9bbc11dd390dn, alarm: 1 };
    const corrupt = { memberId: 0n, alarm: 2 };
    backend.write({ puts: [], deletes: [], meta: {}, alarms: { puts: [noSpace, corrupt], deletes: [] } });
    assert.deepEqual(alarmsOf(backend), [noSpace, corrupt], 'seen before the commit');
    await backend.close();
    backend = LmdbBackend.open(path);
    assert.deepEqual(alarmsOf(backend), [noSpace, corrupt]);
    backend.write({ puts: [], deletes: [], meta: {}, alarms: { puts: [], deletes: [noSpace] } });
    await backend.close();
    backend = LmdbBackend.open(path);
    assert.deepEqual(alarmsOf(backend), [corrupt]);
    await backend.close();
  });

  it('reports less in use than the file once records are deleted, and defragmenting gives the space back', async () => {
    const path = tempDbPath('lmdb-defrag-');
    const backend = LmdbBackend.open(path, { batchIntervalMs: 0 });
    writeRecords(backend, 1, recordCount);
    await backend.flush();
    const deletes = Array.from({ length: recordCount - 10 }, (_, i) => ({ main: i + 1, sub: 0 }));
    backend.write({ puts: [], deletes, meta: { consistentIndex: recordCount + 1 } });
    await backend.flush();
    const fileBytes = backend.sizeBytes();
    const inUseBytes = backend.sizeInUseBytes();
    assert.ok(inUseBytes < fileBytes / 4, `in use ${inUseBytes} of ${fileBytes} bytes after deleting almost all`);
    await backend.defragment(`${path}-defrag`);
    const defragmentedBytes = backend.sizeBytes();
    assert.ok(defragmentedBytes < fileBytes / 4, `defragmented to ${defragmentedBytes} from ${fileBytes} bytes`);
    const left: number[] = [];
    backend.scan({ main: 0, sub: 0 }, (rev) => void left.push(rev.main));
    assert.deepEqual(
      left,
      Array.from({ length: 10 }, (_, i) => recordCount - 9 + i),
    );
    assert.equal(backend.readMeta().consistentIndex, recordCount + 1);
    writeRecords(backend, recordCount + 2, recordCount + 2);
    await backend.flush();
    const after: number[] = [];
    backend.scan({ main: recordCount + 1, sub: 0 }, (rev) => void after.push(rev.main));
    assert.deepEqual(after, [recordCount + 2], 'a write after the defragmentation lands in the new file');
    await backend.close();
  });

  it('keeps the alarm and auth records through defragmentation, and writes them to the new file after it', async () => {
    const path = tempDbPath('lmdb-defrag-areas-');
    const backend = LmdbBackend.open(path, { batchIntervalMs: 0 });
    const noSpace = { memberId: 7n, alarm: 1 };
    const corrupt = { memberId: 9n, alarm: 2 };
    writeRecords(backend, 1, 10);
    backend.write({ puts: [], deletes: [], meta: {}, alarms: { puts: [noSpace], deletes: [] }, auth: bytes('auth-1') });
    await backend.defragment(`${path}-defrag`);
    assert.deepEqual(alarmsOf(backend), [noSpace]);
    assert.deepEqual(backend.readAuth(), bytes('auth-1'));
    backend.write({ puts: [], deletes: [], meta: {}, alarms: { puts: [corrupt], deletes: [] }, auth: bytes('auth-2') });
    await backend.close();
    const reopened = LmdbBackend.open(`${path}-defrag`);
    assert.deepEqual(alarmsOf(reopened), [noSpace, corrupt]);
    assert.deepEqual(reopened.readAuth(), bytes('auth-2'));
    await reopened.close();
  });
});
