/**
 * Loads tsetcd's copy of etcd's .proto files, names the gRPC methods tsetcd serves, and maps the
 * few messages that still go through @grpc/proto-loader (Compact, and the headers and key-values
 * of the watch, lease and cluster answers). Range, Put, DeleteRange and Txn skip this path: they
 * are decoded by request-decoder.ts and encoded by response-encoder.ts.
 *
 * Wire objects use camelCase names, 64-bit integers as decimal strings, bytes as Buffer, enums
 * as numbers, and every scalar present (proto3 defaults filled in). Revisions become numbers;
 * lease, member and cluster IDs become bigint, because they use all 64 bits.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as protoLoader from '@grpc/proto-loader';
import { packageRoot } from '../lib/paths.js';
import type { CompactionRequest, KeyValue, ResponseHeader } from './types.js';

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

/** The streaming methods whose request is a stream too (bidirectional); the others stream only answers. */
export const clientStreamingMethods = [
  'etcdserverpb.Watch/Watch',
  'etcdserverpb.Lease/LeaseKeepAlive',
] as const satisfies readonly StreamingMethod[];
export type UnaryMethod = Exclude<GrpcMethod, StreamingMethod>;

let cachedDefinition: protoLoader.PackageDefinition | undefined;

/** The directory holding the .proto files, inside the installed package. */
export function protoRoot(): string {
  return join(packageRoot(), 'src', 'api', 'proto');
}

/**
 * All services and messages, loaded once per process, on first use: a member serves the KV methods
 * without them, and reading the .proto files with proto-loader and protobufjs is a tenth of its start.
 */
export function loadProtos(): protoLoader.PackageDefinition {
  cachedDefinition ??= (createRequire(import.meta.url)('@grpc/proto-loader') as typeof protoLoader).loadSync(
    [...protoFiles],
    {
      ...protoLoaderOptions,
      includeDirs: [protoRoot()],
    },
  );
  return cachedDefinition;
}

// ------------------------------------------------------------------------------------------------
// Wire shapes (what proto-loader hands us and accepts). Services other than KV work on loosely
// typed records; test/support/kv-proto-wire.ts spells out the KV family for the tests that
// compare the direct codecs with proto-loader.
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

export interface WireCompactionRequest {
  revision: WireLong;
  physical: boolean;
}

export interface WireCompactionResponse {
  header: WireHeader;
}

/** int64 revision or count to number; a value beyond 2^53 only loses precision, never throws. */
function toNumber(value: WireLong | undefined): number {
  return value === undefined || value === '' ? 0 : Number(value);
}

export function compactionRequestFromWire(wire: WireCompactionRequest): CompactionRequest {
  return { revision: toNumber(wire.revision), physical: wire.physical };
}

export function headerToWire(header: ResponseHeader): WireHeader {
  return {
    clusterId: header.clusterId.toString(),
    memberId: header.memberId.toString(),
    revision: String(header.revision),
    raftTerm: String(header.raftTerm),
  };
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

export function compactionResponseToWire(header: ResponseHeader): WireCompactionResponse {
  return { header: headerToWire(header) };
}
