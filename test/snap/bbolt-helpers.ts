/** Small bbolt databases for the reader's tests and fuzzing, and a way to compare what was read. */
import {
  fnv1a64,
  metaChecksummedBytes,
  metaOffsets,
  pageHeaderBytes,
  type BoltItem,
} from '../../src/snap/bbolt/format.js';
import type { BoltBucket } from '../../src/snap/bbolt/reader.js';
import { Prng } from '../../src/lib/prng.js';

const text = (value: string): Uint8Array => Buffer.from(value);

/** A bucket of `count` keys key-0000... with values of `valueBytes` bytes, seeded. */
export function keysBucket(count: number, valueBytes: number, seed = 1): BoltItem[] {
  const prng = new Prng(seed);
  return Array.from({ length: count }, (_, index) => ({
    key: text(`key-${String(index).padStart(6, '0')}`),
    value: Uint8Array.from({ length: valueBytes }, () => prng.nextInt(256)),
  }));
}

/**
 * A root with what the format has: an inline bucket, an empty one, one spanning branch pages,
 * one whose value overflows onto several pages, and buckets nested in a bucket.
 */
export function sampleRoot(pageBytes: number, keyCount: number): BoltItem[] {
  return [
    { key: text('big'), bucket: [{ key: text('v'), value: new Uint8Array(pageBytes * 3 + 5).fill(7) }] },
    { key: text('empty'), bucket: [] },
    { key: text('inline'), bucket: [{ key: text('a'), value: text('1') }] },
    { key: text('many'), bucket: keysBucket(keyCount, 20) },
    {
      key: text('nest'),
      bucket: [
        { key: text('inner'), bucket: [{ key: text('x'), value: text('y') }] },
        { key: text('plain'), value: text('value') },
      ],
    },
  ];
}

/** A read bucket as plain data (hex keys and values), for deepEqual. */
export function plainBucket(bucket: BoltBucket): unknown[] {
  return bucket.items.map((item) =>
    'bucket' in item
      ? { key: Buffer.from(item.key).toString('hex'), bucket: plainBucket(item.bucket) }
      : { key: Buffer.from(item.key).toString('hex'), value: Buffer.from(item.value).toString('hex') },
  );
}

/** A read bucket as writer items again. */
export function itemsOf(bucket: BoltBucket): BoltItem[] {
  return bucket.items.map((item) => ('bucket' in item ? { key: item.key, bucket: itemsOf(item.bucket) } : item));
}

/** Sets a meta field of meta page `index` and writes its checksum again, so the change gets past it. */
export function rewriteMeta(
  file: Uint8Array,
  pageBytes: number,
  index: number,
  offset: number,
  value: bigint,
): Uint8Array {
  const copy = Uint8Array.from(file);
  const at = index * pageBytes + pageHeaderBytes;
  if (copy.length < at + metaOffsets.checksum + 8) return copy;
  const view = new DataView(copy.buffer);
  view.setBigUint64(at + offset, value, true);
  view.setBigUint64(at + metaOffsets.checksum, fnv1a64(copy.subarray(at, at + metaChecksummedBytes)), true);
  return copy;
}
