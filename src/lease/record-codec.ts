/**
 * Byte formats of the backend's lease area, as etcd lays out its "lease" bucket: the key is the
 * lease ID as 8 big-endian bytes, the value is the protobuf leasepb.Lease {ID = 1, TTL = 2}.
 * The remaining-TTL field (3) belongs to lease checkpoints, which tsetcd does not write.
 */

import type { LeaseRecord } from '../mvcc/backend.js';
import { assert } from '../lib/assert.js';

const tagId = 0x08;
const tagTtl = 0x10;
const tagRemainingTtl = 0x18;
/** A varint never needs more than 10 bytes for a 64-bit value. */
const varintBytesMax = 10;
const leaseKeyBytes = 8;

/** The lease ID as etcd's bucket key: its two's complement bits, big-endian. */
export function encodeLeaseKey(id: bigint): Uint8Array {
  const bytes = new Uint8Array(leaseKeyBytes);
  new DataView(bytes.buffer).setBigUint64(0, BigInt.asUintN(64, id));
  return bytes;
}

export function decodeLeaseKey(bytes: Uint8Array): bigint {
  assert(bytes.length === leaseKeyBytes, () => `a lease key has ${leaseKeyBytes} bytes, saw ${bytes.length}`);
  return BigInt.asIntN(64, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0));
}

function pushVarint(out: number[], value: bigint): void {
  let rest = BigInt.asUintN(64, value);
  while (rest >= 0x80n) {
    out.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  out.push(Number(rest));
}

/** leasepb.Lease as gogoproto marshals it: fields in order, zero values left out. */
export function encodeLeaseRecord(record: LeaseRecord): Uint8Array {
  const out: number[] = [];
  if (record.id !== 0n) {
    out.push(tagId);
    pushVarint(out, record.id);
  }
  if (record.ttlSeconds !== 0) {
    out.push(tagTtl);
    pushVarint(out, BigInt(record.ttlSeconds));
  }
  return Uint8Array.from(out);
}

function readVarint(bytes: Uint8Array, start: number): { value: bigint; next: number } {
  let value = 0n;
  for (let i = 0; i < varintBytesMax; i++) {
    const byte = bytes[start + i];
    assert(byte !== undefined, () => `lease record varint at ${start} runs past ${bytes.length} bytes`);
    value |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if (byte < 0x80) return { value: BigInt.asIntN(64, value), next: start + i + 1 };
  }
  throw new Error(`lease record varint at ${start} is longer than ${varintBytesMax} bytes`);
}

/** The inverse of encodeLeaseRecord; a remaining TTL written by etcd's checkpoints is read and dropped. */
export function decodeLeaseRecord(bytes: Uint8Array): LeaseRecord {
  const record: LeaseRecord = { id: 0n, ttlSeconds: 0 };
  let at = 0;
  while (at < bytes.length) {
    const tag = bytes[at]!;
    const { value, next } = readVarint(bytes, at + 1);
    at = next;
    if (tag === tagId) record.id = value;
    else if (tag === tagTtl) record.ttlSeconds = Number(value);
    else assert(tag === tagRemainingTtl, () => `unexpected tag ${tag} in a leasepb.Lease record`);
  }
  return record;
}
