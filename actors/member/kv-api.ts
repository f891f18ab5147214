/**
 * The KV API as etcd's v3_server.go serves it: writes are checked against the backend quota and
 * proposed through Raft, and answered with the revision their own apply left the store at;
 * linearizable reads (and read-only txns) wait for Raft's ReadIndex and are served once the read
 * index is applied; serializable reads are served from the local store at once. Every answer
 * carries a response header, which the other fronts (lease, cluster, maintenance) use too.
 */
import { errors } from '../../src/api/errors.js';
import { isTxnReadOnly, isTxnSerializable } from '../../src/api/txn-read-only.js';
import type {
  CompactionRequest,
  DeleteRangeRequest,
  DeleteRangeResult,
  KvService,
  PutRequest,
  PutResult,
  RangeRequest,
  RangeResult,
  ResponseHeader,
  TxnRequest,
  TxnResult,
} from '../../src/api/types.js';
import type { ReadIndexQueue } from '../../src/server/read-index-queue.js';
import type { Waiter } from '../../src/server/waiters.js';
import type { MemberLifecycle } from '../../machines/member-lifecycle.js';
import type { RawNode } from '../../machines/raw-node.js';
import type { MemberIdentity } from './bootstrap.js';
import type { KeySpace } from './key-space.js';
import { putCostBytes, txnCostBytes, type BackendQuota } from './quota.js';
import type { RaftLoop } from './raft-loop.js';

/** What the KV front needs from the rest of the member, each given at construction. */
export interface KvFrontParts {
  identity: MemberIdentity;
  keySpace: Pick<KeySpace, 'store' | 'backend'>;
  raft: Pick<RawNode, 'status'>;
  loop: Pick<RaftLoop, 'propose' | 'wake'>;
  reads: ReadIndexQueue<Waiter<void>>;
  quota: Pick<BackendQuota, 'check'>;
  lifecycle: MemberLifecycle;
}

export class KvFront implements KvService {
  constructor(private readonly parts: KvFrontParts) {}

  /** The header every response carries, as of the store's current revision. */
  header(): ResponseHeader {
    const { identity } = this.parts;
    return {
      clusterId: identity.clusterId,
      memberId: identity.memberId,
      revision: this.parts.keySpace.store.currentRevision,
      raftTerm: this.parts.raft.status().term,
    };
  }

  /** The header of a write's answer: the revision its own apply left the store at. */
  headerAt(revision: number): ResponseHeader {
    return { ...this.header(), revision };
  }

  async range(request: RangeRequest): Promise<{ header: ResponseHeader; result: RangeResult }> {
    if (!request.serializable) await this.linearizableBarrier();
    const result = this.parts.keySpace.store.range(request);
    return { header: this.header(), result };
  }

  async put(request: PutRequest): Promise<{ header: ResponseHeader; result: PutResult }> {
    await this.parts.quota.check(putCostBytes(request));
    const { result: outcome, revision } = await this.parts.loop.propose({ type: 'put', put: request });
    return { header: this.headerAt(revision), result: (outcome as { put: PutResult }).put };
  }

  async deleteRange(request: DeleteRangeRequest): Promise<{ header: ResponseHeader; result: DeleteRangeResult }> {
    const { result: outcome, revision } = await this.parts.loop.propose({ type: 'deleteRange', deleteRange: request });
    return { header: this.headerAt(revision), result: (outcome as { deleteRange: DeleteRangeResult }).deleteRange };
  }

  async txn(request: TxnRequest): Promise<{ header: ResponseHeader; result: TxnResult }> {
    if (isTxnReadOnly(request)) {
      // A read-only txn needs no log entry, only a linearizable read point unless every range in
      // it is serializable, as in etcd.
      if (!isTxnSerializable(request)) await this.linearizableBarrier();
      return { header: this.header(), result: this.parts.keySpace.store.txn(request) };
    }
    await this.parts.quota.check(txnCostBytes(request));
    const { result: outcome, revision } = await this.parts.loop.propose({ type: 'txn', txn: request });
    return { header: this.headerAt(revision), result: (outcome as { txn: TxnResult }).txn };
  }

  async compact(request: CompactionRequest): Promise<{ header: ResponseHeader }> {
    const { revision } = await this.parts.loop.propose({ type: 'compaction', compaction: request });
    if (request.physical) await this.parts.keySpace.backend.flush();
    return { header: this.headerAt(revision) };
  }

  /** etcd's HashKV over the store at `revision` (0: current). */
  hashKv(revision: number): { hash: number; revision: number; compactRevision: number } {
    return this.parts.keySpace.store.hashKV(revision);
  }

  /** Resolves once everything committed before the call is applied (Raft ReadIndex). */
  linearizableBarrier(): Promise<void> {
    if (this.parts.lifecycle.stopRequested) return Promise.reject(errors.stopped());
    return new Promise<void>((resolve, reject) => {
      this.parts.reads.add({ resolve, reject });
      this.parts.loop.wake();
    });
  }
}
