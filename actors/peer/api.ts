/**
 * The member's API to its peers besides Raft, as etcd serves it on the peer port:
 *
 *   GET  /members                 the member list (how a joining member learns its identity)
 *   POST /members/promote/<id>    a follower hands MemberPromote to the leader
 *   POST /leases/renew            a follower hands a keep-alive to the leader (JSON, our members only)
 *   POST /leases/ttl              a follower asks the leader for a lease's TimeToLive
 *   GET  /members/dashboard       the member's own dashboard view (our members only)
 *   GET  /version                 the member's server and cluster versions, as on the client port
 *
 * Calls are plain data (PeerCall in, PeerAnswer out), so the same routes answer over HTTP on the
 * peer port and over the MessagePorts of single-host mode; the transport carries them.
 */
import { errors, EtcdError, GrpcCode } from '../../src/api/errors.js';
import type { LeaseTimeToLive } from '../../src/lease/lessor.js';
import { type ClusterMember, membersToPeerJson } from '../../src/membership/cluster-member.js';
import { versionBody } from '../../src/api/version.js';
import type { PeerAnswer, PeerCall } from './links.js';

export const peerApiPaths = {
  members: '/members',
  promotePrefix: '/members/promote/',
  leaseRenew: '/leases/renew',
  leaseTtl: '/leases/ttl',
  /** etcd's peer HashKV endpoint, which corruption checks call. */
  hashKv: '/members/hashkv',
  /** The member's dashboard view (actors/member/dashboard-view.ts), asked only while a dashboard is open. */
  dashboard: '/members/dashboard',
  /** etcd's peer /version, which the leader reads to decide the cluster version. */
  version: '/version',
} as const;

/** What the routes need from the member. Lease calls throw "not leader" unless its lessor is primary. */
export interface PeerApiHost {
  members(): Iterable<ClusterMember>;
  promoteAsLeader(id: bigint): Promise<ClusterMember[]>;
  renewAsLeader(id: bigint): number;
  timeToLiveAsLeader(id: bigint, withKeys: boolean): LeaseTimeToLive;
  /** HashKV of this member's store at `revision` (0: current); throws etcd's compacted / future revision errors. */
  hashKv(revision: number): PeerHashKv;
  /** This member's dashboard view, as plain JSON data. */
  dashboardView(): object;
  /** The cluster version this member applied ("3.4.0"), or undefined while none is. */
  clusterVersion(): string | undefined;
}

/** A peer's HashKV answer, as the corruption check reads it. */
export interface PeerHashKv {
  memberId: bigint;
  /** The answering member's current revision (its response header's). */
  revision: number;
  hash: number;
  compactRevision: number;
}

const jsonType = 'application/json';
const textType = 'text/plain; charset=utf-8';

/** Answers a peer call, or returns undefined for a path that is not the peer API's (a 404). */
export function servePeerCall(host: PeerApiHost, call: PeerCall): Promise<PeerAnswer> | undefined {
  const { path } = call;
  const isLease = path === peerApiPaths.leaseRenew || path === peerApiPaths.leaseTtl;
  if (path === peerApiPaths.hashKv) return Promise.resolve(serveHashKv(host, call));
  if (path === peerApiPaths.dashboard) return Promise.resolve(serveDashboardView(host, call));
  if (path === peerApiPaths.version) return Promise.resolve(serveVersion(host, call));
  if (path !== peerApiPaths.members && !path.startsWith(peerApiPaths.promotePrefix) && !isLease) return undefined;
  const method = path === peerApiPaths.members ? 'GET' : 'POST';
  if (call.method !== method)
    return Promise.resolve({ status: 405, contentType: textType, body: 'Method Not Allowed\n' });
  if (path === peerApiPaths.members)
    return Promise.resolve({ status: 200, contentType: jsonType, body: membersToPeerJson(host.members()) });
  if (isLease) return serveLeaseCall(host, call);
  return servePromote(host, path.slice(peerApiPaths.promotePrefix.length));
}

function serveVersion(host: PeerApiHost, call: PeerCall): PeerAnswer {
  if (call.method !== 'GET') return { status: 405, contentType: textType, body: 'Method Not Allowed\n' };
  return { status: 200, contentType: jsonType, body: JSON.stringify(versionBody(host.clusterVersion())) };
}

function serveDashboardView(host: PeerApiHost, call: PeerCall): PeerAnswer {
  if (call.method !== 'GET') return { status: 405, contentType: textType, body: 'Method Not Allowed\n' };
  return { status: 200, contentType: jsonType, body: JSON.stringify(host.dashboardView()) };
}

function serveHashKv(host: PeerApiHost, call: PeerCall): PeerAnswer {
  if (call.method !== 'POST') return { status: 405, contentType: textType, body: 'Method Not Allowed\n' };
  try {
    const revision = parseJsonObject(call.body).revision;
    if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0)
      throw new EtcdError(GrpcCode.invalidArgument, `bad revision ${String(revision)}`);
    const answer = host.hashKv(revision);
    return {
      status: 200,
      contentType: jsonType,
      body: JSON.stringify({ ...answer, memberId: answer.memberId.toString() }),
    };
  } catch (error) {
    const { message } = error as Error;
    const code = error instanceof EtcdError ? error.code : GrpcCode.unknown;
    return { status: 400, contentType: jsonType, body: JSON.stringify({ code, message }) };
  }
}

/** A peer's /members/hashkv answer: the hash, or the etcd error it refused with. */
export function hashKvFromPeer(answer: PeerAnswer): PeerHashKv | EtcdError {
  const parsed = JSON.parse(answer.body) as Record<string, unknown>;
  if (answer.status !== 200) return new EtcdError(parsed.code as GrpcCode, String(parsed.message));
  const { memberId, revision, hash, compactRevision } = parsed;
  if (typeof memberId !== 'string' || typeof revision !== 'number' || typeof hash !== 'number')
    throw new Error(`unexpected hashkv answer ${answer.body.slice(0, 200)}`);
  return { memberId: BigInt(memberId), revision, hash, compactRevision: Number(compactRevision) };
}

async function servePromote(host: PeerApiHost, text: string): Promise<PeerAnswer> {
  const id = /^\d{1,20}$/.test(text) ? BigInt(text) : undefined;
  if (id === undefined || id >= 1n << 64n)
    return { status: 404, contentType: textType, body: `member ${text} not found in cluster\n` };
  try {
    return { status: 200, contentType: jsonType, body: membersToPeerJson(await host.promoteAsLeader(id)) };
  } catch (error) {
    return { status: promoteStatusFor(error as Error), contentType: textType, body: `${(error as Error).message}\n` };
  }
}

/** A follower's forwarded renew or timeToLive, answered by the leader's lessor. */
async function serveLeaseCall(host: PeerApiHost, call: PeerCall): Promise<PeerAnswer> {
  try {
    const body = parseJsonObject(call.body);
    const id = parsePeerId(body.id);
    if (id === undefined) throw new EtcdError(GrpcCode.invalidArgument, `bad lease ID ${String(body.id)}`);
    const answer =
      call.path === peerApiPaths.leaseRenew
        ? { ttlSeconds: host.renewAsLeader(id) }
        : timeToLiveToPeerJson(host.timeToLiveAsLeader(id, body.withKeys === true));
    return { status: 200, contentType: jsonType, body: JSON.stringify(answer) };
  } catch (error) {
    const { message } = error as Error;
    const code = error instanceof EtcdError ? error.code : GrpcCode.unknown;
    const status =
      message === errors.leaseNotFound().message ? 404 : message === errors.notLeader().message ? 503 : 500;
    return { status, contentType: jsonType, body: JSON.stringify({ code, message }) };
  }
}

function parseJsonObject(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new EtcdError(GrpcCode.invalidArgument, (error as Error).message);
  }
  if (typeof parsed !== 'object' || parsed === null)
    throw new EtcdError(GrpcCode.invalidArgument, 'expected a JSON object');
  return parsed as Record<string, unknown>;
}

/** A 64-bit ID sent as a decimal string (JSON numbers lose precision past 2^53). */
function parsePeerId(value: unknown): bigint | undefined {
  if (typeof value !== 'string' || !/^\d{1,20}$/.test(value)) return undefined;
  const id = BigInt(value);
  return id < 1n << 64n ? id : undefined;
}

/** The body of a forwarded lease call. */
export function leaseCallBody(id: bigint, withKeys?: boolean): string {
  return JSON.stringify(withKeys === undefined ? { id: id.toString() } : { id: id.toString(), withKeys });
}

/** The leader's renew answer: the lease's TTL in seconds. */
export function renewFromPeerJson(body: string): number {
  const parsed = JSON.parse(body) as { ttlSeconds?: unknown };
  if (typeof parsed.ttlSeconds !== 'number') throw errors.timeout(); // not an answer we understand
  return parsed.ttlSeconds;
}

function timeToLiveToPeerJson(ttl: LeaseTimeToLive): object {
  const keys = ttl.keys.map((key) => Buffer.from(key).toString('base64'));
  return { id: ttl.id.toString(), ttlSeconds: ttl.ttlSeconds, grantedTtlSeconds: ttl.grantedTtlSeconds, keys };
}

/** The leader's TimeToLive answer. */
export function timeToLiveFromPeerJson(body: string): LeaseTimeToLive {
  const parsed = JSON.parse(body) as {
    id?: unknown;
    ttlSeconds?: unknown;
    grantedTtlSeconds?: unknown;
    keys?: unknown;
  };
  const id = parsePeerId(parsed.id);
  const { ttlSeconds, grantedTtlSeconds, keys } = parsed;
  if (
    id === undefined ||
    typeof ttlSeconds !== 'number' ||
    typeof grantedTtlSeconds !== 'number' ||
    !Array.isArray(keys)
  )
    throw errors.timeout();
  return {
    id,
    ttlSeconds,
    grantedTtlSeconds,
    keys: keys.map((key) => new Uint8Array(Buffer.from(String(key), 'base64'))),
  };
}

/**
 * The error a leader's lease answer stands for, passed on to the client as it is (e.g. lease not
 * found); undefined when the call should be retried (not the leader, or an answer we cannot read).
 */
export function leaseRefusal(body: string): EtcdError | undefined {
  let parsed: { code?: unknown; message?: unknown };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    return undefined;
  }
  if (typeof parsed.code !== 'number' || typeof parsed.message !== 'string') return undefined;
  if (parsed.message === errors.notLeader().message || parsed.message === errors.noLeader().message) return undefined;
  return new EtcdError(parsed.code as GrpcCode, parsed.message);
}

/** The HTTP status etcd's promote handler answers an error with. */
function promoteStatusFor(error: Error): number {
  if (error.message === errors.memberNotFound().message) return 404;
  if (error.message === errors.memberNotLearner().message || error.message === errors.learnerNotReady().message)
    return 412;
  if (error.message === errors.notLeader().message) return 503;
  return 500;
}

/** The error a leader's promote answer stands for; undefined when the request should be retried. */
export function promoteRefusal(status: number, body: string): EtcdError | undefined {
  const text = body.trim();
  if (status === 404) return errors.memberNotFound();
  const known = [
    errors.learnerNotReady(),
    errors.memberNotLearner(),
    errors.memberNotEnoughStarted(),
    errors.timeout(),
    errors.stopped(),
  ];
  return known.find((error) => error.message === text);
}
