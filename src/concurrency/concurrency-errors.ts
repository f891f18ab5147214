/**
 * etcd's words for lock and election failures. etcd serves these recipes through a client of
 * itself, so every failure, its own or the KV layer's, reaches clients with code UNKNOWN and the
 * message text unchanged.
 */
import { EtcdError, GrpcCode } from '../api/errors.js';

export const concurrencyErrors = {
  /** concurrency.ErrElectionNotLeader: the leader key is gone or was re-created. */
  notLeader: () => new EtcdError(GrpcCode.unknown, 'election: not leader'),
  /** concurrency.ErrElectionNoLeader: nobody campaigns under the name. */
  noLeader: () => new EtcdError(GrpcCode.unknown, 'election: no leader'),
  /** v3election.ErrMissingLeaderKey: Proclaim or Resign without a leader. */
  missingLeaderKey: () => new EtcdError(GrpcCode.unknown, '"leader" field must be provided'),
  /** Go's context.Canceled, for a wait its caller gave up on. */
  canceled: () => new EtcdError(GrpcCode.canceled, 'context canceled'),
} as const;

/** An error as etcd's recipe servers pass it on: EtcdErrors keep their text under code UNKNOWN. */
export function asRecipeError(error: unknown): unknown {
  if (!(error instanceof EtcdError) || error.code === GrpcCode.unknown || error.code === GrpcCode.canceled) return error;
  return new EtcdError(GrpcCode.unknown, error.message);
}
