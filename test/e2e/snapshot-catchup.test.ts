/**
 * A follower cut off long enough that the leader compacted the entries it missed catches up
 * through a snapshot: the leader sends its backend database, the follower installs it and then
 * follows the log again. Three real member processes with --snapshot-count 1000; the follower is
 * killed while more than snapshot-count plus the catch-up entries (5,000, as etcd keeps) are
 * written, restarted, and must then hold every write and agree on HashKV with the others. Real
 * etcd runs first to prove the test; both say in their logs that the follower applied a snapshot
 * and took the cluster version from it, and the follower restarts from it after a kill -9.
 *
 * The in-memory log is bounded by bytes as well: a tsetcd member takes a snapshot once its log
 * grew by 64 MiB since the last compaction and keeps at most 16 MiB of entries behind it, so a log
 * of 1 MiB values never holds the 100,000 entries the count alone allows. At the default count, a
 * follower killed while 90 MiB of values are written finds the entries it missed gone from the
 * leader's log and catches up through a snapshot. Real etcd keeps its 5,000 catch-up entries
 * whatever their size, so that part is ours alone.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { KvConnection } from '../../bench/kv-client.js';
import { assertHashesAgree, Cluster, type ClusterMember, pollUntil } from '../support/cluster.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const snapshotCount = 1_000;
/** More entries than the leader keeps behind its snapshot (5,000) plus one snapshot's worth. */
const putsWhileFollowerDown = 7_500;
/** Puts in flight at once while the follower is down. */
const putsInFlight = 32;
const putDeadlineMs = 5_000;
/** Bound on the restarted follower catching up. */
const catchUpWaitMs = 30_000;
/** What each system logs when a follower installs a snapshot from the leader. */
const appliedSnapshotLog: Record<string, RegExp> = {
  etcd: /finished applying incoming snapshot/,
  tsetcd: /applied snapshot from the leader/,
};
/** What each system logs when the cluster version comes with an installed snapshot (etcd's Recover; capnslog for etcd here). */
const versionFromSnapshotLog: Record<string, RegExp> = {
  etcd: /set the cluster version to 3\.4 from store/,
  tsetcd: /"cluster-version":"3\.4"[^\n]*"msg":"set cluster version from store"/,
};

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined
    ? { label: 'tsetcd', skip: sut.skipReason }
    : { label: sut.command.label, command: sut.command },
];

// etcd's cluster and tsetcd's run side by side on their own ports: neither needs the other.
describe('snapshot catch-up on etcd and on tsetcd, side by side', { concurrency: true }, () => {
  for (const target of targets) {
    describe(
      `a three-member ${target.label} cluster with --snapshot-count ${snapshotCount}`,
      // Its tests one after another: a suite's concurrency is inherited otherwise.
      { concurrency: 1, ...(target.skip === undefined ? {} : { skip: target.skip }) },
      () => {
        let cluster: Cluster;

        before(async () => {
          cluster = await Cluster.start({
            command: target.command as MemberCommand,
            extraFlags: ['--snapshot-count', String(snapshotCount)],
          });
        });

        after(async () => {
          await cluster?.destroy();
        });

        test('a follower that missed more than the leader keeps catches up through a snapshot', async (t) => {
          const { follower } = await writeWhileFollowerDown(
            t,
            cluster,
            putsWhileFollowerDown,
            keyOf,
            (i) => Buffer.from(valueOf(i)),
            putsInFlight,
          );
          const restartedMs = Date.now();
          const logOffset = statSync(follower.logPath).size;
          await follower.restart();
          const client = new Etcd3({ hosts: follower.clientUrl });
          try {
            await pollUntil(`${follower.describe()} to serve the last put`, catchUpWaitMs, async () => {
              const value = await client
                .get(keyOf(putsWhileFollowerDown - 1))
                .serializable(true)
                .string()
                .catch((error: Error) => error.message);
              return value === valueOf(putsWhileFollowerDown - 1) ? '' : String(value);
            });
            t.diagnostic(
              `${target.label}: ${follower.name} caught up ${Date.now() - restartedMs} ms after its restart began`,
            );
            const stored = await client.getAll().prefix('snap/').serializable(true).strings();
            const wrong = Array.from({ length: putsWhileFollowerDown }, (_, i) => i).filter(
              (i) => stored[keyOf(i)] !== valueOf(i),
            );
            assert.equal(
              wrong.length,
              0,
              `${follower.describe()} lacks ${wrong.length} puts, e.g. ${wrong.slice(0, 5).map(keyOf).join(', ')}`,
            );
            // The follower keeps following the log after the snapshot.
            await client.put('after-snapshot').value('yes').exec();
          } finally {
            client.close();
          }
          const log = readFileSync(follower.logPath, 'utf8');
          const expected = appliedSnapshotLog[target.label] ?? appliedSnapshotLog.tsetcd!;
          assert.match(log, expected, `${follower.describe()} should say it applied a snapshot from the leader`);
          // The follower had no snapshot of its own: the cluster version came with the leader's.
          assert.match(
            readFileSync(follower.logPath).subarray(logOffset).toString('utf8'),
            versionFromSnapshotLog[target.label] ?? versionFromSnapshotLog.tsetcd!,
            `${follower.describe()} should take the cluster version from the snapshot`,
          );
          // etcd's metrics saw the database arrive (stored and fsynced once) and the install end.
          const metrics = await (await fetch(`${follower.clientUrl}/metrics`)).text();
          const sample = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
          assert.deepEqual(
            {
              saved: sample('etcd_snap_db_save_total_duration_seconds_count'),
              fsynced: sample('etcd_snap_db_fsync_duration_seconds_count'),
              applying: sample('etcd_server_snapshot_apply_in_progress_total'),
            },
            { saved: 1, fsynced: 1, applying: 0 },
            `${follower.describe()} counts the received snapshot database`,
          );
          await assertHashesAgree(cluster, catchUpWaitMs);
          // What the snapshot installed survives a crash of the follower: it restarts from it.
          await follower.kill9();
          await follower.restart();
          const again = new Etcd3({ hosts: follower.clientUrl });
          try {
            await pollUntil(`${follower.describe()} to serve after its restart`, catchUpWaitMs, async () =>
              (await again
                .get('after-snapshot')
                .string()
                .catch((error: Error) => error.message)) === 'yes'
                ? ''
                : 'not yet',
            );
            const stored = await again.getAll().prefix('snap/').serializable(true).strings();
            assert.equal(
              Object.keys(stored).length,
              putsWhileFollowerDown,
              `${follower.describe()} keys after restarting from the snapshot`,
            );
          } finally {
            again.close();
          }
          await assertHashesAgree(cluster, catchUpWaitMs);
        });
      },
    );
  }
});

describe(
  'a three-member tsetcd cluster writing 1 MiB values',
  sut.command === undefined ? { skip: sut.skipReason } : {},
  () => {
    let cluster: Cluster;

    before(async () => {
      cluster = await Cluster.start({ command: sut.command as MemberCommand });
    });

    after(async () => {
      await cluster?.destroy();
    });

    test('snapshots by log size at the default snapshot count, and a follower behind that catches up from the snapshot', async (t) => {
      const { leader, follower } = await writeWhileFollowerDown(
        t,
        cluster,
        bigPuts,
        bigKeyOf,
        bigValueOf,
        bigPutsInFlight,
      );
      assert.match(
        readFileSync(leader.logPath, 'utf8'),
        /saved snapshot/,
        `${leader.describe()} should have taken a snapshot by log size`,
      );
      // Healthy means caught up with the leader's commit, here through a 90 MiB database: the
      // catch-up bound, not a plain restart's (a loaded run took 20 s to receive and apply it).
      follower.spawn();
      await follower.waitHealthy(bigCatchUpWaitMs);
      const client = new Etcd3({ hosts: follower.clientUrl });
      try {
        const last = bigPuts - 1;
        await pollUntil(`${follower.describe()} to serve the last put`, bigCatchUpWaitMs, async () => {
          const value = await client
            .get(bigKeyOf(last))
            .serializable(true)
            .buffer()
            .catch((error: Error) => error);
          return value instanceof Error ? value.message : value?.equals(bigValueOf(last)) === true ? '' : 'not yet';
        });
        for (let i = 0; i < bigPuts; i++) {
          const value = await client.get(bigKeyOf(i)).serializable(true).buffer();
          assert.ok(value?.equals(bigValueOf(i)), `${follower.describe()} holds the wrong value for ${bigKeyOf(i)}`);
        }
      } finally {
        client.close();
      }
      assert.match(
        readFileSync(follower.logPath, 'utf8'),
        /applied snapshot from the leader/,
        `${follower.describe()} should have caught up through a snapshot`,
      );
      await assertHashesAgree(cluster, bigCatchUpWaitMs);
    });
  },
);

const keyOf = (i: number): string => `snap/${String(i).padStart(5, '0')}`;
const valueOf = (i: number): string => `value-${i}`;

const valueBytes = 1024 * 1024;
/** 90 MiB of values: past the 64 MiB growth that triggers a snapshot, and far past the 16 MiB kept. */
const bigPuts = 90;
const bigPutsInFlight = 4;
const bigCatchUpWaitMs = 60_000;
const bigKeyOf = (i: number): string => `big/${String(i).padStart(3, '0')}`;
/** Each value is distinct, so a value stored under the wrong key is caught. */
const bigValueOf = (i: number): Buffer => Buffer.alloc(valueBytes, `${i}:`);

/**
 * Kills a follower, then makes `count` puts through the leader, `inFlight` at a time; every one
 * must be acknowledged. The follower stays down for the caller to restart.
 */
async function writeWhileFollowerDown(
  t: TestContext,
  cluster: Cluster,
  count: number,
  key: (i: number) => string,
  value: (i: number) => Buffer,
  inFlight: number,
): Promise<{ leader: ClusterMember; follower: ClusterMember }> {
  const leader = await cluster.leader();
  const [follower] = cluster.followers(leader);
  assert.ok(follower !== undefined, 'expected a follower');
  await follower.kill9();
  const startedMs = Date.now();
  const connection = new KvConnection(leader.clientUrl);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await connection.put(Buffer.from(key(i)), value(i), putDeadlineMs);
    }
  };
  try {
    await Promise.all(Array.from({ length: inFlight }, worker));
  } finally {
    connection.close();
  }
  t.diagnostic(`${count} puts while ${follower.name} was down took ${Date.now() - startedMs} ms`);
  return { leader, follower };
}
