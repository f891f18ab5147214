/**
 * Lease calls made through followers of a three-member cluster: only the leader times leases, so
 * a follower must hand keep-alives and TimeToLive to it (etcd does so over the peer port). Real
 * etcd runs first to prove the test; tsetcd must behave the same.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, type ClusterMember } from '../support/cluster.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

/** TTL of the lease kept alive through followers; short so outliving it takes a few seconds. */
const keptTtlSeconds = 4;
/** TTL of the control lease nobody renews; its key must be gone when the kept one's is not. */
const unrenewedTtlSeconds = 2;
/** Pause between keep-alives through followers, well inside the kept lease's TTL. */
const keepAliveIntervalMs = 1_500;
/** How long keep-alives go on: past both TTLs plus the leader's expiry check. */
const keepAliveSpanMs = (keptTtlSeconds + 2) * 1_000;
/** Pause after a keep-alive before TimeToLive must show less than the granted TTL. */
const ttlDropWaitMs = 1_600;
/** A lease ID no one granted. */
const unknownLeaseHex = '7ead00000000beef';

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined
    ? { label: 'tsetcd', skip: sut.skipReason }
    : { label: sut.command.label, command: sut.command },
];

async function etcdctlOk(member: ClusterMember, args: readonly string[]): Promise<string> {
  const result = await runEtcdctl(member.clientUrl, args);
  assert.equal(result.code, 0, `etcdctl ${args.join(' ')} via ${member.name} failed: ${result.stderr}`);
  return result.stdout;
}

async function grantLease(member: ClusterMember, ttlSeconds: number): Promise<string> {
  const output = await etcdctlOk(member, ['lease', 'grant', String(ttlSeconds)]);
  const match = /^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)$/m.exec(output);
  assert.ok(match !== null, `expected a granted lease, saw ${output}`);
  assert.equal(Number(match[2]), ttlSeconds);
  return match[1] as string;
}

async function keepAliveOnce(member: ClusterMember, leaseHex: string): Promise<void> {
  const output = await etcdctlOk(member, ['lease', 'keep-alive', '--once', leaseHex]);
  assert.match(output, new RegExp(`^lease ${leaseHex} keepalived with TTL\\(${keptTtlSeconds}\\)$`, 'm'));
}

async function valueOf(member: ClusterMember, key: string): Promise<string> {
  return etcdctlOk(member, ['get', key, '--print-value-only']);
}

// etcd's cluster and tsetcd's run side by side on their own ports: neither needs the other.
describe('leases through followers on etcd and on tsetcd, side by side', { concurrency: true }, () => {
  for (const target of targets) {
    describe(
      `leases used through followers of a three-member ${target.label} cluster`,
      // Its tests one after another: a suite's concurrency is inherited otherwise.
      { concurrency: 1, ...(target.skip === undefined ? {} : { skip: target.skip }) },
      () => {
        let cluster: Cluster;
        let followers: ClusterMember[];

        before(async () => {
          cluster = await Cluster.start({ command: target.command as MemberCommand });
          followers = cluster.followers(await cluster.leader());
        });

        after(async () => {
          await cluster?.destroy();
        });

        test('a key whose lease is kept alive only through followers outlives its TTL while an unrenewed one expires', async () => {
          const [first, second] = followers as [ClusterMember, ClusterMember];
          const kept = await grantLease(first, keptTtlSeconds);
          const unrenewed = await grantLease(second, unrenewedTtlSeconds);
          await etcdctlOk(first, ['put', 'forward/kept', 'alive', `--lease=${kept}`]);
          await etcdctlOk(second, ['put', 'forward/unrenewed', 'doomed', `--lease=${unrenewed}`]);

          const deadline = Date.now() + keepAliveSpanMs;
          for (let round = 0; Date.now() < deadline; round++) {
            await keepAliveOnce(round % 2 === 0 ? first : second, kept);
            await sleep(keepAliveIntervalMs);
          }
          await keepAliveOnce(second, kept);

          await sleep(ttlDropWaitMs);
          const ttlOutput = await etcdctlOk(first, ['lease', 'timetolive', kept, '--keys']);
          const ttl =
            /^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\), remaining\((-?\d+)s\), attached keys\((\[.*\])\)$/m.exec(
              ttlOutput,
            );
          assert.ok(ttl !== null, `expected a lease's time to live, saw ${ttlOutput}`);
          assert.equal(ttl[1], kept);
          assert.equal(Number(ttl[2]), keptTtlSeconds);
          const remaining = Number(ttl[3]);
          assert.ok(
            remaining > 0 && remaining < keptTtlSeconds,
            `expected 0 < remaining < ${keptTtlSeconds} through a follower, saw ${remaining}`,
          );
          assert.equal(ttl[4], '[forward/kept]');

          for (const member of cluster.members)
            assert.equal(await valueOf(member, 'forward/kept'), 'alive\n', `forward/kept via ${member.name}`);
          assert.equal(await valueOf(first, 'forward/unrenewed'), '', "the unrenewed lease's key should have expired");
          assert.match(
            await etcdctlOk(second, ['lease', 'timetolive', unrenewed]),
            new RegExp(`^lease ${unrenewed} already expired$`, 'm'),
          );
        });

        test('a keep-alive or time-to-live through a follower for an unknown lease reports it not found', async () => {
          const follower = followers[0] as ClusterMember;
          const keepAlive = await runEtcdctl(follower.clientUrl, ['lease', 'keep-alive', '--once', unknownLeaseHex]);
          assert.notEqual(
            keepAlive.code,
            0,
            `expected keep-alive of an unknown lease to fail, saw ${keepAlive.stdout}`,
          );
          assert.match(keepAlive.stderr, /requested lease not found/);
          assert.match(
            await etcdctlOk(follower, ['lease', 'timetolive', unknownLeaseHex]),
            new RegExp(`^lease ${unknownLeaseHex} already expired$`, 'm'),
          );
        });
      },
    );
  }
});
