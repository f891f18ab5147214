/**
 * Which "request timed out" a proposal gets when Raft took it but it was not applied by its
 * request timeout, as etcd's parseProposeCtxErr tells them apart: when a new leader was elected
 * after the request began, and no more than two election timeouts after, the old leader most
 * likely failed with the entry, and the message says so. A proposal Raft never took (no leader all
 * along) fails with the context's own error instead, which the caller decides before this.
 * etcd's third variant, "possibly due to connection lost", rests on when each peer link last came
 * up, which the transport does not record; such proposals get the plain "request timed out".
 */
import { errors, type EtcdError } from '../api/errors.js';

/** The facts the choice rests on, all in one clock's milliseconds. */
export interface ProposalTimeoutFacts {
  /** When the request was made (its deadline less the request timeout). */
  startMs: number;
  /** When this member last saw a new leader elected; undefined when it never has. */
  leaderElectedMs: number | undefined;
  electionTimeoutMs: number;
}

/** etcd's ErrTimeoutDueToLeaderFail when a leader was elected within two election timeouts after the start, else ErrTimeout. */
export function proposalTimeoutError(facts: ProposalTimeoutFacts): EtcdError {
  const { startMs, leaderElectedMs, electionTimeoutMs } = facts;
  if (leaderElectedMs === undefined) return errors.timeout();
  const previousLeaderLostMs = leaderElectedMs - 2 * electionTimeoutMs;
  if (startMs > previousLeaderLostMs && startMs < leaderElectedMs) return errors.timeoutDueToLeaderFail();
  return errors.timeout();
}
