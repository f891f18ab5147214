import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { test } from 'node:test';
import { crc32cUpdate } from '../../src/lib/crc32c.js';
import { walSegmentBytesDefault } from '../../src/lib/limits.js';
import { RecordType } from '../../src/wal/format.js';
import { readWal, scanSegment, WalCorruptionError } from '../../src/wal/reader.js';
import { Wal } from '../../src/wal/wal.js';
import { makeEntries, tempDir, testMetadata } from './helpers.js';

const segmentBytes = 8192;

/** A WAL in a fresh directory holding entries 1..count; returns its segment paths. */
function writeWal(dir: string, count: number, options = { segmentBytes }): string[] {
  const wal = Wal.create(dir, testMetadata, options);
  for (let index = 1; index <= count; index += 5)
    wal.append(makeEntries(index, 5, 1, 48), { term: 1, vote: 1n, commit: index });
  const paths = wal.segmentPaths();
  wal.close();
  return paths;
}

function entryOffsets(path: string): number[] {
  const offsets: number[] = [];
  scanSegment(path, readFileSync(path), true, (type, _payload, offset) => {
    if (type === RecordType.entry) offsets.push(offset);
  });
  return offsets;
}

function patch(path: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
}

function truncate(path: string, size: number): void {
  const fd = openSync(path, 'r+');
  ftruncateSync(fd, size);
  closeSync(fd);
}

function withDir(body: (dir: string) => void): void {
  const { dir, cleanup } = tempDir();
  try {
    body(dir);
  } finally {
    cleanup();
  }
}

function silentOpen(dir: string, logs: string[] = []): ReturnType<typeof Wal.open> {
  return Wal.open(dir, { segmentBytes, log: (message) => logs.push(message) });
}

test('a file cut off in the middle of its last record recovers every complete record', () => {
  withDir((dir) => {
    const [path] = writeWal(dir, 20, { segmentBytes: walSegmentBytesDefault });
    const offsets = entryOffsets(path!);
    truncate(path!, offsets[19]! + 13);
    const logs: string[] = [];
    const { wal, state } = Wal.open(dir, { log: (message) => logs.push(message) });
    assert.deepEqual(state.entries, makeEntries(1, 19, 1, 48));
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, new RegExp(`torn write at byte offset ${offsets[19]}`));
    assert.equal(statSync(path!).size, walSegmentBytesDefault, 'preallocation restored');
    wal.append(makeEntries(20, 1, 2, 48));
    wal.close();
    assert.deepEqual(silentOpen(dir).state.entries, [...makeEntries(1, 19, 1, 48), ...makeEntries(20, 1, 2, 48)]);
  });
});

test('garbage after the last record followed by zeros is zeroed and the WAL reopens cleanly', () => {
  withDir((dir) => {
    const [path] = writeWal(dir, 20);
    const { tailOffset } = readWal(dir);
    const garbage = new Uint8Array(48).map((_, i) => (i * 37 + 11) & 0xff);
    new DataView(garbage.buffer).setUint32(0, 40, true);
    garbage[8] = RecordType.entry;
    patch(path!, tailOffset, garbage);
    const logs: string[] = [];
    const { wal, state } = silentOpen(dir, logs);
    assert.deepEqual(state.entries, makeEntries(1, 20, 1, 48));
    assert.match(logs[0]!, /crc mismatch/);
    wal.append(makeEntries(21, 1, 1, 48));
    wal.close();
    const reopenLogs: string[] = [];
    assert.equal(silentOpen(dir, reopenLogs).state.entries.length, 21);
    assert.deepEqual(reopenLogs, []);
  });
});

test('a corrupted record in the middle of the last segment fails with the file and offset', () => {
  withDir((dir) => {
    const [path] = writeWal(dir, 20, { segmentBytes: walSegmentBytesDefault });
    const offsets = entryOffsets(path!);
    patch(path!, offsets[10]! + 20, Uint8Array.of(0xee));
    assert.throws(
      () => Wal.open(dir),
      (error: unknown) => {
        assert.ok(error instanceof WalCorruptionError);
        assert.equal(error.path, path);
        assert.equal(error.offset, offsets[10]);
        assert.match(
          error.message,
          new RegExp(`${path}.*byte offset ${offsets[10]}: crc mismatch.*followed by non-zero data`),
        );
        return true;
      },
    );
  });
});

test('a corrupted last record of an earlier segment fails even though nothing follows it there', () => {
  withDir((dir) => {
    const paths = writeWal(dir, 400);
    assert.ok(paths.length >= 3, `expected several segments, got ${paths.length}`);
    const offsets = entryOffsets(paths[1]!);
    const last = offsets[offsets.length - 1]!;
    patch(paths[1]!, last + 30, Uint8Array.of(0x55));
    assert.throws(
      () => silentOpen(dir),
      new RegExp(`${paths[1]} at byte offset ${last}: crc mismatch.* in a segment that is not the last`),
    );
  });
});

test('an earlier segment cut short fails instead of losing entries', () => {
  withDir((dir) => {
    const paths = writeWal(dir, 400);
    const offsets = entryOffsets(paths[0]!);
    truncate(paths[0]!, offsets[offsets.length - 1]! + 10);
    assert.throws(() => silentOpen(dir), /runs past the end of the file .* not the last/);
  });
});

test('an impossible record length fails rather than being taken for a torn write', () => {
  withDir((dir) => {
    const [path] = writeWal(dir, 10);
    const { tailOffset } = readWal(dir);
    patch(path!, tailOffset, new Uint8Array(24).fill(0xff));
    assert.throws(() => silentOpen(dir), new RegExp(`byte offset ${tailOffset}: record length 4294967295 exceeds`));
  });
});

test('data after a stretch of zeros at the end of the log is a lost write followed by a kept one: zeroed, and the WAL reopens', () => {
  withDir((dir) => {
    const [path] = writeWal(dir, 10);
    const { tailOffset } = readWal(dir);
    patch(path!, tailOffset + 512, Uint8Array.of(1, 2, 3));
    const logs: string[] = [];
    const { wal, state } = silentOpen(dir, logs);
    assert.deepEqual(state.entries, makeEntries(1, 10, 1, 48));
    assert.match(
      logs[0]!,
      new RegExp(`torn write at byte offset ${tailOffset} \\(zero record length, followed by data`),
    );
    wal.append(makeEntries(11, 1, 1, 48));
    wal.close();
    const reopenLogs: string[] = [];
    assert.equal(silentOpen(dir, reopenLogs).state.entries.length, 11);
    assert.deepEqual(reopenLogs, []);
  });
});

test('a last record with an unwritten sector, followed by a kept later write, is a torn write', () => {
  withDir((dir) => {
    const [path] = writeWal(dir, 20, { segmentBytes: walSegmentBytesDefault });
    const offsets = entryOffsets(path!);
    const bytes = readFileSync(path!);
    // Entry 19 loses the sector-bounded piece of its body that holds its first bytes (never
    // written back), while entry 20 after it reached the disk.
    const start = offsets[18]! + 8;
    const pieceEnd = Math.min(start + bytes.readUInt32LE(offsets[18]!), (Math.floor(start / 512) + 1) * 512);
    patch(path!, start, new Uint8Array(pieceEnd - start));
    const logs: string[] = [];
    const { wal, state } = silentOpen(dir, logs);
    assert.deepEqual(state.entries, makeEntries(1, 18, 1, 48));
    assert.match(logs[0]!, /crc mismatch.*with an unwritten sector, followed by data written out of order/);
    wal.close();
  });
});

test('a record with a valid crc and an unknown type fails', () => {
  withDir((dir) => {
    const [path] = writeWal(dir, 10);
    const offsets = entryOffsets(path!);
    const bytes = readFileSync(path!);
    // Rewrite the last entry's type and recompute its crc so only the type is wrong.
    const start = offsets[9]!;
    const body = bytes.subarray(start + 8, start + 8 + bytes.readUInt32LE(start));
    body[0] = 9;
    const previousCrc = bytes.readUInt32LE(offsets[8]! + 4);
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(crc32cUpdate(previousCrc, body));
    patch(path!, start + 4, crc);
    patch(path!, start + 8, body.subarray(0, 1));
    assert.throws(() => silentOpen(dir), new RegExp(`byte offset ${start}: unknown record type 9`));
  });
});

test('a hole in the segment sequence fails', () => {
  withDir((dir) => {
    const paths = writeWal(dir, 400);
    truncate(paths[1]!, 0);
    assert.throws(() => silentOpen(dir), /holds no records|crc/);
  });
});
