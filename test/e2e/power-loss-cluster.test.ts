/**
 * Power loss in a three-member tsetcd cluster (see power-loss.test.ts for the single member and
 * the cut itself). Every member journals its WAL; writers put through the leader. Power is cut to
 * all members at once (each member's files cut with its own seed), or to one follower while the
 * others go on. After the restart every acknowledged put is served, the members agree on their
 * hash, and each restarted member logged etcd's restart milestones.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { powerLossJournalEnv } from '../../actors/wal/power-loss-journal.js';
import { assertHashesAgree, Cluster, type ClusterMember } from '../support/cluster.js';
import {
  cutDataDir,
  diagnoseCut,
  logBytes,
  logSince,
  powerCutSkipReason,
  missingPuts,
  unsyncedDamageRefusal,
  waitForMilestones,
  writeFor,
  writeUntilKilled,
  type Cut,
} from '../support/power-loss.js';
import { sutCommand, type MemberCommand } from '../support/sut.js';

/** Writers run until this many puts were acknowledged (or writeMsMax passed), then members are killed. */
const load = { writersCount: 8, acksTarget: 600, writeMsMax: 20_000 };
const seeds = [1, 2, 3];
/** How long writers go on after the follower was killed. */
const followerDownWriteMs = 1_000;
const hashAgreeWaitMs = 15_000;
/** A snapshot every 100 entries, so the cut also meets backend syncs and released WAL segments. */
const flags = ['--snapshot-count', '100'];

const sut = sutCommand();
const skip = powerCutSkipReason(sut, 'its WAL');
const cuts: Cut[] = [...seeds.map((seed) => ({ seed, mode: 'random' as const })), { seed: 0, mode: 'drop-unsynced' }];

function journalDirOf(member: { workDir: string }): string {
  return join(member.workDir, 'journal');
}

function killedCopyOf(member: ClusterMember): string {
  return join(member.workDir, 'killed-data');
}

/** Starts three journaled members and returns the cluster and its leader. */
async function startJournaled(): Promise<{ cluster: Cluster; leader: ClusterMember }> {
  const cluster = await Cluster.start({
    command: sut.command as MemberCommand,
    extraFlags: flags,
    env: (member) => ({ [powerLossJournalEnv]: journalDirOf(member) }),
  });
  return { cluster, leader: await cluster.leader() };
}

/** Keeps a copy of each killed member's files; later starts run without the journal. */
function keepKilledCopies(members: readonly ClusterMember[]): void {
  for (const member of members) {
    member.env = {};
    cpSync(member.dataDir, killedCopyOf(member), { recursive: true });
  }
}

/**
 * Cuts power to `members` (each with its own seed from `cut`) and starts them again: undefined once
 * all are healthy, or the WAL's refusal when one refused on unsynced damage (then all are killed).
 */
async function cutAndRestart(t: TestContext, members: readonly ClusterMember[], cut: Cut): Promise<string | undefined> {
  const started = members.map((member, i) => {
    const memberCut = { mode: cut.mode, seed: cut.seed * 10 + i };
    const report = cutDataDir(journalDirOf(member), member.dataDir, killedCopyOf(member), memberCut);
    diagnoseCut(t, `${member.name} cut ${memberCut.mode} seed ${memberCut.seed}`, report);
    return { member, report, logOffset: logBytes(member.logPath) };
  });
  for (const { member } of started) member.spawn();
  const results = await Promise.allSettled(started.map(({ member }) => member.waitHealthy()));
  const failed = results.findIndex((result) => result.status === 'rejected');
  if (failed >= 0) {
    const { member, report, logOffset } = started[failed]!;
    await Promise.all(members.map((m) => m.kill9()));
    const error = (results[failed] as PromiseRejectedResult).reason as unknown;
    return `${member.name}: ${unsyncedDamageRefusal(logSince(member.logPath, logOffset), report, error)}`;
  }
  for (const { member, logOffset } of started) {
    await waitForMilestones(member.logPath, logOffset, `${member.name} after the cut`);
  }
  return undefined;
}

async function assertAllServed(
  cluster: Cluster,
  acknowledged: ReadonlyMap<string, string>,
  what: string,
): Promise<void> {
  await assertHashesAgree(cluster, hashAgreeWaitMs);
  for (const member of cluster.members) {
    const missing = await missingPuts([member.clientUrl], acknowledged);
    assert.deepEqual(
      missing.slice(0, 10),
      [],
      `${what}: ${member.name} misses ${missing.length} of ${acknowledged.size} acknowledged puts`,
    );
  }
}

test(
  `every acknowledged put survives a power cut of all three tsetcd members at once, seeds ${seeds.join(', ')} and all unsynced lost`,
  skip === undefined ? {} : { skip },
  async (t) => {
    const { cluster, leader } = await startJournaled();
    try {
      const acknowledged = await writeUntilKilled(leader.clientUrl, load, async () => {
        await Promise.all(cluster.members.map((member) => member.kill9()));
      });
      t.diagnostic(`${acknowledged.size} puts acknowledged before kill -9 of all members`);
      assert.ok(acknowledged.size > 0, 'expected some acknowledged puts before the kill, saw none');
      keepKilledCopies(cluster.members);
      for (const cut of cuts) {
        const refusal = await cutAndRestart(t, cluster.members, cut);
        if (refusal !== undefined) {
          assert.equal(cut.mode, 'random', `refused to start with every unsynced change lost: ${refusal}`);
          t.diagnostic(`cut ${cut.mode} seed ${cut.seed}: refused to start: ${refusal}`);
          continue;
        }
        await assertAllServed(cluster, acknowledged, `cut ${cut.mode} seed ${cut.seed}`);
        await Promise.all(cluster.members.map((member) => member.stop()));
      }
    } finally {
      await cluster.destroy();
    }
  },
);

test(
  `every acknowledged put survives a power cut of one tsetcd follower while the others go on, seeds ${seeds.join(', ')} and all unsynced lost`,
  skip === undefined ? {} : { skip },
  async (t) => {
    const { cluster, leader } = await startJournaled();
    try {
      const follower = cluster.followers(leader)[0]!;
      // The follower dies midway; the writers go on through the leader and the other follower.
      const acknowledged = await writeUntilKilled(leader.clientUrl, load, async () => {
        await follower.kill9();
        await writeFor(followerDownWriteMs);
      });
      t.diagnostic(`${acknowledged.size} puts acknowledged, follower ${follower.name} killed midway`);
      keepKilledCopies([follower]);
      for (const cut of cuts) {
        const refusal = await cutAndRestart(t, [follower], cut);
        if (refusal !== undefined) {
          assert.equal(cut.mode, 'random', `refused to start with every unsynced change lost: ${refusal}`);
          t.diagnostic(`cut ${cut.mode} seed ${cut.seed}: refused to start: ${refusal}`);
          continue;
        }
        await assertAllServed(cluster, acknowledged, `follower cut ${cut.mode} seed ${cut.seed}`);
        await follower.stop();
      }
    } finally {
      await cluster.destroy();
    }
  },
);
