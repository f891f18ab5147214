/**
 * The gRPC Lease service: etcd's LeaseGrant, LeaseRevoke, LeaseTimeToLive, LeaseLeases (unary)
 * and LeaseKeepAlive (a bidirectional stream), on wire objects, against a LeaseApi the member
 * implements. Answers are shaped as etcd's v3rpc lease server shapes them: a TimeToLive of a
 * lease that does not exist answers TTL -1 rather than an error, and a keepalive of one answers
 * TTL 0 on the stream.
 */
import type * as grpc from '@grpc/grpc-js';
import { headerToWire, type WireMessage } from '../../../src/api/proto-wire.js';
import { errors, EtcdError, GrpcCode } from '../../../src/api/errors.js';
import type { ResponseHeader } from '../../../src/api/types.js';
import type { LeaseTimeToLive } from '../../../src/lease/lessor.js';
import {
  leaseExpiryCheckIntervalMs,
  leaseRevokesPendingMax,
  leaseRevokesPerCheckMax,
} from '../../../src/lib/limits.js';
import type { GrpcHandlers } from './router.js';
import type { CallerCredentials } from '../../../src/auth/types.js';
import type { StreamHandler } from './router.js';

/** What the Lease service asks of a member. Errors are EtcdErrors with etcd's codes and texts. */
export interface LeaseApi {
  /** The header as of now (the store's current revision). */
  header(): ResponseHeader;
  /** Grants through Raft; id 0 asks the member to choose one. Resolves with the TTL granted. */
  grant(id: bigint, ttlSeconds: number, credentials?: CallerCredentials): Promise<{ id: bigint; ttlSeconds: number }>;
  /** Revokes through Raft: the lease and its keys go in one revision. */
  revoke(id: bigint, credentials?: CallerCredentials): Promise<void>;
  /** Restarts the lease's TTL on the leader and resolves with it; rejects leaseNotFound when gone. */
  renew(id: bigint, credentials?: CallerCredentials): Promise<number>;
  /** Rejects leaseNotFound when the lease does not exist. */
  timeToLive(id: bigint, withKeys: boolean, credentials?: CallerCredentials): Promise<LeaseTimeToLive>;
  /** Every lease ID. */
  leases(credentials?: CallerCredentials): Promise<bigint[]>;
}

/** Keepalive requests queued on one stream before it is ended with "too many requests". */
export const keepAliveQueuedMax = 1_024;

/** A wire int64 (a decimal string, or absent as proto3's 0) as a bigint. */
function wireId(value: unknown): bigint {
  if (typeof value === 'string' && value !== '') return BigInt(value);
  if (typeof value === 'number') return BigInt(value);
  return 0n;
}

function wireHeader(api: LeaseApi): WireMessage {
  return headerToWire(api.header()) as unknown as WireMessage;
}

function timeToLiveToWire(api: LeaseApi, result: LeaseTimeToLive): WireMessage {
  return {
    header: wireHeader(api),
    ID: result.id.toString(),
    TTL: String(result.ttlSeconds),
    grantedTTL: String(result.grantedTtlSeconds),
    keys: result.keys.map((key) => Buffer.from(key)),
  };
}

function isLeaseNotFound(error: unknown): boolean {
  return error instanceof EtcdError && error.code === GrpcCode.notFound;
}

/** The unary Lease methods. */
function unaryHandlers(api: LeaseApi): GrpcHandlers {
  return {
    'etcdserverpb.Lease/LeaseGrant': async (wire, context) => {
      const granted = await api.grant(wireId(wire.ID), Number(wireId(wire.TTL)), context);
      return { header: wireHeader(api), ID: granted.id.toString(), TTL: String(granted.ttlSeconds), error: '' };
    },
    'etcdserverpb.Lease/LeaseRevoke': async (wire, context) => {
      await api.revoke(wireId(wire.ID), context);
      return { header: wireHeader(api) };
    },
    'etcdserverpb.Lease/LeaseTimeToLive': async (wire, context) => {
      const id = wireId(wire.ID);
      try {
        return timeToLiveToWire(api, await api.timeToLive(id, wire.keys === true, context));
      } catch (error) {
        if (!isLeaseNotFound(error)) throw error;
        return { header: wireHeader(api), ID: id.toString(), TTL: '-1', grantedTTL: '0', keys: [] };
      }
    },
    'etcdserverpb.Lease/LeaseLeases': async (_wire, context) => {
      const ids = await api.leases(context);
      return { header: wireHeader(api), leases: ids.map((id) => ({ ID: id.toString() })) };
    },
  };
}

/** Answers one keepalive: header taken before the renewal, as etcd, so it never runs ahead of a revoke. */
async function keepAliveOnce(api: LeaseApi, id: bigint, credentials: CallerCredentials): Promise<WireMessage> {
  const header = wireHeader(api);
  let ttlSeconds: number;
  try {
    ttlSeconds = await api.renew(id, credentials);
  } catch (error) {
    if (!isLeaseNotFound(error)) throw error;
    ttlSeconds = 0;
  }
  return { header, ID: id.toString(), TTL: String(ttlSeconds) };
}

function statusOf(error: unknown): Partial<grpc.StatusObject> {
  if (error instanceof EtcdError) return { code: error.code as number, details: error.message };
  return { code: GrpcCode.unknown as number, details: error instanceof Error ? error.message : String(error) };
}

/**
 * LeaseKeepAlive: answers requests one at a time in arrival order; the stream ends when the
 * client ends it, or with the error of a renewal that failed for another reason than not found.
 */
function keepAliveHandler(api: LeaseApi): StreamHandler {
  return (call) => {
    let queued = 0;
    let chain: Promise<void> = Promise.resolve();
    let failed = false;
    const fail = (error: unknown): void => {
      if (failed) return;
      failed = true;
      call.emit('error', statusOf(error));
    };
    call.on('data', (request: WireMessage) => {
      if (failed || call.cancelled) return;
      if (++queued > keepAliveQueuedMax) return fail(errors.tooManyRequests());
      const id = wireId(request.ID);
      chain = chain.then(async () => {
        queued--;
        if (failed || call.cancelled) return;
        try {
          call.write(await keepAliveOnce(api, id, call));
        } catch (error) {
          fail(error);
        }
      });
    });
    call.on('end', () => {
      void chain.then(() => {
        if (!failed && !call.cancelled) call.end();
      });
    });
  };
}

/** Every Lease method, for createGrpcServer's `handlers`. */
export function leaseHandlers(api: LeaseApi): GrpcHandlers {
  return {
    ...unaryHandlers(api),
    'etcdserverpb.Lease/LeaseKeepAlive': keepAliveHandler(api),
  };
}

export interface LeaseExpiryLoopOptions {
  /** Expired leases to revoke now (Lessor.expiredLeases); empty when this member is not leader. */
  expired(nowMs: number, max: number): bigint[];
  /** Proposes the revocation through Raft and resolves once applied. */
  revoke(id: bigint): Promise<void>;
  /** A revocation failed for another reason than the lease being gone already. */
  onError(id: bigint, error: unknown): void;
  /** Proposes the lease checkpoints due now, if any (etcd's checkpointScheduledLeases, same loop). */
  checkpoint?(nowMs: number): void;
  now?: () => number;
  intervalMs?: number;
}

/**
 * The leader's expiry loop, as etcd's: every check interval it takes at most half the revoke rate
 * of expired leases and proposes their revocations, at most leaseRevokesPendingMax in flight.
 * While earlier ones still wait it skips a round, as etcd drops a batch its server is too busy
 * to take; the lessor offers those leases again later.
 */
export class LeaseExpiryLoop {
  private readonly queue: bigint[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: LeaseExpiryLoopOptions) {}

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.check(), this.options.intervalMs ?? leaseExpiryCheckIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  /** Revocations proposed and not yet settled, plus those waiting for a slot. */
  get pending(): number {
    return this.inFlight + this.queue.length;
  }

  /** One round of the loop; the timer calls it, tests may too. */
  check(): void {
    const nowMs = (this.options.now ?? Date.now)();
    this.options.checkpoint?.(nowMs);
    if (this.queue.length > 0) return;
    this.queue.push(...this.options.expired(nowMs, leaseRevokesPerCheckMax));
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < leaseRevokesPendingMax && this.queue.length > 0) {
      const id = this.queue.shift()!;
      this.inFlight++;
      this.options
        .revoke(id)
        .catch((error: unknown) => {
          if (!isLeaseNotFound(error)) this.options.onError(id, error);
        })
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}
