/**
 * A fresh cluster whose first member's Raft ticks alone for a while (its peers' processes still
 * starting) campaigns with nobody to answer, so its term runs ahead. Once all are linked, its peers
 * fast-forward their election ticks as --initial-election-tick-advance does and most often elect one of
 * themselves at a lower term; with check-quorum (etcd's members always run it, pre-vote off as in
 * etcd 3.4) the run-ahead member answers that leader's appends with its own term, the leader steps
 * down, and a later election at the higher term gives all three one leader. Without that answer
 * the run-ahead member could never learn of the leader nor win a vote from members in their lease.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeId } from '../../src/raft/types.js';
import { Cluster } from './harness.js';

const electionTicks = 50;
/** Ticks the first member runs alone: enough for several lone campaigns. */
const aloneTicks = 6 * electionTicks;
/** etcd's fast-forward: all but two election ticks. */
const advanceTicks = electionTicks - 2;
/**
 * Bound on the ticks until all three agree. etcd 3.4's raft library, in this scenario (300 runs),
 * needed 392 at most: the run-ahead member keeps resetting its peers' timers with campaigns it
 * cannot win, until one of them times out first.
 */
const agreeTicksMax = 12 * electionTicks;
/** Member ID sets run: each set seeds its members' randomized timeouts differently. */
const runs = 40;

/** Whether any of `ids` holds an entry of a term above 0 and below `term`. */
function lowerTermEntryIn(cluster: Cluster, ids: readonly NodeId[], term: number): boolean {
  return ids.some((id) => {
    const { storage } = cluster.member(id);
    const entries = storage.entries(storage.firstIndex(), storage.lastIndex() + 1);
    return entries.some((entry) => entry.term > 0 && entry.term < term);
  });
}

/** Ticks, after all are linked, until every member names the same leader in the same term; undefined when they never do. */
function ticksToAgree(ids: readonly [NodeId, NodeId, NodeId]): {
  ticks: number | undefined;
  aheadTerm: number;
  agreedTerm: number;
  /** Whether a leader below the run-ahead term appended to the peers' logs (its empty entry). */
  lowerLeaderSeen: boolean;
} {
  const cluster = new Cluster([...ids], { electionTicks, checkQuorum: true });
  const [first, ...later] = ids;
  for (const id of later) cluster.isolated.add(id);
  for (let tick = 0; tick < aloneTicks; tick++) {
    cluster.tick(first);
    cluster.stabilize();
  }
  const aheadTerm = cluster.member(first).node.status().term;
  cluster.isolated.clear();
  for (const id of later) cluster.tick(id, advanceTicks);
  cluster.stabilize();
  for (let tick = 1; tick <= agreeTicksMax; tick++) {
    cluster.tickAll();
    cluster.stabilize();
    const statuses = ids.map((id) => cluster.member(id).node.status());
    const [one] = statuses;
    if (
      one !== undefined &&
      one.leaderId !== 0n &&
      statuses.every((s) => s.leaderId === one.leaderId && s.term === one.term)
    )
      return {
        ticks: tick,
        aheadTerm,
        agreedTerm: one.term,
        lowerLeaderSeen: lowerTermEntryIn(cluster, later, aheadTerm),
      };
  }
  return { ticks: undefined, aheadTerm, agreedTerm: 0, lowerLeaderSeen: lowerTermEntryIn(cluster, later, aheadTerm) };
}

test('a member whose term ran ahead while alone does not keep a fresh cluster from agreeing on one leader', () => {
  let lowerLeaderRuns = 0;
  for (let run = 0; run < runs; run++) {
    const ids = [BigInt(3 * run + 1), BigInt(3 * run + 2), BigInt(3 * run + 3)] as const;
    const { ticks, aheadTerm, agreedTerm, lowerLeaderSeen } = ticksToAgree(ids);
    assert.ok(aheadTerm >= 3, `member ${ids[0]} campaigned alone at least three times (term ${aheadTerm})`);
    assert.ok(ticks !== undefined, `members ${ids.join(', ')} agreed on a leader within ${agreeTicksMax} ticks`);
    assert.ok(
      agreedTerm > aheadTerm,
      `the agreed leader's term ${agreedTerm} is above the run-ahead term ${aheadTerm}`,
    );
    if (lowerLeaderSeen) lowerLeaderRuns++;
  }
  // The case that costs most: the peers' own leader at a lower term, which must step down.
  assert.ok(
    lowerLeaderRuns >= runs / 2,
    `the peers first elected a lower-term leader in ${lowerLeaderRuns} of ${runs} runs`,
  );
});
