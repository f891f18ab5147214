/**
 * Single-member configuration changes, encoded in entries exactly as etcd's raftpb.ConfChange
 * protobuf (fields 1 ID, 2 Type, 3 NodeID, 4 Context), so logs stay readable by etcd tooling.
 */
import { assert } from '../lib/assert.js';
import type { NodeId } from './types.js';

/** etcd's ConfChangeType numbering. Promoting a learner is an addNode of that learner. */
export const enum ConfChangeType {
  addNode = 0,
  removeNode = 1,
  updateNode = 2,
  addLearnerNode = 3,
}

export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** etcd stores the marshalled member here (the application's payload). */
  context?: Uint8Array;
  /** etcd's deprecated request ID, carried for compatibility. */
  id?: bigint;
}

const varintBytesMax = 10;

function pushVarint(out: number[], value: bigint): void {
  assert(value >= 0n, () => `varint must be unsigned, got ${value}`);
  let rest = value;
  while (rest >= 0x80n) {
    out.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  out.push(Number(rest));
}

function readVarint(bytes: Uint8Array, start: number): { value: bigint; next: number } {
  let value = 0n;
  let shift = 0n;
  for (let i = 0; i < varintBytesMax; i += 1) {
    const byte = bytes[start + i];
    assert(byte !== undefined, 'truncated varint in conf change');
    value |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return { value, next: start + i + 1 };
    shift += 7n;
  }
  throw new Error('conf change varint longer than 10 bytes');
}

/** Encodes a ConfChange as raftpb.ConfChange protobuf bytes. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const out: number[] = [];
  out.push(0x08);
  pushVarint(out, change.id ?? 0n);
  out.push(0x10);
  pushVarint(out, BigInt(change.type));
  out.push(0x18);
  pushVarint(out, change.nodeId);
  const context = change.context;
  if (context && context.length > 0) {
    out.push(0x22);
    pushVarint(out, BigInt(context.length));
    const head = Uint8Array.from(out);
    const result = new Uint8Array(head.length + context.length);
    result.set(head, 0);
    result.set(context, head.length);
    return result;
  }
  return Uint8Array.from(out);
}

/** Decodes raftpb.ConfChange protobuf bytes. */
export function decodeConfChange(bytes: Uint8Array): ConfChange {
  const change: ConfChange = { type: ConfChangeType.addNode, nodeId: 0n };
  let at = 0;
  while (at < bytes.length) {
    const tag = readVarint(bytes, at);
    at = tag.next;
    const field = Number(tag.value >> 3n);
    const wireType = Number(tag.value & 7n);
    if (wireType === 2) {
      const length = readVarint(bytes, at);
      const end = length.next + Number(length.value);
      assert(end <= bytes.length, 'truncated bytes field in conf change');
      if (field === 4) change.context = bytes.slice(length.next, end);
      at = end;
      continue;
    }
    assert(wireType === 0, () => `unexpected wire type ${wireType} in conf change`);
    const value = readVarint(bytes, at);
    at = value.next;
    if (field === 1) change.id = value.value;
    else if (field === 2) change.type = Number(value.value) as ConfChangeType;
    else if (field === 3) change.nodeId = value.value;
  }
  return change;
}
