/**
 * Byte formats of the backend's lease area, as etcd lays out its "lease" bucket: the key is the
 * lease ID as 8 big-endian bytes, the value is the protobuf leasepb.Lease {ID = 1, TTL = 2}.
 * The remaining-TTL field (3) belongs to lease checkpoints, which tsetcd does not write.
 */

import type { LeaseRecord } from './backend.js';
import { protoReaderOf, pushVarint64 } from '../lib/protobuf.js';

const tagId = 0x08;
const tagTtl = 0x10;
const tagRemainingTtl = 0x18;
const leaseKeyBytes = 8;

/** The lease ID as etcd's bucket key: its two's complement bits, big-endian. */
export function encodeLeaseKey(id: bigint): Uint8Array {
  const bytes = new Uint8Array(leaseKeyBytes);
  new DataView(bytes.buffer).setBigUint64(0, BigInt.asUintN(64, id));
  return bytes;
}

/** leasepb.Lease as gogoproto marshals it: fields in order, zero values left out. */
export function encodeLeaseRecord(record: LeaseRecord): Uint8Array {
  const out: number[] = [];
  if (record.id !== 0n) {
    out.push(tagId);
    pushVarint64(out, record.id);
  }
  if (record.ttlSeconds !== 0) {
    out.push(tagTtl);
    pushVarint64(out, BigInt(record.ttlSeconds));
  }
  return Uint8Array.from(out);
}

/** The inverse of encodeLeaseRecord; a remaining TTL written by etcd's checkpoints is read and dropped. */
export function decodeLeaseRecord(bytes: Uint8Array): LeaseRecord {
  const record: LeaseRecord = { id: 0n, ttlSeconds: 0 };
  const reader = protoReaderOf(bytes);
  while (!reader.done) {
    const key = reader.key();
    if (key === tagId) record.id = reader.bigInt64();
    else if (key === tagTtl) record.ttlSeconds = reader.int64();
    else if (key === tagRemainingTtl) reader.int64();
    else throw new Error(`unexpected tag ${key} in a leasepb.Lease record`);
  }
  return record;
}
