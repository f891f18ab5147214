import assert from 'node:assert/strict';
import { test } from 'node:test';
import { metaOffsets } from '../../src/snap/bbolt/format.js';
import {
  type BoltBucket,
  BoltFormatError,
  readBolt,
  walkBolt,
  windowedPageSource,
} from '../../src/snap/bbolt/reader.js';
import { boltLayout, writeBoltBytes } from '../../src/snap/bbolt/writer.js';
import { itemsOf, keysBucket, plainBucket, rewriteMeta, sampleRoot } from '../snap/bbolt-helpers.js';
import { parseOrRefuse, runFuzz } from './fuzz.js';
import type { Prng } from '../../src/lib/prng.js';

/** Small pages keep whole databases (several levels, overflow, inline and nested buckets) within a few KiB. */
const pageBytes = 512;
const corpus = [
  writeBoltBytes(sampleRoot(pageBytes, 40), boltLayout(pageBytes)),
  writeBoltBytes([{ key: Buffer.from('key'), bucket: keysBucket(60, 3) }], boltLayout(pageBytes)),
  writeBoltBytes([], boltLayout(pageBytes)),
];
const metaFields = Object.values(metaOffsets).filter((offset) => offset !== metaOffsets.checksum);
const boundaryValues = [0, 1, 2, 3, 0xff, 0xffff, 0x7fffffff, 0xffffffff];

/** Sets one 32-bit field of a page: its header (id, flags and count, overflow) or one of its first elements. */
function mutatePageField(input: Uint8Array, prng: Prng): Uint8Array {
  const pages = Math.floor(input.length / pageBytes);
  if (pages < 3) return input;
  const copy = Uint8Array.from(input);
  const at = (2 + prng.nextInt(pages - 2)) * pageBytes + prng.pick([0, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44]);
  const value = prng.chance(0.5) ? prng.pick(boundaryValues) : prng.nextInt(2 ** 31);
  new DataView(copy.buffer).setUint32(at, value >>> 0, true);
  return copy;
}

/**
 * What walkBolt reads of `input` through windows that are reused as a restore's are (small ones, so
 * most pages need a read of their own): the tree as copies, or the error's message.
 */
function readThroughWindows(input: Uint8Array): unknown {
  const root: BoltBucket = { items: [] };
  const open = [root];
  try {
    walkBolt(
      windowedPageSource(input.length, pageBytes, (into, length, position) =>
        into.set(input.subarray(position, position + length)),
      ),
      {
        item: (key, value) => open.at(-1)!.items.push({ key: key.slice(), value: value.slice() }),
        enterBucket(key) {
          const bucket: BoltBucket = { items: [] };
          open.at(-1)!.items.push({ key: key.slice(), bucket });
          open.push(bucket);
        },
        leaveBucket: () => open.pop(),
      },
    );
  } catch (error) {
    return (error as Error).message;
  }
  return plainBucket(root);
}

test('a bbolt file reads to buckets that write and read back the same, or is refused with a BoltFormatError', () => {
  runFuzz('bbolt', {
    corpus,
    inputBytesMax: 16 * 1024,
    // Mutations that keep a meta's checksum right, so they reach the pages behind it, and that set page fields.
    mutations: [
      (input, prng) => rewriteMeta(input, pageBytes, prng.nextInt(2), prng.pick(metaFields), BigInt(prng.nextInt(64))),
      (input, prng) => rewriteMeta(input, pageBytes, prng.nextInt(2), metaOffsets.pageCount, BigInt(prng.nextInt(40))),
      mutatePageField,
    ],
    check(input) {
      const db = parseOrRefuse(() => readBolt(input), BoltFormatError);
      // Read a page at a time through reused windows, the file reads the same or is refused the same.
      let refusal: string | undefined;
      try {
        readBolt(input);
      } catch (error) {
        refusal = (error as Error).message;
      }
      assert.deepEqual(readThroughWindows(input), db === undefined ? refusal : plainBucket(db.root));
      if (db === undefined) return;
      const again = readBolt(writeBoltBytes(itemsOf(db.root), boltLayout(db.pageBytes)));
      assert.deepEqual(plainBucket(again.root), plainBucket(db.root));
    },
  });
});
