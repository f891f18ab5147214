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
import type { AuthStore } from '../../src/auth/auth-store.js';
import { checkDeleteRange, checkPut, checkRange, checkTxn } from '../../src/auth/enforce.js';
import type { AuthInfo, CallerCredentials } from '../../src/auth/types.js';
import type { AuthFront } from './auth-api.js';
import type { RaftLoop } from './raft-loop.js';

/** What the KV front needs from the rest of the member, each given at construction. */
export interface KvFrontParts {
  /** Who calls, and the auth store the permission checks read; consulted only while auth is enabled. */
  auth: Pick<AuthFront, 'enabled' | 'callerOf' | 'refuseUnknownToken'>;
  identity: MemberIdentity;
  keySpace: Pick<KeySpace, 'store' | 'backend' | 'auth' | 'lessor'>;
  raft: Pick<RawNode, 'status'>;
  loop: Pick<RaftLoop, 'propose' | 'wake'>;
  reads: ReadIndexQueue<Waiter<void>>;
  quota: Pick<BackendQuota, 'check'>;
  lifecycle: MemberLifecycle;
  /** etcd's request timeout: a linearizable read whose read index is not confirmed by then fails. */
  requestTimeoutMs: number;
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

  async range(
    request: RangeRequest,
    credentials?: CallerCredentials,
  ): Promise<{ header: ResponseHeader; result: RangeResult }> {
    if (!request.serializable) await this.linearizableBarrier();
    if (this.parts.auth.enabled) {
      const read = () => this.parts.keySpace.store.range(request);
      return this.readAs(credentials, (auth, caller) => checkRange(auth, caller, request), read);
    }
    if (credentials?.token !== undefined) await this.parts.auth.refuseUnknownToken(credentials);
    const result = this.parts.keySpace.store.range(request);
    return { header: this.header(), result };
  }

  async put(
    request: PutRequest,
    credentials?: CallerCredentials,
  ): Promise<{ header: ResponseHeader; result: PutResult }> {
    await this.parts.quota.check(putCostBytes(request));
    const caller = this.parts.auth.enabled
      ? await this.writerOf(credentials, (auth, who) => checkPut(auth, who, request, this.parts.keySpace.lessor))
      : credentials?.token !== undefined
        ? await this.parts.auth.refuseUnknownToken(credentials)
        : undefined;
    const { result: outcome, revision } = await this.parts.loop.propose({ type: 'put', put: request }, caller);
    return { header: this.headerAt(revision), result: (outcome as { put: PutResult }).put };
  }

  async deleteRange(
    request: DeleteRangeRequest,
    credentials?: CallerCredentials,
  ): Promise<{ header: ResponseHeader; result: DeleteRangeResult }> {
    const caller = this.parts.auth.enabled
      ? await this.writerOf(credentials, (auth, who) => checkDeleteRange(auth, who, request))
      : credentials?.token !== undefined
        ? await this.parts.auth.refuseUnknownToken(credentials)
        : undefined;
    const body = { type: 'deleteRange', deleteRange: request } as const;
    const { result: outcome, revision } = await this.parts.loop.propose(body, caller);
    return { header: this.headerAt(revision), result: (outcome as { deleteRange: DeleteRangeResult }).deleteRange };
  }

  async txn(
    request: TxnRequest,
    credentials?: CallerCredentials,
  ): Promise<{ header: ResponseHeader; result: TxnResult }> {
    const check = (auth: AuthStore, who: AuthInfo | undefined) =>
      checkTxn(auth, who, request, this.parts.keySpace.lessor);
    if (isTxnReadOnly(request)) {
      // A read-only txn needs no log entry, only a linearizable read point unless every range in
      // it is serializable, as in etcd.
      if (!isTxnSerializable(request)) await this.linearizableBarrier();
      const read = () => this.parts.keySpace.store.txn(request);
      if (this.parts.auth.enabled) return this.readAs(credentials, check, read);
      if (credentials?.token !== undefined) await this.parts.auth.refuseUnknownToken(credentials);
      return { header: this.header(), result: read() };
    }
    await this.parts.quota.check(txnCostBytes(request));
    const caller = this.parts.auth.enabled
      ? await this.writerOf(credentials, check)
      : credentials?.token !== undefined
        ? await this.parts.auth.refuseUnknownToken(credentials)
        : undefined;
    const { result: outcome, revision } = await this.parts.loop.propose({ type: 'txn', txn: request }, caller);
    return { header: this.headerAt(revision), result: (outcome as { txn: TxnResult }).txn };
  }

  /** Compaction needs root while auth is enabled, as later etcd releases check; the caller travels with it. */
  async compact(request: CompactionRequest, credentials?: CallerCredentials): Promise<{ header: ResponseHeader }> {
    const caller = this.parts.auth.enabled
      ? await this.parts.auth.callerOf(credentials)
      : credentials?.token !== undefined
        ? await this.parts.auth.refuseUnknownToken(credentials)
        : undefined;
    if (this.parts.auth.enabled) this.parts.keySpace.auth.checkAdmin(caller);
    const { revision } = await this.parts.loop.propose({ type: 'compaction', compaction: request }, caller);
    if (request.physical) await this.parts.keySpace.backend.flush();
    return { header: this.headerAt(revision) };
  }

  /** etcd's HashKV over the store at `revision` (0: current). */
  hashKv(revision: number): { hash: number; revision: number; compactRevision: number } {
    return this.parts.keySpace.store.hashKV(revision);
  }

  /**
   * etcd's doSerialize: a read is checked, served, and refused after all when the auth store
   * changed while it was served.
   */
  private async readAs<T>(
    credentials: CallerCredentials | undefined,
    check: (auth: AuthStore, caller: AuthInfo | undefined) => void,
    read: () => T,
  ): Promise<{ header: ResponseHeader; result: T }> {
    const caller = await this.parts.auth.callerOf(credentials);
    const { auth } = this.parts.keySpace;
    check(auth, caller);
    const result = read();
    if (caller !== undefined && caller.revision !== 0 && caller.revision !== auth.revision)
      throw errors.authOldRevision();
    return { header: this.header(), result };
  }

  /** The caller of a write, checked before proposing; its apply checks again (apply.ts). */
  private async writerOf(
    credentials: CallerCredentials | undefined,
    check: (auth: AuthStore, caller: AuthInfo | undefined) => void,
  ): Promise<AuthInfo | undefined> {
    const caller = await this.parts.auth.callerOf(credentials);
    check(this.parts.keySpace.auth, caller);
    return caller;
  }

  /** Resolves once everything committed before the call is applied (Raft ReadIndex). */
  linearizableBarrier(): Promise<void> {
    if (this.parts.lifecycle.stopRequested) return Promise.reject(errors.stopped());
    return new Promise<void>((resolve, reject) => {
      // As etcd's read loop: without a leader (or a quorum) to confirm the read index, the read
      // fails with "request timed out" after the request timeout instead of waiting forever.
      const timer = setTimeout(() => {
        this.parts.reads.countTimedOut();
        reject(errors.timeout());
      }, this.parts.requestTimeoutMs);
      const settle = (): void => clearTimeout(timer);
      this.parts.reads.add({
        resolve: () => (settle(), resolve()),
        reject: (error) => (settle(), reject(error)),
      });
      this.parts.loop.wake();
    });
  }
}
