/**
 * The etcd v3 KV API as plain TypeScript types, with etcd's field names in camelCase.
 * Revisions are numbers; lease, member and cluster IDs are int64/uint64 held as bigint;
 * keys and values are bytes. The gRPC layer maps wire messages to these and back.
 */
import type { AlarmMember, AlarmRequest } from '../alarm/alarm-store.js';
import type { AuthRequest, AuthResponse, CallerCredentials } from '../auth/types.js';

export interface KeyValue {
  key: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  value: Uint8Array;
  lease: bigint;
}

export interface ResponseHeader {
  clusterId: bigint;
  memberId: bigint;
  revision: number;
  raftTerm: number;
}

export const enum SortOrder {
  none = 0,
  ascend = 1,
  descend = 2,
}

export const enum SortTarget {
  key = 0,
  version = 1,
  create = 2,
  mod = 3,
  value = 4,
}

export interface RangeRequest {
  key: Uint8Array;
  rangeEnd: Uint8Array;
  limit: number;
  revision: number;
  sortOrder: SortOrder;
  sortTarget: SortTarget;
  serializable: boolean;
  keysOnly: boolean;
  countOnly: boolean;
  minModRevision: number;
  maxModRevision: number;
  minCreateRevision: number;
  maxCreateRevision: number;
}

/** A RangeRequest with etcd's zero values in every field `fields` leaves out. */
export function rangeRequestWith(fields: Partial<RangeRequest>): RangeRequest {
  return {
    key: new Uint8Array(0),
    rangeEnd: new Uint8Array(0),
    limit: 0,
    revision: 0,
    sortOrder: SortOrder.none,
    sortTarget: SortTarget.key,
    serializable: false,
    keysOnly: false,
    countOnly: false,
    minModRevision: 0,
    maxModRevision: 0,
    minCreateRevision: 0,
    maxCreateRevision: 0,
    ...fields,
  };
}

export interface RangeResult {
  kvs: KeyValue[];
  more: boolean;
  count: number;
  /**
   * Only inside a txn: the revision etcd puts in this op's own header (the txn's start revision
   * until its first write, start + 1 after it). Absent means the txn header's revision.
   */
  revision?: number;
}

export interface PutRequest {
  key: Uint8Array;
  value: Uint8Array;
  lease: bigint;
  prevKv: boolean;
  ignoreValue: boolean;
  ignoreLease: boolean;
}

export interface PutResult {
  prevKv?: KeyValue;
  /**
   * Only inside a txn: the revision etcd puts in this op's own header (the txn's start revision
   * until its first write, start + 1 after it). Absent means the txn header's revision.
   */
  revision?: number;
}

/** AuthenticateRequest: a user's name and password, answered with a token. */
export interface AuthenticateRequest {
  name: string;
  password: string;
}

export interface DeleteRangeRequest {
  key: Uint8Array;
  rangeEnd: Uint8Array;
  prevKv: boolean;
}

export interface DeleteRangeResult {
  deleted: number;
  prevKvs: KeyValue[];
  /**
   * Only inside a txn: the revision etcd puts in this op's own header (the txn's start revision
   * until its first write, start + 1 after it). Absent means the txn header's revision.
   */
  revision?: number;
}

export const enum CompareResult {
  equal = 0,
  greater = 1,
  less = 2,
  notEqual = 3,
}

export const enum CompareTarget {
  version = 0,
  create = 1,
  mod = 2,
  value = 3,
  lease = 4,
}

/** One Txn comparison; only the field named by `target` is read. */
export interface Compare {
  result: CompareResult;
  target: CompareTarget;
  key: Uint8Array;
  rangeEnd: Uint8Array;
  version: number;
  createRevision: number;
  modRevision: number;
  value: Uint8Array;
  lease: bigint;
}

export type RequestOp =
  | { type: 'range'; range: RangeRequest }
  | { type: 'put'; put: PutRequest }
  | { type: 'deleteRange'; deleteRange: DeleteRangeRequest }
  | { type: 'txn'; txn: TxnRequest };

/** Nested results carry the store revision after the whole txn, which etcd puts in their headers. */
export type ResponseOp =
  | { type: 'range'; range: RangeResult }
  | { type: 'put'; put: PutResult }
  | { type: 'deleteRange'; deleteRange: DeleteRangeResult }
  | { type: 'txn'; txn: TxnResult };

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

export interface TxnResult {
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface CompactionRequest {
  revision: number;
  physical: boolean;
}

/** A write (or compaction) as it travels through Raft; `id` matches the answer to the waiting client. */
export type ProposalBody =
  LeaseProposalBody | KvProposalBody | MembershipProposalBody | AuthProposalBody | AlarmProposalBody;

/** A request of the Auth service, applied to the auth store on every member. */
export type AuthProposalBody = { type: 'auth'; auth: AuthRequest };

/** etcd's AlarmRequest: raise, disarm or list alarms, through Raft so every member agrees. */
export type AlarmProposalBody = { type: 'alarm'; alarm: AlarmRequest };

/** A lease's remaining TTL as the leader records it (etcd's LeaseCheckpoint); 0 clears it. */
export interface LeaseCheckpoint {
  id: bigint;
  remainingTtlSeconds: number;
}

/** The lease proposals. */
export type LeaseProposalBody =
  | { type: 'leaseGrant'; leaseGrant: { id: bigint; ttlSeconds: number } }
  | { type: 'leaseRevoke'; leaseRevoke: { id: bigint } }
  /** etcd's LeaseCheckpointRequest: remaining TTLs the leader recorded. */
  | { type: 'leaseCheckpoint'; leaseCheckpoint: { checkpoints: LeaseCheckpoint[] } };

/** What applying a lease proposal answers the waiting client with (its header comes from the member). */
export type LeaseProposalResult =
  | { type: 'leaseGrant'; leaseGrant: { id: bigint; ttlSeconds: number } }
  | { type: 'leaseRevoke' }
  | { type: 'leaseCheckpoint' };

/**
 * What the membership applies: a member publishing its name and client URLs once it starts, and
 * the cluster version the leader decided (etcd's PUT of /0/version), both as etcd does.
 */
export type MembershipProposalBody =
  | { type: 'memberAttributes'; memberAttributes: { id: bigint; name: string; clientUrls: string[] } }
  | { type: 'clusterVersion'; clusterVersion: string };

/** The proposals the MVCC store applies itself. */
export type KvProposalBody =
  | { type: 'put'; put: PutRequest }
  | { type: 'deleteRange'; deleteRange: DeleteRangeRequest }
  | { type: 'txn'; txn: TxnRequest }
  | { type: 'compaction'; compaction: CompactionRequest };

export interface Proposal {
  id: number;
  body: ProposalBody;
}

export type ProposalResult =
  | LeaseProposalResult
  | { type: 'memberAttributes' }
  | { type: 'clusterVersion' }
  | { type: 'alarm'; alarm: { alarms: AlarmMember[] } }
  | { type: 'put'; put: PutResult }
  | { type: 'deleteRange'; deleteRange: DeleteRangeResult }
  | { type: 'txn'; txn: TxnResult }
  | { type: 'compaction' }
  | { type: 'auth'; auth: AuthResponse };

/** What the KV service asks of a member; every answer carries the header as of its revision. */
export interface KvService {
  range(request: RangeRequest, caller?: CallerCredentials): Promise<{ header: ResponseHeader; result: RangeResult }>;
  put(request: PutRequest, caller?: CallerCredentials): Promise<{ header: ResponseHeader; result: PutResult }>;
  deleteRange(
    request: DeleteRangeRequest,
    caller?: CallerCredentials,
  ): Promise<{ header: ResponseHeader; result: DeleteRangeResult }>;
  txn(request: TxnRequest, caller?: CallerCredentials): Promise<{ header: ResponseHeader; result: TxnResult }>;
  compact(request: CompactionRequest, caller?: CallerCredentials): Promise<{ header: ResponseHeader }>;
}
