/**
 * The member's clocks and the timeouts its flags imply: the monotonic lease clock, etcd's request
 * timeout, and the election timeout counted in heartbeat ticks. Several parts need each of them,
 * so they are computed here once rather than in each part.
 */
import type { MemberConfig } from '../../src/config/config.js';
import { requestTimeoutBaseMs } from '../../src/lib/limits.js';

/** One monotonic clock for every lease time, immune to wall-clock jumps. */
export function leaseClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** etcd's request timeout, 5 s plus two election timeouts: how long a proposal, a conf change, a forwarded lease call or a promotion may take. */
export function requestTimeoutMs(config: Pick<MemberConfig, 'electionTimeoutMs'>): number {
  return requestTimeoutBaseMs + 2 * config.electionTimeoutMs;
}

/** The election timeout in heartbeat ticks, at least one. */
export function electionTicksFor(config: MemberConfig): number {
  return Math.max(1, Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs));
}

/** Resolves after `delayMs`; the pause between rounds of a retried call. */
export function pause(delayMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, delayMs));
}
