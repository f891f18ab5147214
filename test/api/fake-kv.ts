/**
 * A tiny in-memory KvService for exercising the gRPC layer: latest values only, no history, no
 * leases. Enough for etcdctl and the etcd3 client to put, get, delete, txn and compact.
 */
import { errors } from '../../src/api/errors.js';
import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResult,
  KeyValue,
  KvService,
  PutRequest,
  PutResult,
  RangeRequest,
  RangeResult,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  TxnRequest,
  TxnResult,
} from '../../src/api/types.js';

export const fakeClusterId = 0xd1a2b3c4e5f60718n;
export const fakeMemberId = 0x8e9f0a1b2c3d4e5fn;
export const fakeRaftTerm = 7;

const key = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');

export class FakeKv implements KvService {
  private readonly store = new Map<string, KeyValue>();
  private revision = 1;
  /** Puts and deleted keys so far: a txn that changed nothing keeps the revision, as in etcd. */
  private changes = 0;
  private compacted = 0;
  /** Set to make the next call fail with this error. */
  failNext: Error | undefined;

  private header(): ResponseHeader {
    return { clusterId: fakeClusterId, memberId: fakeMemberId, revision: this.revision, raftTerm: fakeRaftTerm };
  }

  private failIfAsked(): void {
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
  }

  private matching(begin: Uint8Array, end: Uint8Array): KeyValue[] {
    const from = key(begin);
    const to = key(end);
    const inRange = (k: string) => (end.length === 0 ? k === from : to === '\0' ? k >= from : k >= from && k < to);
    return [...this.store.entries()]
      .filter(([k]) => inRange(k))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, kv]) => kv);
  }

  private doRange(request: RangeRequest): RangeResult {
    if (request.revision > this.revision) throw errors.futureRev();
    const all = this.matching(request.key, request.rangeEnd);
    const limited = request.limit > 0 ? all.slice(0, request.limit) : all;
    const kvs = request.countOnly
      ? []
      : limited.map((kv) => (request.keysOnly ? { ...kv, value: new Uint8Array(0) } : kv));
    return { kvs, more: limited.length < all.length, count: all.length };
  }

  private doPut(request: PutRequest, revision: number): PutResult {
    const previous = this.store.get(key(request.key));
    if ((request.ignoreValue || request.ignoreLease) && previous === undefined) throw errors.keyNotFound();
    this.changes += 1;
    this.store.set(key(request.key), {
      key: request.key,
      value: request.ignoreValue ? previous!.value : request.value,
      lease: request.ignoreLease ? previous!.lease : request.lease,
      createRevision: previous?.createRevision ?? revision,
      modRevision: revision,
      version: (previous?.version ?? 0) + 1,
    });
    return request.prevKv && previous ? { prevKv: previous } : {};
  }

  private doDelete(request: DeleteRangeRequest): DeleteRangeResult {
    const victims = this.matching(request.key, request.rangeEnd);
    for (const kv of victims) this.store.delete(key(kv.key));
    this.changes += victims.length;
    return { deleted: victims.length, prevKvs: request.prevKv ? victims : [] };
  }

  private compare(compare: Compare): boolean {
    const kv = this.store.get(key(compare.key));
    const pick = (): [number | string | bigint, number | string | bigint] => {
      switch (compare.target) {
        case 0:
          return [kv?.version ?? 0, compare.version];
        case 1:
          return [kv?.createRevision ?? 0, compare.createRevision];
        case 2:
          return [kv?.modRevision ?? 0, compare.modRevision];
        case 3:
          return [kv ? key(kv.value) : '', key(compare.value)];
        default:
          return [kv?.lease ?? 0n, compare.lease];
      }
    };
    const [left, right] = pick();
    const results = [left === right, left > right, left < right, left !== right];
    return results[compare.result] ?? false;
  }

  private applyOps(ops: readonly RequestOp[], revision: number): ResponseOp[] {
    return ops.map((op): ResponseOp => {
      switch (op.type) {
        case 'range':
          return { type: 'range', range: this.doRange(op.range) };
        case 'put':
          return { type: 'put', put: this.doPut(op.put, revision) };
        case 'deleteRange':
          return { type: 'deleteRange', deleteRange: this.doDelete(op.deleteRange) };
        case 'txn':
          return { type: 'txn', txn: this.applyTxn(op.txn, revision) };
      }
    });
  }

  private applyTxn(request: TxnRequest, revision: number): TxnResult {
    const succeeded = request.compare.every((compare) => this.compare(compare));
    return { succeeded, responses: this.applyOps(succeeded ? request.success : request.failure, revision) };
  }

  async range(request: RangeRequest) {
    this.failIfAsked();
    return { header: this.header(), result: this.doRange(request) };
  }

  async put(request: PutRequest) {
    this.failIfAsked();
    const result = this.doPut(request, this.revision + 1);
    this.revision += 1;
    return { header: this.header(), result };
  }

  async deleteRange(request: DeleteRangeRequest) {
    this.failIfAsked();
    const result = this.doDelete(request);
    if (result.deleted > 0) this.revision += 1;
    return { header: this.header(), result };
  }

  /** A txn that changed anything takes one revision. */
  async txn(request: TxnRequest) {
    this.failIfAsked();
    const changesBefore = this.changes;
    const result = this.applyTxn(request, this.revision + 1);
    if (this.changes !== changesBefore) this.revision += 1;
    return { header: this.header(), result };
  }

  async compact(request: { revision: number }) {
    this.failIfAsked();
    if (request.revision <= this.compacted) throw errors.compacted();
    if (request.revision > this.revision) throw errors.futureRev();
    this.compacted = request.revision;
    return { header: this.header() };
  }
}
