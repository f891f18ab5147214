/**
 * v3lockpb and v3electionpb messages between proto-loader's wire objects (see src/api/proto-wire.ts:
 * 64-bit integers as decimal strings, bytes as Buffer, a missing message field as null) and the
 * recipes' domain types.
 */
import {
  headerToWire,
  keyValueToWire,
  type WireHeader,
  type WireKeyValue,
  type WireLong,
  type WireMessage,
} from '../api/proto-wire.js';
import type { ResponseHeader } from '../api/types.js';
import type { CampaignRequest, LeaderKey, LeaderState } from './election.js';
import type { LockRequest } from './lock.js';

export interface WireLeaderKey {
  name: Uint8Array;
  key: Uint8Array;
  rev: WireLong;
  lease: WireLong;
}

export interface WireLockRequest {
  name: Uint8Array;
  lease: WireLong;
}

export interface WireUnlockRequest {
  key: Uint8Array;
}

export interface WireCampaignRequest {
  name: Uint8Array;
  lease: WireLong;
  value: Uint8Array;
}

export interface WireProclaimRequest {
  leader: WireLeaderKey | null | undefined;
  value: Uint8Array;
}

export interface WireLeaderRequest {
  name: Uint8Array;
}

export interface WireResignRequest {
  leader: WireLeaderKey | null | undefined;
}

export interface WireLockResponse {
  header: WireHeader;
  key: Uint8Array;
}

export interface WireCampaignResponse {
  header: WireHeader;
  leader: WireLeaderKey;
}

export interface WireLeaderResponse {
  header: WireHeader;
  kv: WireKeyValue;
}

/** UnlockResponse, ProclaimResponse and ResignResponse: a header alone. */
export interface WireHeaderOnlyResponse {
  header: WireHeader;
}

const emptyBytes = new Uint8Array(0);

function bytes(value: Uint8Array | null | undefined): Uint8Array {
  return value ?? emptyBytes;
}

function bigIntOf(value: WireLong | null | undefined): bigint {
  return value === undefined || value === null || value === '' ? 0n : BigInt(value);
}

function numberOf(value: WireLong | null | undefined): number {
  return value === undefined || value === null || value === '' ? 0 : Number(value);
}

/** Casts a typed wire object to what the gRPC layer passes around. */
function message(wire: object): WireMessage {
  return wire as WireMessage;
}

export function lockRequestFromWire(wire: WireMessage): LockRequest {
  const request = wire as unknown as WireLockRequest;
  return { name: bytes(request.name), lease: bigIntOf(request.lease) };
}

export function unlockKeyFromWire(wire: WireMessage): Uint8Array {
  return bytes((wire as unknown as WireUnlockRequest).key);
}

export function campaignRequestFromWire(wire: WireMessage): CampaignRequest {
  const request = wire as unknown as WireCampaignRequest;
  return { name: bytes(request.name), lease: bigIntOf(request.lease), value: bytes(request.value) };
}

/** Undefined when the request carries no leader, which Proclaim and Resign refuse. */
export function leaderKeyFromWire(wire: WireLeaderKey | null | undefined): LeaderKey | undefined {
  if (wire === undefined || wire === null) return undefined;
  return { name: bytes(wire.name), key: bytes(wire.key), rev: numberOf(wire.rev), lease: bigIntOf(wire.lease) };
}

export function proclaimRequestFromWire(wire: WireMessage): { leader: LeaderKey | undefined; value: Uint8Array } {
  const request = wire as unknown as WireProclaimRequest;
  return { leader: leaderKeyFromWire(request.leader), value: bytes(request.value) };
}

export function resignLeaderFromWire(wire: WireMessage): LeaderKey | undefined {
  return leaderKeyFromWire((wire as unknown as WireResignRequest).leader);
}

export function leaderNameFromWire(wire: WireMessage): Uint8Array {
  return bytes((wire as unknown as WireLeaderRequest).name);
}

export function leaderKeyToWire(leader: LeaderKey): WireLeaderKey {
  return { name: leader.name, key: leader.key, rev: String(leader.rev), lease: leader.lease.toString() };
}

export function lockResponseToWire(header: ResponseHeader, key: Uint8Array): WireMessage {
  return message({ header: headerToWire(header), key } satisfies WireLockResponse);
}

export function headerOnlyResponseToWire(header: ResponseHeader): WireMessage {
  return message({ header: headerToWire(header) } satisfies WireHeaderOnlyResponse);
}

export function campaignResponseToWire(header: ResponseHeader, leader: LeaderKey): WireMessage {
  return message({ header: headerToWire(header), leader: leaderKeyToWire(leader) } satisfies WireCampaignResponse);
}

export function leaderResponseToWire(state: LeaderState): WireMessage {
  return message({ header: headerToWire(state.header), kv: keyValueToWire(state.kv) } satisfies WireLeaderResponse);
}
