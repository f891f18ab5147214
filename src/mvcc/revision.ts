/**
 * A point in the store's history: `main` is the store revision a write transaction produced,
 * `sub` numbers the writes inside that transaction. Encoded as etcd lays out its bbolt keys.
 */

import { assert } from '../lib/assert.js';
import { scratchBytes } from '../lib/scratch-bytes.js';

export interface Revision {
  readonly main: number;
  readonly sub: number;
}

/** etcd's key layout in the "key" bucket: 8-byte big-endian main, '_', 8-byte big-endian sub. */
export const revisionBytes = 17;
/** The byte etcd appends to a tombstone's key in the "key" bucket. */
export const tombstoneMark = 't'.charCodeAt(0);
const separator = '_'.charCodeAt(0);

/** Orders revisions by main, then sub; negative when `a` comes first. */
export function compareRevisions(a: Revision, b: Revision): number {
  return a.main !== b.main ? a.main - b.main : a.sub - b.sub;
}

/** True when `a` is strictly newer than `b`. */
export function revisionGreater(a: Revision, b: Revision): boolean {
  return a.main > b.main || (a.main === b.main && a.sub > b.sub);
}

/** Encodes a revision as etcd's 17-byte bucket key, plus the tombstone mark when asked. */
export function encodeRevision(rev: Revision, tombstone = false): Uint8Array {
  assert(
    Number.isSafeInteger(rev.main) && rev.main >= 0,
    () => `revision main must be a safe non-negative integer, saw ${rev.main}`,
  );
  assert(
    Number.isSafeInteger(rev.sub) && rev.sub >= 0,
    () => `revision sub must be a safe non-negative integer, saw ${rev.sub}`,
  );
  // Revision keys go to LMDB or a hash and are dropped: scratch bytes spare an ArrayBuffer each.
  const bytes = scratchBytes(tombstone ? revisionBytes + 1 : revisionBytes);
  writeUint64(bytes, 0, rev.main);
  bytes[8] = separator;
  writeUint64(bytes, 9, rev.sub);
  if (tombstone) bytes[revisionBytes] = tombstoneMark;
  return bytes;
}

/** Decodes the first 17 bytes of an etcd bucket key back into a revision. */
export function decodeRevision(bytes: Uint8Array): Revision {
  assert(bytes.length >= revisionBytes, () => `revision key needs ${revisionBytes} bytes, saw ${bytes.length}`);
  return { main: readUint64(bytes, 0), sub: readUint64(bytes, 9) };
}

const twoTo32 = 0x1_0000_0000;

/**
 * Writes a safe non-negative integer as a big-endian uint64 at `offset`, byte by byte: no BigInt
 * and no DataView, so it works on any view (scratch bytes included) and costs no allocation.
 */
export function writeUint64(bytes: Uint8Array, offset: number, value: number): void {
  const high = Math.floor(value / twoTo32);
  const low = value >>> 0;
  bytes[offset] = high >>> 24;
  bytes[offset + 1] = (high >>> 16) & 0xff;
  bytes[offset + 2] = (high >>> 8) & 0xff;
  bytes[offset + 3] = high & 0xff;
  bytes[offset + 4] = low >>> 24;
  bytes[offset + 5] = (low >>> 16) & 0xff;
  bytes[offset + 6] = (low >>> 8) & 0xff;
  bytes[offset + 7] = low & 0xff;
}

/** Reads a big-endian uint64 at `offset` that must fit a safe integer. */
export function readUint64(bytes: Uint8Array, offset: number): number {
  const high =
    ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
  const low =
    ((bytes[offset + 4]! << 24) | (bytes[offset + 5]! << 16) | (bytes[offset + 6]! << 8) | bytes[offset + 7]!) >>> 0;
  const value = high * twoTo32 + low;
  assert(Number.isSafeInteger(value), () => `stored uint64 at offset ${offset} exceeds 2^53`);
  return value;
}
