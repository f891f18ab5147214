/**
 * The checks etcd's gRPC layer makes on KV requests before anything is proposed, with etcd's
 * errors and in etcd's order, so a client sees the same answer for the same bad request.
 */
import { errors } from './errors.js';
import { varintBytes } from '../lib/protobuf.js';
import { keyToString } from '../lib/bytes.js';
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from './types.js';

/**
 * Bytes etcd's raft envelope adds to a proposed request: the InternalRaftRequest header field
 * (2-byte tag, 1-byte length, an ID tag and a 9-byte varint ID). The request's own field tag and
 * length prefix come on top; see proposalBytes.
 */
export const raftHeaderBytes = 13;

export function checkRangeRequest(request: RangeRequest): void {
  if (request.key.length === 0) throw errors.emptyKey();
}

export function checkPutRequest(request: PutRequest): void {
  if (request.key.length === 0) throw errors.emptyKey();
  if (request.ignoreValue && request.value.length !== 0) throw errors.valueProvided();
  if (request.ignoreLease && request.lease !== 0n) throw errors.leaseProvided();
}

export function checkDeleteRangeRequest(request: DeleteRangeRequest): void {
  if (request.key.length === 0) throw errors.emptyKey();
}

/** Everything etcd checks on a Txn: op counts, empty keys, then duplicate keys per branch. */
export function checkTxnRequest(request: TxnRequest, maxTxnOps: number): void {
  checkTxnOps(request, maxTxnOps);
  checkIntervals(request.success);
  checkIntervals(request.failure);
}

/**
 * A nested txn may use only the op budget its parent left over: etcd passes
 * `maxTxnOps - (largest of the parent's compare/success/failure counts)` down.
 */
function checkTxnOps(request: TxnRequest, maxTxnOps: number): void {
  const opCount = Math.max(request.compare.length, request.success.length, request.failure.length);
  if (opCount > maxTxnOps) throw errors.tooManyOps();
  for (const compare of request.compare) {
    if (compare.key.length === 0) throw errors.emptyKey();
  }
  for (const op of request.success) checkRequestOp(op, maxTxnOps - opCount);
  for (const op of request.failure) checkRequestOp(op, maxTxnOps - opCount);
}

function checkRequestOp(op: RequestOp, maxTxnOps: number): void {
  switch (op.type) {
    case 'range':
      return checkRangeRequest(op.range);
    case 'put':
      return checkPutRequest(op.put);
    case 'deleteRange':
      return checkDeleteRangeRequest(op.deleteRange);
    case 'txn':
      return checkTxnOps(op.txn, maxTxnOps);
  }
}

// ------------------------------------------------------------------------------------------------
// Duplicate keys. Keys are compared as byte strings through latin1, which keeps byte order.
// etcd orders keys "affinely": the empty string sorts after every other key, which makes an
// empty range end mean "to infinity". A delete with range end "\0" therefore covers no key at
// all here, which is what etcd 3.4 does too (it lets `del --from-key a` and `put b` share a txn).
// ------------------------------------------------------------------------------------------------

interface Interval {
  begin: string;
  end: string;
}

function affineCompare(a: string, b: string): number {
  if (a === '') return b === '' ? 0 : 1;
  if (b === '') return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function covers(intervals: readonly Interval[], key: string): boolean {
  return intervals.some((iv) => affineCompare(key, iv.begin) >= 0 && affineCompare(key, iv.end) < 0);
}

function deleteIntervals(ops: readonly RequestOp[]): Interval[] {
  const intervals: Interval[] = [];
  for (const op of ops) {
    if (op.type !== 'deleteRange') continue;
    const begin = keyToString(op.deleteRange.key);
    const end = op.deleteRange.rangeEnd.length === 0 ? begin + '\0' : keyToString(op.deleteRange.rangeEnd);
    intervals.push({ begin, end });
  }
  return intervals;
}

/**
 * Mirrors etcd's checkIntervals: within one branch, no key may be put twice or be both put and
 * deleted. Nested txns are checked first; a key put in both branches of one nested txn is fine,
 * since only one branch runs. Returns the branch's puts and deletes for the enclosing level.
 */
function checkIntervals(ops: readonly RequestOp[]): { puts: Set<string>; deletes: Interval[] } {
  const deletes = deleteIntervals(ops);
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.type !== 'txn') continue;
    const thenBranch = checkIntervals(op.txn.success);
    const elseBranch = checkIntervals(op.txn.failure);
    for (const key of thenBranch.puts) {
      if (puts.has(key) || covers(deletes, key)) throw errors.duplicateKey();
      puts.add(key);
    }
    for (const key of elseBranch.puts) {
      if (puts.has(key) && !thenBranch.puts.has(key)) throw errors.duplicateKey();
      if (covers(deletes, key)) throw errors.duplicateKey();
      puts.add(key);
    }
    deletes.push(...thenBranch.deletes, ...elseBranch.deletes);
  }
  for (const op of ops) {
    if (op.type !== 'put') continue;
    const key = keyToString(op.put.key);
    if (puts.has(key) || covers(deletes, key)) throw errors.duplicateKey();
    puts.add(key);
  }
  return { puts, deletes };
}

// ------------------------------------------------------------------------------------------------
// Request size. etcd refuses a proposal whose marshalled InternalRaftRequest is over
// --max-request-bytes; reads (ranges and read-only txns) are never proposed and never checked.
// ------------------------------------------------------------------------------------------------

/** Size of the raft proposal etcd would build around a request of `messageBytes` bytes. */
export function proposalBytes(messageBytes: number): number {
  return raftHeaderBytes + 1 + varintBytes(messageBytes) + messageBytes;
}

/** Throws etcd's "request is too large" when the proposal would exceed `maxRequestBytes`. */
export function checkProposalSize(messageBytes: number, maxRequestBytes: number): void {
  if (proposalBytes(messageBytes) > maxRequestBytes) throw errors.requestTooLarge();
}
