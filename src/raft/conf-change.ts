/**
 * Single-member configuration changes, encoded in entries exactly as etcd's raftpb.ConfChange
 * protobuf (fields 1 ID, 2 Type, 3 NodeID, 4 Context), so logs stay readable by etcd tooling.
 */
import { fieldKey, protoReaderOf, pushVarint64, wireBytes, wireVarint } from '../lib/protobuf.js';
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

/** Encodes a ConfChange as raftpb.ConfChange protobuf bytes. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const out: number[] = [];
  out.push(0x08);
  pushVarint64(out, change.id ?? 0n);
  out.push(0x10);
  pushVarint64(out, BigInt(change.type));
  out.push(0x18);
  pushVarint64(out, change.nodeId);
  const context = change.context;
  if (context && context.length > 0) {
    out.push(0x22);
    pushVarint64(out, BigInt(context.length));
    const head = Uint8Array.from(out);
    const result = new Uint8Array(head.length + context.length);
    result.set(head, 0);
    result.set(context, head.length);
    return result;
  }
  return Uint8Array.from(out);
}

/** Decodes raftpb.ConfChange protobuf bytes; unknown fields are skipped. */
export function decodeConfChange(bytes: Uint8Array): ConfChange {
  const change: ConfChange = { type: ConfChangeType.addNode, nodeId: 0n };
  const reader = protoReaderOf(bytes);
  while (!reader.done) {
    const key = reader.key();
    if (key === fieldKey(1, wireVarint)) change.id = reader.bigUint64();
    else if (key === fieldKey(2, wireVarint)) change.type = reader.int32() as ConfChangeType;
    else if (key === fieldKey(3, wireVarint)) change.nodeId = reader.bigUint64();
    else if (key === fieldKey(4, wireBytes)) change.context = Uint8Array.from(reader.bytesField());
    else reader.skip(key);
  }
  return change;
}
