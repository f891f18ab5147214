import assert from 'node:assert/strict';
import { test } from 'node:test';
import { boltLayout, ChunkedPageOutput, planBolt, writeBolt, writeBoltBytes } from '../../src/snap/bbolt/writer.js';
import { BoltFormatError, childBucket, readBolt } from '../../src/snap/bbolt/reader.js';
import { type BoltItem, metaOffsets, pageFlags, pageHeaderBytes } from '../../src/snap/bbolt/format.js';
import { itemsOf, keysBucket, plainBucket, rewriteMeta, sampleRoot } from './bbolt-helpers.js';

const pageBytes = 4096;

function flipByte(bytes: Uint8Array, at: number): void {
  bytes[at] = bytes[at]! ^ 1;
}

test('what the writer writes reads back item for item, nested, inline, overflowing and empty buckets included', () => {
  const root = sampleRoot(pageBytes, 5_000);
  const file = writeBoltBytes(root);
  const db = readBolt(file);
  assert.equal(db.pageBytes, pageBytes);
  assert.equal(file.length, db.pageCount * pageBytes);
  assert.deepEqual(plainBucket(db.root), plainBucket({ items: readBolt(writeBoltBytes(itemsOf(db.root))).root.items }));
  assert.equal(childBucket(db.root, 'many')!.items.length, 5_000);
  const many = childBucket(db.root, 'many')!.items;
  assert.deepEqual(Buffer.from(many[4_321]!.key).toString(), 'key-004321');
  assert.equal(plainBucket(childBucket(db.root, 'nest')!).length, 2);
});

test('a bucket of a quarter page or less is stored inline and a larger one on its own pages', () => {
  const { pageCount } = planBolt(
    [
      { key: Buffer.from('small'), bucket: keysBucket(10, 50) },
      { key: Buffer.from('large'), bucket: keysBucket(40, 50) },
    ].sort((a, b) => Buffer.compare(a.key, b.key)),
    boltLayout(pageBytes),
  );
  // metas (2), freelist, the large bucket's leaf, the root leaf: the small bucket took no page.
  assert.equal(pageCount, 5);
});

test('written in chunks, from items that share one buffer, the file is the same bytes as written whole', () => {
  const root = sampleRoot(pageBytes, 3_000);
  const whole = writeBoltBytes(root, boltLayout(pageBytes));
  // The same items again, each handed out in one buffer the source overwrites for the next item.
  const shared = { key: new Uint8Array(64), value: new Uint8Array(pageBytes * 4) };
  function* reused(items: BoltItem[]): Generator<BoltItem> {
    for (const item of items) {
      if ('bucket' in item) {
        yield { key: item.key, bucket: { [Symbol.iterator]: () => reused([...item.bucket]) } };
        continue;
      }
      if ('records' in item) {
        yield item;
        continue;
      }
      shared.key.set(item.key);
      shared.value.set(item.value);
      yield { key: shared.key.subarray(0, item.key.length), value: shared.value.subarray(0, item.value.length) };
    }
  }
  const source = { [Symbol.iterator]: () => reused(root) };
  const plan = planBolt(source, boltLayout(pageBytes));
  const chunks: Uint8Array[] = [];
  const output = new ChunkedPageOutput(5 * pageBytes, (chunk) => chunks.push(chunk));
  writeBolt(source, plan, output);
  output.finish();
  assert.ok(chunks.length > 3, `several chunks, saw ${chunks.length}`);
  assert.ok(Buffer.concat(chunks).equals(whole), 'the chunked file differs from the whole one');

  // Built again in one reused buffer, left dirty by each chunk before it: the same bytes.
  const copies: Buffer[] = [];
  const reusing = new ChunkedPageOutput(
    5 * pageBytes,
    (chunk) => {
      copies.push(Buffer.from(chunk));
      chunk.fill(0xa5);
    },
    true,
  );
  writeBolt(source, plan, reusing);
  reusing.finish();
  assert.ok(Buffer.concat(copies).equals(whole), 'the file built in a reused buffer differs from the whole one');
});

test('a value larger than a page spans overflow pages', () => {
  const file = writeBoltBytes([
    { key: Buffer.from('b'), bucket: [{ key: Buffer.from('k'), value: new Uint8Array(10_000).fill(1) }] },
  ]);
  const db = readBolt(file);
  const item = childBucket(db.root, 'b')!.items[0]!;
  assert.ok('value' in item && item.value.length === 10_000 && item.value.every((byte) => byte === 1));
  const overflows = [];
  for (let page = 3; page < db.pageCount; page++)
    overflows.push(new DataView(file.buffer).getUint32(page * pageBytes + 12, true));
  assert.ok(overflows.includes(2), `a leaf with 2 overflow pages, saw ${overflows}`);
});

test('the reader refuses a truncated file, a bad meta checksum and pages reached twice, saying which', () => {
  const file = writeBoltBytes(sampleRoot(pageBytes, 2_000));
  assert.throws(
    () => readBolt(file.subarray(0, file.length - pageBytes)),
    (error: Error) => error instanceof BoltFormatError && /^truncated: the meta counts \d+ pages/.test(error.message),
  );
  assert.throws(() => readBolt(file.subarray(0, 100)), BoltFormatError);
  const badMetas = Uint8Array.from(file);
  flipByte(badMetas, pageHeaderBytes + metaOffsets.rootPageId);
  flipByte(badMetas, pageBytes + pageHeaderBytes + metaOffsets.rootPageId);
  assert.throws(() => readBolt(badMetas), /^BoltFormatError: invalid database: meta page 0: checksum error$/);
  // One meta still sound: bbolt reads the database with it.
  const oneBad = Uint8Array.from(file);
  flipByte(oneBad, pageBytes + pageHeaderBytes + metaOffsets.rootPageId);
  assert.equal(readBolt(oneBad).pageCount, readBolt(file).pageCount);
  // Both metas name the freelist page as the root: it is not a tree page.
  const freelistRoot = rewriteMeta(
    rewriteMeta(file, pageBytes, 0, metaOffsets.rootPageId, 2n),
    pageBytes,
    1,
    metaOffsets.rootPageId,
    2n,
  );
  assert.throws(() => readBolt(freelistRoot), /page 2: multiple references/);
  // An extra page past the tree that nothing reaches and the freelist does not free.
  const grown = rewriteMeta(
    rewriteMeta(
      Buffer.concat([file, new Uint8Array(pageBytes)]),
      pageBytes,
      0,
      metaOffsets.pageCount,
      BigInt(file.length / pageBytes + 1),
    ),
    pageBytes,
    1,
    metaOffsets.pageCount,
    BigInt(file.length / pageBytes + 1),
  );
  assert.throws(
    () => readBolt(grown),
    new RegExp(`page ${file.length / pageBytes}: (unreachable unfreed|its header says page 0)`),
  );
});

test('the reader refuses leaf keys out of order', () => {
  const file = writeBoltBytes([{ key: Buffer.from('b'), bucket: keysBucket(300, 8) }]);
  const db = readBolt(file);
  // Find a leaf page of the bucket and swap the first bytes of two keys' digits.
  let swapped = false;
  for (let page = 3; page < db.pageCount && !swapped; page++) {
    const view = new DataView(file.buffer, page * pageBytes);
    if (view.getUint16(8, true) !== pageFlags.leaf || view.getUint16(10, true) < 2) continue;
    const keyAt = (index: number) =>
      page * pageBytes + pageHeaderBytes + index * 16 + view.getUint32(pageHeaderBytes + index * 16 + 4, true);
    const first = keyAt(0);
    const second = keyAt(1);
    const copy = Uint8Array.from(file);
    copy.set(file.subarray(second, second + 10), first);
    copy.set(file.subarray(first, first + 10), second);
    assert.throws(() => readBolt(copy), /keys out of order/);
    swapped = true;
  }
  assert.ok(swapped);
});
