/**
 * The LMDB backend commits like etcd's batch transaction: writes wait up to the batch interval,
 * or until the batch limit of operations has queued, and reads see them meanwhile.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { LmdbBackend, type LmdbBackendOptions } from '../../src/mvcc/lmdb-backend.js';
import type { StoredKeyValue } from '../../src/mvcc/backend.js';
import { bytes, removeTempDbs, tempDbPath } from './helpers.js';

after(removeTempDbs);

const freshPath = (): string => tempDbPath('lmdb-batch-');

function stored(main: number): StoredKeyValue {
  return {
    kv: {
      key: bytes(`k${main}`),
      value: bytes(`v${main}`),
      createRevision: main,
      modRevision: main,
      version: 1,
      lease: 0n,
    },
    tombstone: false,
  };
}

/** Writes revisions from..to, one single-put batch per event turn, as applies arrive. */
async function writeTurns(backend: LmdbBackend, from: number, to: number): Promise<void> {
  for (let main = from; main <= to; main++) {
    backend.write({
      puts: [{ rev: { main, sub: 0 }, stored: stored(main) }],
      deletes: [],
      meta: { consistentIndex: main },
    });
    await nextTurn();
  }
}

function valueAt(backend: LmdbBackend, main: number): string | undefined {
  const found = backend.get({ main, sub: 0 });
  return found === undefined ? undefined : Buffer.from(found.kv.value).toString();
}

async function reopened(
  path: string,
  options: LmdbBackendOptions,
  check: (backend: LmdbBackend) => void,
): Promise<void> {
  const backend = LmdbBackend.open(path, options);
  try {
    check(backend);
  } finally {
    await backend.close();
  }
}

describe('LmdbBackend batch commits', () => {
  it('holds writes for the batch interval, serving them from the overlay, and commits them as one', async () => {
    const path = freshPath();
    const options = { batchIntervalMs: 60_000, batchLimit: 10_000 };
    const backend = LmdbBackend.open(path, options);
    await writeTurns(backend, 2, 21);
    assert.equal(backend.commitCount(), 0, 'no commit before the interval ends');
    assert.equal(valueAt(backend, 2), 'v2');
    assert.equal(valueAt(backend, 21), 'v21');
    assert.equal(backend.readMeta().consistentIndex, 21);
    await backend.flush();
    assert.equal(backend.commitCount(), 1, 'flush commits the open group as one');
    await backend.close();
    await reopened(path, options, (again) => {
      assert.equal(valueAt(again, 2), 'v2');
      assert.equal(valueAt(again, 21), 'v21');
      assert.equal(again.readMeta().consistentIndex, 21);
    });
  });

  it('commits at once when the batch limit of operations has queued', async () => {
    const backend = LmdbBackend.open(freshPath(), { batchIntervalMs: 60_000, batchLimit: 5 });
    try {
      await writeTurns(backend, 2, 13);
      assert.equal(backend.commitCount(), 2, '12 operations at a limit of 5 make two full groups');
      await backend.flush();
      assert.equal(backend.commitCount(), 3);
      for (let main = 2; main <= 13; main++) assert.equal(valueAt(backend, main), `v${main}`);
    } finally {
      await backend.close();
    }
  });

  it('commits by itself once the interval has passed', async () => {
    const path = freshPath();
    const backend = LmdbBackend.open(path, { batchIntervalMs: 40 });
    try {
      // Written within one event turn, so no timer can fire between the writes and the first
      // count, however slowly a loaded machine runs them.
      for (let main = 2; main <= 4; main++) {
        backend.write({
          puts: [{ rev: { main, sub: 0 }, stored: stored(main) }],
          deletes: [],
          meta: { consistentIndex: main },
        });
      }
      assert.equal(backend.commitCount(), 0);
      for (let waited = 0; backend.commitCount() === 0 && waited < 5_000; waited += 10) await sleep(10);
      assert.equal(backend.commitCount(), 1, 'the three writes commit together when the interval ends');
    } finally {
      await backend.close();
    }
  });

  it('commits every event turn with an interval of 0', async () => {
    const backend = LmdbBackend.open(freshPath(), { batchIntervalMs: 0 });
    try {
      await writeTurns(backend, 2, 4);
      assert.equal(backend.commitCount(), 3);
    } finally {
      await backend.close();
    }
  });
});
