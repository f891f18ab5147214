import assert from 'node:assert/strict';
import fs, { readdirSync, readFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { RecordType } from '../../src/wal/format.js';
import { readWal, scanSegment } from '../../src/wal/reader.js';
import { parseSegmentName } from '../../src/wal/segment.js';
import { Wal } from '../../src/wal/wal.js';
import { makeEntries, tempDir, testMetadata } from './helpers.js';

function withDir<T>(body: (dir: string) => T): T {
  const { dir, cleanup } = tempDir();
  try {
    return body(dir);
  } finally {
    cleanup();
  }
}

/** Byte offsets of every entry record in a segment file. */
function entryOffsets(path: string): number[] {
  const offsets: number[] = [];
  scanSegment(path, readFileSync(path), true, (type, _payload, offset) => {
    if (type === RecordType.entry) offsets.push(offset);
  });
  return offsets;
}

test('entries, hard state and metadata written to a new WAL read back exactly', () => {
  withDir((dir) => {
    const wal = Wal.create(dir, testMetadata);
    const entries = [...makeEntries(1, 5), { term: 1, index: 6, type: 1, data: new Uint8Array(0) }];
    const hardState = { term: 1, vote: 0xffff_ffff_ffff_fffen, commit: 4 };
    wal.append(entries, hardState);
    wal.sync();
    wal.close();
    const { wal: reopened, state } = Wal.open(dir);
    reopened.close();
    assert.deepEqual(state.metadata, testMetadata);
    assert.deepEqual(state.hardState, hardState);
    assert.deepEqual(state.snapshot, { index: 0, term: 0 });
    assert.deepEqual(state.entries, entries);
    assert.equal(state.entries[0]!.data.constructor, Uint8Array);
  });
});

test('a WAL with no appends opens with empty state', () => {
  withDir((dir) => {
    Wal.create(dir, testMetadata).close();
    const { wal, state } = Wal.open(dir);
    wal.close();
    assert.deepEqual(state, {
      metadata: testMetadata,
      hardState: { term: 0, vote: 0n, commit: 0 },
      snapshot: { index: 0, term: 0 },
      entries: [],
    });
  });
});

test('creating a WAL where one exists fails', () => {
  withDir((dir) => {
    Wal.create(dir, testMetadata).close();
    assert.throws(() => Wal.create(dir, testMetadata), /already exists/);
  });
});

test('appends after reopening continue the crc chain', () => {
  withDir((dir) => {
    const wal = Wal.create(dir, testMetadata);
    wal.append(makeEntries(1, 3), { term: 1, vote: 1n, commit: 1 });
    wal.close();
    for (let round = 0; round < 3; round++) {
      const { wal: reopened } = Wal.open(dir);
      reopened.append(makeEntries(4 + round * 3, 3), { term: 1, vote: 1n, commit: 3 + round * 3 });
      reopened.close();
    }
    const { wal: last, state } = Wal.open(dir);
    last.close();
    assert.deepEqual(state.entries, makeEntries(1, 12));
    assert.deepEqual(state.hardState, { term: 1, vote: 1n, commit: 9 });
  });
});

test('entries rewritten at a lower index replace the old tail, as after a leader change', () => {
  withDir((dir) => {
    const wal = Wal.create(dir, testMetadata);
    wal.append(makeEntries(1, 10, 1));
    wal.append(makeEntries(8, 2, 2), { term: 2, vote: 2n, commit: 7 });
    wal.append(makeEntries(10, 1, 2));
    wal.close();
    const { wal: reopened, state } = Wal.open(dir);
    reopened.close();
    assert.deepEqual(state.entries, [...makeEntries(1, 7, 1), ...makeEntries(8, 3, 2)]);
  });
});

test('an overwrite reaching back into an earlier segment reads back correctly', () => {
  withDir((dir) => {
    const wal = Wal.create(dir, testMetadata, { segmentBytes: 4096 });
    for (let index = 1; index <= 200; index += 5) wal.append(makeEntries(index, 5, 1, 64));
    assert.ok(wal.segmentPaths().length > 2);
    wal.append(makeEntries(20, 5, 2, 64));
    wal.close();
    const { wal: reopened, state } = Wal.open(dir, { segmentBytes: 4096 });
    reopened.close();
    assert.deepEqual(state.entries, [...makeEntries(1, 19, 1, 64), ...makeEntries(20, 5, 2, 64)]);
  });
});

test('segments roll over when full and every entry survives a reopen', () => {
  withDir((dir) => {
    const wal = Wal.create(dir, testMetadata, { segmentBytes: 4096 });
    for (let index = 1; index <= 2000; index += 10)
      wal.append(makeEntries(index, 10, 3, 64), { term: 3, vote: 1n, commit: index });
    wal.close();
    const names = readdirSync(dir)
      .filter((name) => name.endsWith('.wal'))
      .sort();
    assert.ok(names.length > 20, `expected many segments, got ${names.length}`);
    const parsed = names.map((name) => parseSegmentName(name)!);
    parsed.forEach((segment, i) => assert.equal(segment.seq, i));
    assert.equal(parsed[0]!.firstIndex, 0);
    for (let i = 1; i < parsed.length; i++) assert.ok(parsed[i]!.firstIndex > parsed[i - 1]!.firstIndex);
    const { wal: reopened, state } = Wal.open(dir, { segmentBytes: 4096 });
    reopened.append(makeEntries(2001, 1, 3, 64));
    reopened.close();
    assert.deepEqual(state.entries, makeEntries(1, 2000, 3, 64));
    assert.deepEqual(state.hardState, { term: 3, vote: 1n, commit: 1991 });
    assert.equal(Wal.open(dir, { segmentBytes: 4096 }).state.entries.length, 2001);
  });
});

test('releasing behind a snapshot deletes old segments and keeps everything after it', () => {
  withDir((dir) => {
    const options = { segmentBytes: 4096 };
    const wal = Wal.create(dir, testMetadata, options);
    for (let index = 1; index <= 500; index += 10)
      wal.append(makeEntries(index, 10, 1, 64), { term: 1, vote: 1n, commit: index + 9 });
    const before = wal.segmentPaths().length;
    wal.saveSnapshot(300, 1);
    assert.throws(() => wal.releaseTo(301), /past the snapshot/);
    wal.releaseTo(300);
    const after = wal.segmentPaths().length;
    assert.ok(after < before / 2, `released ${before - after} of ${before} segments`);
    wal.append(makeEntries(501, 1, 1, 64));
    wal.close();
    const { wal: reopened, state } = Wal.open(dir, options);
    reopened.close();
    assert.deepEqual(state.snapshot, { index: 300, term: 1 });
    assert.deepEqual(state.entries, makeEntries(301, 201, 1, 64));
    assert.deepEqual(state.hardState, { term: 1, vote: 1n, commit: 500 });
  });
});

test('a snapshot received ahead of the log restarts the entries after it', () => {
  withDir((dir) => {
    const wal = Wal.create(dir, testMetadata);
    wal.append(makeEntries(1, 5));
    wal.saveSnapshot(50, 4);
    wal.append(makeEntries(51, 2, 4));
    assert.throws(() => wal.append(makeEntries(50, 1, 4)), /at or below the snapshot/);
    assert.throws(() => wal.append(makeEntries(54, 1, 4)), /gap/);
    wal.close();
    const { wal: reopened, state } = Wal.open(dir);
    reopened.close();
    assert.deepEqual(state.snapshot, { index: 50, term: 4 });
    assert.deepEqual(state.entries, makeEntries(51, 2, 4));
  });
});

test('readWal leaves a clean WAL at the offset where appends resume', () => {
  withDir((dir) => {
    const wal = Wal.create(dir, testMetadata);
    wal.append(makeEntries(1, 3));
    wal.close();
    const read = readWal(dir);
    const path = join(dir, readdirSync(dir)[0]!);
    const offsets = entryOffsets(path);
    assert.equal(offsets.length, 3);
    assert.ok(read.tailOffset > offsets[2]!);
    assert.equal(read.torn, undefined);
  });
});

test('reopened entries live in a few buffers that can move to another thread whole, across segments', () => {
  withDir((dir) => {
    const wal = Wal.create(dir, testMetadata, { segmentBytes: 4096 });
    const written = [
      ...makeEntries(1, 300, 1, 100),
      ...makeEntries(301, 1, 1, 20 * 1024 * 1024),
      ...makeEntries(302, 50, 1, 100),
    ];
    for (let start = 0; start < written.length; start += 10)
      wal.append(written.slice(start, start + 10), { term: 1, vote: 1n, commit: start });
    wal.sync();
    wal.close();
    const { wal: reopened, state, entryBuffers } = Wal.open(dir, { segmentBytes: 4096 });
    reopened.close();
    assert.ok(readdirSync(dir).length > 3, 'the entries span several segments');
    assert.deepEqual(state.entries, written);
    // A 20 MB entry gets a buffer of its own; the small ones share one.
    assert.equal(entryBuffers.length, 3);
    for (const { data } of state.entries) assert.ok(entryBuffers.includes(data.buffer as ArrayBuffer));
    // What the WAL thread does with them: transfer the buffers, and the entries arrive intact.
    const moved = structuredClone(state.entries, { transfer: entryBuffers });
    assert.deepEqual(moved, written);
    assert.equal(entryBuffers[0]!.byteLength, 0, 'transferred, not copied');
  });
});

test('--max-wals keeps that many segment files behind a snapshot; 0 keeps them all', () => {
  for (const [maxWals, expected] of [
    [3, 3],
    [0, undefined],
  ] as const) {
    withDir((dir) => {
      const options = { segmentBytes: 4096, maxWals };
      const wal = Wal.create(dir, testMetadata, options);
      for (let index = 1; index <= 500; index += 10)
        wal.append(makeEntries(index, 10, 1, 64), { term: 1, vote: 1n, commit: index + 9 });
      const before = wal.segmentPaths().length;
      assert.ok(before > 6, `expected many segments, saw ${before}`);
      wal.saveSnapshot(500, 1);
      wal.releaseTo(500);
      assert.equal(wal.segmentPaths().length, expected ?? before, `--max-wals ${maxWals}`);
      assert.equal(readdirSync(dir).length, expected ?? before);
      wal.close();
    });
  }
});

test('--unsafe-no-fsync writes the WAL without a single fdatasync or fsync; without it every sync is one', () => {
  const counts = { fdatasync: 0, fsync: 0 };
  const original = { fdatasyncSync: fs.fdatasyncSync, fsyncSync: fs.fsyncSync };
  fs.fdatasyncSync = (fd) => {
    counts.fdatasync++;
    original.fdatasyncSync(fd);
  };
  fs.fsyncSync = (fd) => {
    counts.fsync++;
    original.fsyncSync(fd);
  };
  syncBuiltinESMExports();
  const run = (unsafeNoFsync: boolean) =>
    withDir((dir) => {
      counts.fdatasync = counts.fsync = 0;
      const wal = Wal.create(dir, testMetadata, { segmentBytes: 4096, unsafeNoFsync });
      for (let index = 1; index <= 200; index += 10) {
        wal.append(makeEntries(index, 10, 1, 64), { term: 1, vote: 1n, commit: index + 9 });
        wal.sync();
      }
      wal.close();
      const { wal: reopened, state } = Wal.open(dir, { segmentBytes: 4096, unsafeNoFsync });
      reopened.close();
      assert.equal(state.entries.length, 200);
      return { ...counts, syncCount: wal.syncCount };
    });
  try {
    assert.deepEqual(run(true), { fdatasync: 0, fsync: 0, syncCount: 0 });
    const safe = run(false);
    assert.ok(safe.syncCount > 10 && safe.fdatasync > safe.syncCount && safe.fsync > 0, JSON.stringify(safe));
  } finally {
    Object.assign(fs, original);
    syncBuiltinESMExports();
  }
});
