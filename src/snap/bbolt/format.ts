/**
 * The bbolt file format (bolt version 2), as etcd's backend writes it: fixed-size pages whose
 * 16-byte header says what they hold; two meta pages (0 and 1) naming the root bucket, the
 * freelist page and the page count, each with an FNV-1a checksum; branch and leaf pages of
 * 16-byte elements followed by their keys and values; and bucket values that either name a root
 * page or carry a whole small leaf page inline. Integers are little-endian, as on amd64.
 */

export const boltMagic = 0xed0cdaed;
export const boltVersion = 2;

/** Page header: id u64, flags u16, count u16, overflow u32. */
export const pageHeaderBytes = 16;
/** Branch element: pos u32, ksize u32, pgid u64. Leaf element: flags u32, pos u32, ksize u32, vsize u32. */
export const elementBytes = 16;
/** Bucket value header: root pgid u64 (0 for an inline bucket), sequence u64. */
export const bucketHeaderBytes = 16;

export const pageFlags = {
  branch: 0x01,
  leaf: 0x02,
  meta: 0x04,
  freelist: 0x10,
} as const;

/** A leaf element flag: the value is a bucket. */
export const bucketLeafFlag = 0x01;

/** A freelist page whose count field holds this keeps the real count in its first u64. */
export const freelistCountOverflow = 0xffff;
/** The freelist pgid of a database that does not store its freelist. */
export const noFreelistPageId = 0xffffffffffffffffn;

/** Where each meta field sits, from the start of the meta (just after the page header). */
export const metaOffsets = {
  magic: 0,
  version: 4,
  pageBytes: 8,
  flags: 12,
  rootPageId: 16,
  rootSequence: 24,
  freelistPageId: 32,
  pageCount: 40,
  txid: 48,
  checksum: 56,
} as const;
/** The meta's fields before the checksum, which the checksum covers. */
export const metaChecksummedBytes = metaOffsets.checksum;
export const metaBytes = metaOffsets.checksum + 8;

/**
 * bbolt splits a node only when it holds more than twice this many elements, and never leaves a
 * node with fewer (its minKeysPerPage).
 */
export const splitKeysMin = 2;

/** A bucket holds its items inline when its one leaf page takes at most a quarter page. */
export function inlineBucketBytesMax(pageBytes: number): number {
  return pageBytes / 4;
}

const fnvOffsetBasis = 0xcbf29ce484222325n;
const fnvPrime = 0x100000001b3n;

/** FNV-1a, 64 bits: the checksum of a meta page's fields. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let hash = fnvOffsetBasis;
  for (const byte of bytes) hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * fnvPrime);
  return hash;
}

/**
 * Visits one record of a bucket: its key (which the scan may hand out again, refilled, for the
 * next record) and its value as `valueLength` bytes of `value` from `valueAt`, valid during the
 * call only.
 */
export type BoltRecordVisitor = (key: Uint8Array, value: Uint8Array, valueAt: number, valueLength: number) => void;

/**
 * A bucket of plain records in ascending key order, handed over in bulk by a callback: for a
 * large bucket, cheaper than an item object and an iterator step per record.
 */
export interface BoltRecordScan {
  scan(visit: BoltRecordVisitor): void;
}

/**
 * One item of a bucket: a key with a value, or a key naming a nested bucket (as items or as a
 * record scan). A nested bucket's fillPercent is bbolt's Bucket.FillPercent, how full a page its
 * nodes are split at (bbolt's default when left out).
 */
export type BoltItem =
  | { key: Uint8Array; value: Uint8Array }
  | { key: Uint8Array; bucket: BoltBucketSource; fillPercent?: number }
  | { key: Uint8Array; records: BoltRecordScan; fillPercent?: number };

/** A bucket's items in ascending key order (bytewise). */
export type BoltBucketSource = Iterable<BoltItem>;
