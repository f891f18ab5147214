/**
 * The LMDB data file read without LMDB (src/mvcc/lmdb-file.ts), checked against lmdb-js on the
 * same file: a backend copy made as a backup makes it, after puts, overwrites and deletes, with
 * values from empty to several pages long (overflow pages) over a tree of several levels.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { keyAreaName, LmdbBackend } from '../../src/mvcc/lmdb-backend.js';
import { LmdbFileReader, lmdbPageFlags, lmdbPageHeaderBytes, lmdbPageOffsets } from '../../src/mvcc/lmdb-file.js';
import { Prng } from '../../src/lib/prng.js';
import { bytes, removeTempDbs, tempDbPath } from './helpers.js';

after(removeTempDbs);

const hex = (data: Uint8Array): string => Buffer.from(data).toString('hex');

/** What lmdb-js reads of the copy's key area, as hex key=value lines. */
async function readWithLmdbJs(copyDir: string): Promise<string[]> {
  const backend = LmdbBackend.open(copyDir);
  try {
    // storedRevisions hands out one record object again and again: read each as it comes.
    const lines: string[] = [];
    for (const { revisionKey, value } of backend.storedRevisions()) lines.push(`${hex(revisionKey)}=${hex(value)}`);
    return lines;
  } finally {
    await backend.close();
  }
}

/** What the file reader reads of the same area. */
function readWithFileReader(copyDir: string): { lines: string[]; entries: number } {
  const reader = LmdbFileReader.open(join(copyDir, 'data.mdb'));
  try {
    const tree = reader.database(keyAreaName);
    assert.ok(tree !== undefined, 'the copy has a key area');
    const lines: string[] = [];
    reader.scan(tree, (data, keyAt, keyLength, valueAt, valueLength) =>
      lines.push(
        `${hex(data.subarray(keyAt, keyAt + keyLength))}=${hex(data.subarray(valueAt, valueAt + valueLength))}`,
      ),
    );
    return { lines, entries: tree.entries };
  } finally {
    reader.close();
  }
}

/**
 * Writes `count` revisions of seeded sizes (a few larger than a page) in a shuffled order, so
 * that page splits leave the leaves out of key order in the file, and deletes every seventh.
 */
async function filledCopy(count: number): Promise<string> {
  const path = tempDbPath('lmdb-file-');
  const backend = LmdbBackend.open(path, { batchIntervalMs: 0 });
  const prng = new Prng(7);
  const order = Array.from({ length: count }, (_, index) => index + 1);
  for (let index = count - 1; index > 0; index--) {
    const other = prng.nextInt(index + 1);
    [order[index], order[other]] = [order[other]!, order[index]!];
  }
  for (let index = 0; index < count; index++) {
    const main = order[index]!;
    const valueBytes = main % 97 === 0 ? 4096 * 3 + prng.nextInt(5000) : prng.nextInt(600);
    backend.write({
      puts: [
        {
          rev: { main, sub: 0 },
          stored: {
            kv: {
              key: bytes(`key-${main % 500}`),
              value: Uint8Array.from({ length: valueBytes }, () => prng.nextInt(256)),
              createRevision: main,
              modRevision: main,
              version: 1,
              lease: 0n,
            },
            tombstone: false,
          },
        },
      ],
      deletes: index % 7 === 6 ? [{ main: order[index - 3]!, sub: 0 }] : [],
      meta: { consistentIndex: index + 1 },
    });
  }
  await backend.flush();
  const copyDir = `${path}-copy`;
  await backend.copyTo(copyDir, { durable: false });
  await backend.close();
  return copyDir;
}

describe('the LMDB file reader', () => {
  it('reads a backup copy of the key area as lmdb-js does, overflow values and deleted records included', async () => {
    const copyDir = await filledCopy(6_000);
    const expected = await readWithLmdbJs(copyDir);
    const { lines, entries } = readWithFileReader(copyDir);
    assert.ok(expected.length > 5_000, `most records are kept, saw ${expected.length}`);
    assert.ok(
      expected.some((line) => line.length > 2 * 3 * 4096),
      'some values span overflow pages',
    );
    assert.equal(lines.length, expected.length);
    assert.equal(entries, expected.length, 'the database record counts the records');
    for (let index = 0; index < expected.length; index++)
      assert.equal(lines[index], expected[index], `record ${index}`);
  });

  it('reads an empty key area as no records', async () => {
    const path = tempDbPath('lmdb-file-empty-');
    const backend = LmdbBackend.open(path);
    await backend.copyTo(`${path}-copy`, { durable: false });
    await backend.close();
    const { lines, entries } = readWithFileReader(`${path}-copy`);
    assert.deepEqual([lines, entries], [[], 0]);
  });

  it("refuses a tree with a cycle, a damaged page (naming it) and metas that are not LMDB's", async () => {
    const copyDir = await filledCopy(300);
    const file = join(copyDir, 'data.mdb');
    const reader = LmdbFileReader.open(file);
    const tree = reader.database(keyAreaName);
    const { pageBytes } = reader;
    reader.close();
    assert.ok(tree?.rootPageId !== undefined);
    const fd = openSync(file, 'r+');
    try {
      // The root is a branch page; its first child becomes the root itself, a cycle.
      const root = Buffer.alloc(pageBytes);
      readSync(fd, root, 0, pageBytes, tree.rootPageId * pageBytes);
      assert.equal(root.readUInt16LE(lmdbPageOffsets.flags) & lmdbPageFlags.branch, lmdbPageFlags.branch);
      const firstNodeAt = root.readUInt16LE(lmdbPageHeaderBytes) + lmdbPageHeaderBytes;
      const cycle = Buffer.from(root);
      cycle.writeUInt16LE(tree.rootPageId & 0xffff, firstNodeAt);
      cycle.writeUInt16LE(Math.floor(tree.rootPageId / 0x10000), firstNodeAt + 2);
      writeSync(fd, cycle, 0, pageBytes, tree.rootPageId * pageBytes);
      const cyclic = LmdbFileReader.open(file);
      assert.throws(
        () => cyclic.scan(tree, () => {}),
        new RegExp(`page ${tree.rootPageId} has flags 0x1, where the tree has a leaf page`),
      );
      cyclic.close();
      writeSync(fd, root, 0, pageBytes, tree.rootPageId * pageBytes);
      // The key area's root page loses its branch or leaf flag.
      writeSync(fd, Uint8Array.of(0, 0), 0, 2, tree.rootPageId * pageBytes + lmdbPageOffsets.flags);
      const damaged = LmdbFileReader.open(file);
      assert.throws(
        () => damaged.scan(tree, () => {}),
        new RegExp(`page ${tree.rootPageId} has flags 0x0, where the tree has a branch page`),
      );
      damaged.close();
      writeSync(fd, Uint8Array.of(0, 0, 0, 0), 0, 4, pageBytes + 24);
      writeSync(fd, Uint8Array.of(0, 0, 0, 0), 0, 4, 24);
    } finally {
      closeSync(fd);
    }
    assert.throws(() => LmdbFileReader.open(file), /invalid database: .*meta page 0 has magic 0x0/);
  });
});
