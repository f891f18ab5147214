import assert from 'node:assert/strict';
import { test } from 'node:test';
import { metaOffsets } from '../../src/snap/bbolt/format.js';
import { BoltFormatError, readBolt } from '../../src/snap/bbolt/reader.js';
import { writeBoltBytes } from '../../src/snap/bbolt/writer.js';
import { itemsOf, keysBucket, plainBucket, rewriteMeta, sampleRoot } from '../snap/bbolt-helpers.js';
import { parseOrRefuse, runFuzz } from './fuzz.js';

/** Small pages keep whole databases (several levels, overflow, inline and nested buckets) within a few KiB. */
const pageBytes = 512;
const corpus = [
  writeBoltBytes(sampleRoot(pageBytes, 40), pageBytes),
  writeBoltBytes([{ key: Buffer.from('key'), bucket: keysBucket(60, 3) }], pageBytes),
  writeBoltBytes([], pageBytes),
];
const metaFields = Object.values(metaOffsets).filter((offset) => offset !== metaOffsets.checksum);

test('a bbolt file reads to buckets that write and read back the same, or is refused with a BoltFormatError', () => {
  runFuzz('bbolt', {
    corpus,
    inputBytesMax: 16 * 1024,
    // Mutations that keep a meta's checksum right, so they reach the pages behind it.
    mutations: [
      (input, prng) => rewriteMeta(input, pageBytes, prng.nextInt(2), prng.pick(metaFields), BigInt(prng.nextInt(64))),
      (input, prng) => rewriteMeta(input, pageBytes, prng.nextInt(2), metaOffsets.pageCount, BigInt(prng.nextInt(40))),
    ],
    check(input) {
      const db = parseOrRefuse(() => readBolt(input), BoltFormatError);
      if (db === undefined) return;
      const again = readBolt(writeBoltBytes(itemsOf(db.root), db.pageBytes));
      assert.deepEqual(plainBucket(again.root), plainBucket(db.root));
    },
  });
});
