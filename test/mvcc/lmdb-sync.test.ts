/**
 * LmdbBackend.sync(): commits are not synced one by one, so sync() is where the backend becomes
 * durable; under the power-loss journal each sync leaves a copy of what it made durable.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { durableCopyName, LmdbBackend } from '../../src/mvcc/lmdb-backend.js';
import { bytes, removeTempDbs, tempDbPath } from './helpers.js';

after(removeTempDbs);

function writeRevision(backend: LmdbBackend, main: number): void {
  backend.write({
    puts: [
      {
        rev: { main, sub: 0 },
        stored: {
          kv: {
            key: bytes(`k${main}`),
            value: bytes(`v${main}`),
            createRevision: main,
            modRevision: main,
            version: 1,
            lease: 0n,
          },
          tombstone: false,
        },
      },
    ],
    deletes: [],
    meta: { consistentIndex: main },
  });
}

/** The consistent index the database file at `dir`/data.mdb holds. */
async function consistentIndexIn(dir: string): Promise<number> {
  const backend = LmdbBackend.open(dir);
  try {
    return backend.readMeta().consistentIndex;
  } finally {
    await backend.close();
  }
}

test('each sync leaves a copy of the database holding every write before it, numbered in order', async () => {
  const dir = tempDbPath('lmdb-sync-');
  const copiesDir = tempDbPath('lmdb-sync-copies-');
  mkdirSync(copiesDir, { recursive: true });
  const backend = LmdbBackend.open(dir, { durableCopiesDir: copiesDir });
  try {
    for (let main = 1; main <= 5; main++) writeRevision(backend, main);
    await backend.sync();
    for (let main = 6; main <= 9; main++) writeRevision(backend, main);
    await backend.sync();
  } finally {
    await backend.close();
  }
  assert.deepEqual(readdirSync(copiesDir).sort(), [durableCopyName(1), durableCopyName(2)]);
  for (const [n, index] of [
    [1, 5],
    [2, 9],
  ] as const) {
    const copyDir = tempDbPath('lmdb-sync-copy-');
    mkdirSync(copyDir, { recursive: true });
    copyFileSync(join(copiesDir, durableCopyName(n)), join(copyDir, 'data.mdb'));
    assert.equal(await consistentIndexIn(copyDir), index, `copy ${n}`);
  }
});

test('with --unsafe-no-fsync a sync flushes nothing to disk, so it leaves no durable copy', async () => {
  const dir = tempDbPath('lmdb-sync-unsafe-');
  const copiesDir = tempDbPath('lmdb-sync-unsafe-copies-');
  mkdirSync(copiesDir, { recursive: true });
  const backend = LmdbBackend.open(dir, { durableCopiesDir: copiesDir, unsafeNoFsync: true });
  try {
    writeRevision(backend, 1);
    await backend.sync();
    assert.equal(backend.readMeta().consistentIndex, 1);
  } finally {
    await backend.close();
  }
  assert.deepEqual(readdirSync(copiesDir), []);
});
