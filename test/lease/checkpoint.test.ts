import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyLeaseProposal } from '../../src/lease/apply.js';
import { Lessor } from '../../src/lease/lessor.js';
import { MemoryBackend } from '../../src/mvcc/backend.js';
import { KvStore } from '../../src/mvcc/kv-store.js';

const intervalMs = 1_000;
const extendMs = 1_000;

function lessorWith(checkpointIntervalMs?: number): Lessor {
  return Lessor.open(new MemoryBackend(), {
    minTtlSeconds: 1,
    ...(checkpointIntervalMs === undefined ? {} : { checkpointIntervalMs }),
  });
}

/** A leader lessor and a follower lessor that both applied a grant of lease 7 (TTL 60 s) at time 0. */
function leaderAndFollower(checkpointIntervalMs?: number): { leader: Lessor; follower: Lessor } {
  const leader = lessorWith(checkpointIntervalMs);
  const follower = lessorWith(checkpointIntervalMs);
  leader.promote(0, 0);
  leader.applyGrant(7n, 60, 0);
  follower.applyGrant(7n, 60, 0);
  return { leader, follower };
}

describe('lease checkpoints (--experimental-enable-lease-checkpoint)', () => {
  it("the leader records a lease's remaining TTL once per interval, rounded up to whole seconds", () => {
    const { leader } = leaderAndFollower(intervalMs);
    assert.deepEqual(leader.dueCheckpoints(intervalMs - 1), []);
    assert.deepEqual(leader.dueCheckpoints(intervalMs + 400), [{ id: 7n, remainingTtlSeconds: 59 }]);
    // The next one is scheduled only when this one is applied.
    assert.deepEqual(leader.dueCheckpoints(3 * intervalMs), []);
    leader.applyCheckpoint({ id: 7n, remainingTtlSeconds: 59 }, intervalMs + 400);
    assert.deepEqual(leader.dueCheckpoints(2 * intervalMs + 400), [{ id: 7n, remainingTtlSeconds: 58 }]);
  });

  it('a new leader resumes from the recorded remaining TTL instead of the full TTL', () => {
    const { follower } = leaderAndFollower(intervalMs);
    follower.applyCheckpoint({ id: 7n, remainingTtlSeconds: 20 }, 40_000);
    follower.promote(41_000, extendMs);
    assert.equal(follower.timeToLive(7n, 41_000, false).ttlSeconds, 21);
    const without = leaderAndFollower();
    without.follower.promote(41_000, extendMs);
    assert.equal(
      without.follower.timeToLive(7n, 41_000, false).ttlSeconds,
      61,
      'without checkpoints the full TTL restarts',
    );
  });

  it('a renewal after a checkpoint asks for the checkpoint to be cleared everywhere', () => {
    const { leader, follower } = leaderAndFollower(intervalMs);
    leader.applyCheckpoint({ id: 7n, remainingTtlSeconds: 30 }, 30_000);
    follower.applyCheckpoint({ id: 7n, remainingTtlSeconds: 30 }, 30_000);
    assert.equal(leader.renew(7n, 30_500), 60);
    const [clear] = leader.dueCheckpoints(30_500);
    assert.deepEqual(clear, { id: 7n, remainingTtlSeconds: 0 });
    follower.applyCheckpoint(clear!, 30_600);
    follower.promote(31_000, extendMs);
    assert.equal(follower.timeToLive(7n, 31_000, false).ttlSeconds, 61);
    // A second renewal has nothing left to clear.
    leader.renew(7n, 30_700);
    assert.deepEqual(leader.dueCheckpoints(30_700), []);
  });

  it('a lease that expires within the interval, and every lease when checkpoints are off, get none', () => {
    const leader = lessorWith(intervalMs);
    leader.promote(0, 0);
    leader.applyGrant(8n, 1, 0);
    assert.deepEqual(leader.dueCheckpoints(5 * intervalMs), []);
    const off = leaderAndFollower().leader;
    assert.deepEqual(off.dueCheckpoints(10 * 60_000), []);
  });

  it("a follower never proposes checkpoints, and a revoked lease's checkpoint is dropped", () => {
    const { leader, follower } = leaderAndFollower(intervalMs);
    assert.deepEqual(follower.dueCheckpoints(10 * intervalMs), []);
    leader.applyRevoke(7n);
    assert.deepEqual(leader.dueCheckpoints(10 * intervalMs), []);
  });

  it("a committed checkpoint entry is applied to the lessor and moves the store's applied index", () => {
    const backend = new MemoryBackend();
    const store = KvStore.open(backend);
    const follower = Lessor.open(backend, { minTtlSeconds: 1, checkpointIntervalMs: intervalMs });
    follower.applyGrant(7n, 60, 0);
    const result = applyLeaseProposal(
      follower,
      store,
      { index: 5, term: 2 },
      {
        type: 'leaseCheckpoint',
        leaseCheckpoint: {
          checkpoints: [
            { id: 7n, remainingTtlSeconds: 12 },
            { id: 99n, remainingTtlSeconds: 3 },
          ],
        },
      },
      0,
    );
    assert.deepEqual(result, { type: 'leaseCheckpoint' });
    assert.equal(store.consistentIndex, 5);
    follower.promote(1_000, 0);
    assert.equal(follower.timeToLive(7n, 1_000, false).ttlSeconds, 12);
  });
});
