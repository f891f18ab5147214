/**
 * The partition harness itself (test/support/partitions.ts), with stand-in members that report
 * which peers they can reach: each kind of partition blocks exactly the peer connections it
 * names, one-way blocks are one-way, heal restores everything, and clients in the root namespace
 * reach every member throughout.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { partitionSupport, startPartitionedCluster, type PartitionedCluster } from '../support/partitions.js';
import type { MemberCommand } from '../support/sut.js';

/** Bound on one round of reachability answers (each attempt gives up after a second). */
const reachWaitMs = 10_000;
const partitionSkip = partitionSupport();
if (partitionSkip !== '') console.log(`# skipping the partition harness test: ${partitionSkip}`);

/** Stand-in members that report which peers they reach, for checking the harness's blocks. */
const reachabilityCommand: MemberCommand = {
  label: 'reachability',
  command: process.execPath,
  args: [fileURLToPath(new URL('../support/reachability-member.js', import.meta.url))],
};

/** `from->to` for every pair of members where `from` opens a TCP connection to `to`'s peer port, asked through each member's client URL. */
async function reachablePairs(cluster: PartitionedCluster): Promise<string[]> {
  const answers = await Promise.all(
    cluster.members.map(async (member) => {
      const response = await fetch(`${member.clientUrl}/reach`, { signal: AbortSignal.timeout(reachWaitMs) });
      const reached = (await response.json()) as Record<string, boolean>;
      return Object.entries(reached)
        .filter(([, yes]) => yes)
        .map(([peer]) => `${member.name}->${peer}`);
    }),
  );
  return answers.flat().sort();
}

describe('the partition harness', partitionSkip === '' ? {} : { skip: partitionSkip }, () => {
  test('blocks exactly the peer connections each kind of partition names, and never the clients', async () => {
    const cluster = await startPartitionedCluster({ command: reachabilityCommand });
    try {
      const all = ['m1->m2', 'm1->m3', 'm2->m1', 'm2->m3', 'm3->m1', 'm3->m2'];
      assert.deepEqual(await reachablePairs(cluster), all, 'before any block');
      await cluster.partition([['m1'], ['m2', 'm3']]);
      assert.deepEqual(await reachablePairs(cluster), ['m2->m3', 'm3->m2'], 'm1 | m2 m3');
      await cluster.heal();
      await cluster.blockOneWay('m1', 'm2');
      assert.deepEqual(
        await reachablePairs(cluster),
        all.filter((p) => p !== 'm1->m2'),
        'm1 -> m2 blocked',
      );
      await cluster.heal();
      await cluster.bridge('m2');
      assert.deepEqual(await reachablePairs(cluster), ['m1->m2', 'm2->m1', 'm2->m3', 'm3->m2'], 'bridge through m2');
      await cluster.isolate('m3');
      assert.deepEqual(await reachablePairs(cluster), ['m1->m2', 'm2->m1'], 'm3 isolated');
      await cluster.cut('m1', 'm2');
      assert.deepEqual(await reachablePairs(cluster), [], 'm3 isolated and m1 cut from m2');
      await cluster.heal();
      assert.deepEqual(await reachablePairs(cluster), all, 'healed');
    } finally {
      await cluster.stop();
    }
  });

  test('runs a five-member cluster beside a three-member one, each on its own subnet, and splits it two against three', async () => {
    const [small, large] = await Promise.all([
      startPartitionedCluster({ command: reachabilityCommand }),
      startPartitionedCluster({ command: reachabilityCommand, size: 5 }),
    ]);
    try {
      const subnet = (cluster: PartitionedCluster): string => cluster.members[0]?.address.replace(/\.\d+$/, '') ?? '';
      assert.notEqual(subnet(small), subnet(large));
      await large.partition([
        ['m1', 'm2'],
        ['m3', 'm4', 'm5'],
      ]);
      const within = ['m1->m2', 'm2->m1', 'm3->m4', 'm3->m5', 'm4->m3', 'm4->m5', 'm5->m3', 'm5->m4'];
      assert.deepEqual(await reachablePairs(large), within, 'm1 m2 | m3 m4 m5');
      assert.equal((await reachablePairs(small)).length, 6, 'the three-member cluster is untouched');
    } finally {
      await Promise.all([small.stop(), large.stop()]);
    }
  });
});
