/**
 * clientv3's WithRequireLeader, on the server side as etcd's gRPC interceptors do it: a call whose
 * metadata says `hasleader: true` (etcdctl watch sends it) is refused with "etcdserver: no leader"
 * while the member knows no leader, instead of waiting for one. Such a stream that is already open
 * is ended with that error once the member has been without a leader for
 * noLeaderElectionTimeoutsMax election timeouts in a row.
 */
import { errors } from '../../../src/api/errors.js';
import { noLeaderElectionTimeoutsMax } from '../../../src/lib/limits.js';
import type { GrpcStreamCall } from './calls.js';
import type { GrpcHandlers, StreamHandler, UnaryContext, UnaryHandler } from './router.js';

/** clientv3's rpctypes.MetadataRequireLeaderKey and MetadataHasLeader. */
const requireLeaderKey = 'hasleader';
const hasLeaderValue = 'true';

function requiresLeader(metadataValue: string | undefined): boolean {
  return metadataValue === hasLeaderValue;
}

/** The member's leader as the interceptors see it, and the streams that asked for one. */
export class LeaderRequirement {
  private readonly streams = new Set<GrpcStreamCall>();
  private leaderlessTimeouts = 0;
  private monitor: NodeJS.Timeout | undefined;

  constructor(private readonly hasLeader: () => boolean) {}

  /** Every handler of `handlers`, refusing calls that require a leader while there is none. */
  guard(handlers: GrpcHandlers, streaming: readonly string[]): GrpcHandlers {
    const guarded: Record<string, UnaryHandler | StreamHandler> = {};
    for (const [method, handler] of Object.entries(handlers) as [string, UnaryHandler | StreamHandler][])
      guarded[method] = streaming.includes(method)
        ? this.guardStream(handler as StreamHandler)
        : this.guardUnary(handler as UnaryHandler);
    return guarded as GrpcHandlers;
  }

  /**
   * Looks every election timeout for a leader, as etcd's monitorLeader; after
   * noLeaderElectionTimeoutsMax looks in a row without one, ends the streams that require one.
   */
  startMonitor(electionTimeoutMs: number): void {
    this.monitor = setInterval(() => this.look(), electionTimeoutMs);
    this.monitor.unref();
  }

  stop(): void {
    clearInterval(this.monitor);
  }

  private look(): void {
    this.leaderlessTimeouts = this.hasLeader() ? 0 : this.leaderlessTimeouts + 1;
    if (this.leaderlessTimeouts < noLeaderElectionTimeoutsMax) return;
    const refusal = errors.noLeader();
    for (const call of this.streams) call.endWithError(refusal.code, refusal.message);
    this.streams.clear();
  }

  private guardUnary(handler: UnaryHandler): UnaryHandler {
    return async (request, context: UnaryContext) => {
      if (requiresLeader(context.header?.(requireLeaderKey)) && !this.hasLeader()) throw errors.noLeader();
      return handler(request, context);
    };
  }

  private guardStream(handler: StreamHandler): StreamHandler {
    return (call: GrpcStreamCall) => {
      if (!requiresLeader(call.metadata.get(requireLeaderKey)[0] as string | undefined)) return handler(call);
      if (!this.hasLeader()) {
        const refusal = errors.noLeader();
        return call.endWithError(refusal.code, refusal.message);
      }
      this.streams.add(call);
      const forget = (): void => void this.streams.delete(call);
      call.once('cancelled', forget);
      call.once('finish', forget);
      handler(call);
    };
  }
}
