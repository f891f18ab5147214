/**
 * Loads tsetcd's copy of etcd's .proto files and maps KV wire messages (as @grpc/proto-loader
 * decodes them) to the domain types of ./types.ts and back.
 *
 * Wire objects use camelCase names, 64-bit integers as decimal strings, bytes as Buffer, enums
 * as numbers, and every scalar present (proto3 defaults filled in). Revisions become numbers;
 * lease, member and cluster IDs become bigint, because they use all 64 bits.
 */
import { join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { packageRoot } from '../lib/paths.js';
import { errors } from './errors.js';
import { CompareTarget } from './types.js';
import type {
  Compare,
  CompactionRequest,
  DeleteRangeRequest,
  DeleteRangeResult,
  KeyValue,
  PutRequest,
  PutResult,
  RangeRequest,
  RangeResult,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  TxnRequest,
  TxnResult,
} from './types.js';

/** The proto files tsetcd serves, relative to the proto root. */
export const protoFiles = [
  'etcdserverpb/rpc.proto',
  'v3lockpb/v3lock.proto',
  'v3electionpb/v3election.proto',
  'grpc/health/v1/health.proto',
] as const;

/** Decoding options every tsetcd component must share so wire objects look the same everywhere. */
export const protoLoaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: Number,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

/** Every gRPC service tsetcd registers, with its methods, as `package.Service/Method` paths. */
export const grpcMethods = [
  'etcdserverpb.KV/Range',
  'etcdserverpb.KV/Put',
  'etcdserverpb.KV/DeleteRange',
  'etcdserverpb.KV/Txn',
  'etcdserverpb.KV/Compact',
  'etcdserverpb.Watch/Watch',
  'etcdserverpb.Lease/LeaseGrant',
  'etcdserverpb.Lease/LeaseRevoke',
  'etcdserverpb.Lease/LeaseKeepAlive',
  'etcdserverpb.Lease/LeaseTimeToLive',
  'etcdserverpb.Lease/LeaseLeases',
  'etcdserverpb.Cluster/MemberAdd',
  'etcdserverpb.Cluster/MemberRemove',
  'etcdserverpb.Cluster/MemberUpdate',
  'etcdserverpb.Cluster/MemberList',
  'etcdserverpb.Cluster/MemberPromote',
  'etcdserverpb.Maintenance/Alarm',
  'etcdserverpb.Maintenance/Status',
  'etcdserverpb.Maintenance/Defragment',
  'etcdserverpb.Maintenance/Hash',
  'etcdserverpb.Maintenance/HashKV',
  'etcdserverpb.Maintenance/Snapshot',
  'etcdserverpb.Maintenance/MoveLeader',
  'etcdserverpb.Maintenance/Downgrade',
  'etcdserverpb.Auth/AuthEnable',
  'etcdserverpb.Auth/AuthDisable',
  'etcdserverpb.Auth/AuthStatus',
  'etcdserverpb.Auth/Authenticate',
  'etcdserverpb.Auth/UserAdd',
  'etcdserverpb.Auth/UserGet',
  'etcdserverpb.Auth/UserList',
  'etcdserverpb.Auth/UserDelete',
  'etcdserverpb.Auth/UserChangePassword',
  'etcdserverpb.Auth/UserGrantRole',
  'etcdserverpb.Auth/UserRevokeRole',
  'etcdserverpb.Auth/RoleAdd',
  'etcdserverpb.Auth/RoleGet',
  'etcdserverpb.Auth/RoleList',
  'etcdserverpb.Auth/RoleDelete',
  'etcdserverpb.Auth/RoleGrantPermission',
  'etcdserverpb.Auth/RoleRevokePermission',
  'v3lockpb.Lock/Lock',
  'v3lockpb.Lock/Unlock',
  'v3electionpb.Election/Campaign',
  'v3electionpb.Election/Proclaim',
  'v3electionpb.Election/Leader',
  'v3electionpb.Election/Observe',
  'v3electionpb.Election/Resign',
  'grpc.health.v1.Health/Check',
  'grpc.health.v1.Health/Watch',
] as const;

export type GrpcMethod = (typeof grpcMethods)[number];

/** Methods whose request or response is a stream; the rest are unary. */
export const streamingMethods = [
  'etcdserverpb.Watch/Watch',
  'etcdserverpb.Lease/LeaseKeepAlive',
  'etcdserverpb.Maintenance/Snapshot',
  'v3electionpb.Election/Observe',
  'grpc.health.v1.Health/Watch',
] as const satisfies readonly GrpcMethod[];

export type StreamingMethod = (typeof streamingMethods)[number];
export type UnaryMethod = Exclude<GrpcMethod, StreamingMethod>;

let cachedDefinition: protoLoader.PackageDefinition | undefined;

/** The directory holding the .proto files, inside the installed package. */
export function protoRoot(): string {
  return join(packageRoot(), 'src', 'api', 'proto');
}

/** All services and messages, loaded once per process. */
export function loadProtos(): protoLoader.PackageDefinition {
  cachedDefinition ??= protoLoader.loadSync([...protoFiles], {
    ...protoLoaderOptions,
    includeDirs: [protoRoot()],
  });
  return cachedDefinition;
}

// ------------------------------------------------------------------------------------------------
// Wire shapes (what proto-loader hands us and accepts). Only the KV family is spelled out; other
// services' handlers work on these loosely typed records until they get their own mapping.
// ------------------------------------------------------------------------------------------------

/** A decimal string, as proto-loader renders 64-bit integers. */
export type WireLong = string;
export type WireMessage = Record<string, unknown>;

export interface WireHeader {
  clusterId: WireLong;
  memberId: WireLong;
  revision: WireLong;
  raftTerm: WireLong;
}

export interface WireKeyValue {
  key: Uint8Array;
  createRevision: WireLong;
  modRevision: WireLong;
  version: WireLong;
  value: Uint8Array;
  lease: WireLong;
}

export interface WireRangeRequest {
  key: Uint8Array;
  rangeEnd: Uint8Array;
  limit: WireLong;
  revision: WireLong;
  sortOrder: number;
  sortTarget: number;
  serializable: boolean;
  keysOnly: boolean;
  countOnly: boolean;
  minModRevision: WireLong;
  maxModRevision: WireLong;
  minCreateRevision: WireLong;
  maxCreateRevision: WireLong;
}

export interface WirePutRequest {
  key: Uint8Array;
  value: Uint8Array;
  lease: WireLong;
  prevKv: boolean;
  ignoreValue: boolean;
  ignoreLease: boolean;
}

export interface WireDeleteRangeRequest {
  key: Uint8Array;
  rangeEnd: Uint8Array;
  prevKv: boolean;
}

export interface WireCompare {
  result: number;
  target: number;
  key: Uint8Array;
  targetUnion?: 'version' | 'createRevision' | 'modRevision' | 'value' | 'lease';
  version?: WireLong;
  createRevision?: WireLong;
  modRevision?: WireLong;
  value?: Uint8Array;
  lease?: WireLong;
  rangeEnd: Uint8Array;
}

export interface WireRequestOp {
  request?: 'requestRange' | 'requestPut' | 'requestDeleteRange' | 'requestTxn';
  requestRange?: WireRangeRequest;
  requestPut?: WirePutRequest;
  requestDeleteRange?: WireDeleteRangeRequest;
  requestTxn?: WireTxnRequest;
}

export interface WireTxnRequest {
  compare: WireCompare[];
  success: WireRequestOp[];
  failure: WireRequestOp[];
}

export interface WireCompactionRequest {
  revision: WireLong;
  physical: boolean;
}

export interface WireRangeResponse {
  header: WireHeader;
  kvs: WireKeyValue[];
  more: boolean;
  count: WireLong;
}

export interface WirePutResponse {
  header: WireHeader;
  prevKv?: WireKeyValue;
}

export interface WireDeleteRangeResponse {
  header: WireHeader;
  deleted: WireLong;
  prevKvs: WireKeyValue[];
}

export type WireResponseOp =
  | { responseRange: WireRangeResponse }
  | { responsePut: WirePutResponse }
  | { responseDeleteRange: WireDeleteRangeResponse }
  | { responseTxn: WireTxnResponse };

export interface WireTxnResponse {
  header: WireHeader;
  succeeded: boolean;
  responses: WireResponseOp[];
}

export interface WireCompactionResponse {
  header: WireHeader;
}

// ------------------------------------------------------------------------------------------------
// Scalars
// ------------------------------------------------------------------------------------------------

/** int64 revision or count to number; a value beyond 2^53 only loses precision, never throws. */
function toNumber(value: WireLong | undefined): number {
  return value === undefined || value === '' ? 0 : Number(value);
}

function toBigInt(value: WireLong | undefined): bigint {
  return value === undefined || value === '' ? 0n : BigInt(value);
}

function toBytes(value: Uint8Array | undefined | null): Uint8Array {
  return value ?? new Uint8Array(0);
}

// ------------------------------------------------------------------------------------------------
// Requests: wire -> domain
// ------------------------------------------------------------------------------------------------

export function rangeRequestFromWire(wire: WireRangeRequest): RangeRequest {
  return {
    key: toBytes(wire.key),
    rangeEnd: toBytes(wire.rangeEnd),
    limit: toNumber(wire.limit),
    revision: toNumber(wire.revision),
    sortOrder: wire.sortOrder,
    sortTarget: wire.sortTarget,
    serializable: wire.serializable,
    keysOnly: wire.keysOnly,
    countOnly: wire.countOnly,
    minModRevision: toNumber(wire.minModRevision),
    maxModRevision: toNumber(wire.maxModRevision),
    minCreateRevision: toNumber(wire.minCreateRevision),
    maxCreateRevision: toNumber(wire.maxCreateRevision),
  };
}

export function putRequestFromWire(wire: WirePutRequest): PutRequest {
  return {
    key: toBytes(wire.key),
    value: toBytes(wire.value),
    lease: toBigInt(wire.lease),
    prevKv: wire.prevKv,
    ignoreValue: wire.ignoreValue,
    ignoreLease: wire.ignoreLease,
  };
}

export function deleteRangeRequestFromWire(wire: WireDeleteRangeRequest): DeleteRangeRequest {
  return { key: toBytes(wire.key), rangeEnd: toBytes(wire.rangeEnd), prevKv: wire.prevKv };
}

/** The domain Compare holds every operand; only the one the wire's oneof carries is non-zero. */
export function compareFromWire(wire: WireCompare): Compare {
  return {
    result: wire.result,
    target: wire.target,
    key: toBytes(wire.key),
    rangeEnd: toBytes(wire.rangeEnd),
    version: toNumber(wire.version),
    createRevision: toNumber(wire.createRevision),
    modRevision: toNumber(wire.modRevision),
    value: toBytes(wire.value),
    lease: toBigInt(wire.lease),
  };
}

/**
 * An op with no request set has no domain form; etcd rejects it with "key not found" during
 * validation, so decoding does the same.
 */
export function requestOpFromWire(wire: WireRequestOp): RequestOp {
  switch (wire.request) {
    case 'requestRange':
      return { type: 'range', range: rangeRequestFromWire(wire.requestRange!) };
    case 'requestPut':
      return { type: 'put', put: putRequestFromWire(wire.requestPut!) };
    case 'requestDeleteRange':
      return { type: 'deleteRange', deleteRange: deleteRangeRequestFromWire(wire.requestDeleteRange!) };
    case 'requestTxn':
      return { type: 'txn', txn: txnRequestFromWire(wire.requestTxn!) };
    default:
      throw errors.keyNotFound();
  }
}

export function txnRequestFromWire(wire: WireTxnRequest): TxnRequest {
  return {
    compare: wire.compare.map(compareFromWire),
    success: wire.success.map(requestOpFromWire),
    failure: wire.failure.map(requestOpFromWire),
  };
}

export function compactionRequestFromWire(wire: WireCompactionRequest): CompactionRequest {
  return { revision: toNumber(wire.revision), physical: wire.physical };
}

// ------------------------------------------------------------------------------------------------
// Requests: domain -> wire (for tools and tests that act as clients)
// ------------------------------------------------------------------------------------------------

export function rangeRequestToWire(request: RangeRequest): WireRangeRequest {
  return {
    ...request,
    limit: String(request.limit),
    revision: String(request.revision),
    minModRevision: String(request.minModRevision),
    maxModRevision: String(request.maxModRevision),
    minCreateRevision: String(request.minCreateRevision),
    maxCreateRevision: String(request.maxCreateRevision),
  };
}

export function putRequestToWire(request: PutRequest): WirePutRequest {
  return { ...request, lease: request.lease.toString() };
}

export function compareToWire(compare: Compare): WireCompare {
  const base = { result: compare.result, target: compare.target, key: compare.key, rangeEnd: compare.rangeEnd };
  switch (compare.target) {
    case CompareTarget.version:
      return { ...base, targetUnion: 'version', version: String(compare.version) };
    case CompareTarget.create:
      return { ...base, targetUnion: 'createRevision', createRevision: String(compare.createRevision) };
    case CompareTarget.mod:
      return { ...base, targetUnion: 'modRevision', modRevision: String(compare.modRevision) };
    case CompareTarget.value:
      return { ...base, targetUnion: 'value', value: compare.value };
    case CompareTarget.lease:
      return { ...base, targetUnion: 'lease', lease: compare.lease.toString() };
  }
}

export function requestOpToWire(op: RequestOp): WireRequestOp {
  switch (op.type) {
    case 'range':
      return { request: 'requestRange', requestRange: rangeRequestToWire(op.range) };
    case 'put':
      return { request: 'requestPut', requestPut: putRequestToWire(op.put) };
    case 'deleteRange':
      return { request: 'requestDeleteRange', requestDeleteRange: op.deleteRange };
    case 'txn':
      return { request: 'requestTxn', requestTxn: txnRequestToWire(op.txn) };
  }
}

export function txnRequestToWire(request: TxnRequest): WireTxnRequest {
  return {
    compare: request.compare.map(compareToWire),
    success: request.success.map(requestOpToWire),
    failure: request.failure.map(requestOpToWire),
  };
}

// ------------------------------------------------------------------------------------------------
// Responses: domain -> wire
// ------------------------------------------------------------------------------------------------

export function headerToWire(header: ResponseHeader): WireHeader {
  return {
    clusterId: header.clusterId.toString(),
    memberId: header.memberId.toString(),
    revision: String(header.revision),
    raftTerm: String(header.raftTerm),
  };
}

/** etcd fills only the revision in the headers of ops inside a txn. */
function revisionOnlyHeader(revision: number): WireHeader {
  return headerToWire({ clusterId: 0n, memberId: 0n, revision, raftTerm: 0 });
}

export function keyValueToWire(kv: KeyValue): WireKeyValue {
  return {
    key: kv.key,
    createRevision: String(kv.createRevision),
    modRevision: String(kv.modRevision),
    version: String(kv.version),
    value: kv.value,
    lease: kv.lease.toString(),
  };
}

export function rangeResponseToWire(header: WireHeader, result: RangeResult): WireRangeResponse {
  return { header, kvs: result.kvs.map(keyValueToWire), more: result.more, count: String(result.count) };
}

export function putResponseToWire(header: WireHeader, result: PutResult): WirePutResponse {
  const wire: WirePutResponse = { header };
  if (result.prevKv !== undefined) wire.prevKv = keyValueToWire(result.prevKv);
  return wire;
}

export function deleteRangeResponseToWire(header: WireHeader, result: DeleteRangeResult): WireDeleteRangeResponse {
  return { header, deleted: String(result.deleted), prevKvs: result.prevKvs.map(keyValueToWire) };
}

/**
 * Nested op headers carry only a revision (the op's own, or the txn's); a nested txn's header
 * stays all zero, exactly as etcd 3.4 answers.
 */
function responseOpToWire(op: ResponseOp, txnRevision: number): WireResponseOp {
  switch (op.type) {
    case 'range':
      return { responseRange: rangeResponseToWire(revisionOnlyHeader(op.range.revision ?? txnRevision), op.range) };
    case 'put':
      return { responsePut: putResponseToWire(revisionOnlyHeader(op.put.revision ?? txnRevision), op.put) };
    case 'deleteRange': {
      const header = revisionOnlyHeader(op.deleteRange.revision ?? txnRevision);
      return { responseDeleteRange: deleteRangeResponseToWire(header, op.deleteRange) };
    }
    case 'txn':
      return { responseTxn: txnResultToWire(revisionOnlyHeader(0), op.txn, txnRevision) };
  }
}

function txnResultToWire(header: WireHeader, result: TxnResult, txnRevision: number): WireTxnResponse {
  return {
    header,
    succeeded: result.succeeded,
    responses: result.responses.map((op) => responseOpToWire(op, txnRevision)),
  };
}

export function txnResponseToWire(header: ResponseHeader, result: TxnResult): WireTxnResponse {
  return txnResultToWire(headerToWire(header), result, header.revision);
}

export function compactionResponseToWire(header: ResponseHeader): WireCompactionResponse {
  return { header: headerToWire(header) };
}

// ------------------------------------------------------------------------------------------------
// Responses: wire -> domain (for tools and tests that act as clients)
// ------------------------------------------------------------------------------------------------

export function headerFromWire(wire: WireHeader): ResponseHeader {
  return {
    clusterId: toBigInt(wire.clusterId),
    memberId: toBigInt(wire.memberId),
    revision: toNumber(wire.revision),
    raftTerm: toNumber(wire.raftTerm),
  };
}

export function keyValueFromWire(wire: WireKeyValue): KeyValue {
  return {
    key: toBytes(wire.key),
    createRevision: toNumber(wire.createRevision),
    modRevision: toNumber(wire.modRevision),
    version: toNumber(wire.version),
    value: toBytes(wire.value),
    lease: toBigInt(wire.lease),
  };
}
