/**
 * Three real member processes form one cluster: membership as etcdctl sees it, writes through
 * any member readable through every other, leader kill -9 under concurrent writers with the
 * failover time measured, and crashed members catching up. Real etcd runs alongside to prove
 * the test; tsetcd must behave the same.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { KvConnection } from '../../bench/kv-client.js';
import { assertHashesAgree, Cluster, parseEtcdctlJson, pollUntil, type ClusterMember } from '../support/cluster.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const writersCount = 8;
/** Bound on puts per writer, in case the cluster is very fast. */
const putsPerWriterMax = 3_000;
/** Short so a put stuck on a dead leader gives way to a fresh one soon after the election; it also bounds the failover measurement's resolution. */
const putDeadlineMs = 300;
/** Pause after a failed put, so writers do not spin while there is no leader. */
const retryPauseMs = 20;
/** Acknowledged puts wanted before the kill, and again after each disruption. */
const acksWantedPerPhase = 40;
/** Bound on each wait for writers to make progress. */
const progressWaitMs = 15_000;
/** Bound on a lagging member catching up (its linearizable barrier read succeeding). */
const catchUpWaitMs = 15_000;
/** Deadline of a single read request. */
const readDeadlineMs = 2_000;
/** Bound on members publishing their client URLs after they start. */
const attributesWaitMs = 3_000;
/** Keys written while a follower is down. */
const keysWhileFollowerDownCount = 100;

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined
    ? { label: 'tsetcd', skip: sut.skipReason }
    : { label: sut.command.label, command: sut.command },
];

/**
 * etcd's normalised `member list` output, so tsetcd's can be compared with it: settled by etcd's
 * listing test, or with undefined once etcd's suite ends without one (its cluster did not start).
 */
let settleEtcdListing: (listing: string[] | undefined) => void = () => undefined;
const etcdListing = new Promise<string[] | undefined>((resolve) => {
  settleEtcdListing = resolve;
});

// etcd's cluster and tsetcd's run side by side on their own ports; only tsetcd's member list
// waits for etcd's, to compare with it.
describe('three-member clusters of etcd and of tsetcd, side by side', { concurrency: true }, () => {
  for (const target of targets) {
    describe(
      `a three-member ${target.label} cluster`,
      // Its tests one after another: a suite's concurrency is inherited otherwise.
      { concurrency: 1, ...(target.skip === undefined ? {} : { skip: target.skip }) },
      () => {
        let cluster: Cluster;

        before(async () => {
          cluster = await Cluster.start({ command: target.command as MemberCommand });
        });

        after(async () => {
          if (target.label === 'etcd') settleEtcdListing(undefined);
          await cluster?.destroy();
        });

        test('etcdctl member list through each member shows three started members with their names and URLs', async () => {
          const expected = cluster.members
            .map((m) => `<id>, started, ${m.name}, <peer ${m.name}>, <client ${m.name}>, false`)
            .sort();
          let listing: string[] = [];
          for (const member of cluster.members) {
            // Members publish their client URLs through the log after they start, so allow a moment.
            await pollUntil(`member list through ${member.name} to show every member`, attributesWaitMs, async () => {
              listing = await normalisedMemberList(cluster, member.clientUrl);
              return JSON.stringify(listing) === JSON.stringify(expected) ? '' : listing.join('; ');
            }).catch(() => undefined);
            assert.deepEqual(listing, expected, `member list through ${member.name}`);
          }
          if (target.label === 'etcd') {
            settleEtcdListing(listing);
            return;
          }
          const reference = await etcdListing;
          assert.ok(reference !== undefined, "etcd's member list, to compare with, was not taken");
          assert.deepEqual(listing, reference, 'member list differs from real etcd');
        });

        // etcdctl 3.4 dials each endpoint of these commands with ':authority: http://host:port', which
        // Go's server accepts and strict HTTP/2 servers (nghttp2) refuse; ours must take it as Go does.
        test('etcdctl endpoint status and endpoint hashkv answer for every member given as http:// URLs', async () => {
          const endpoints = cluster.endpoints().join(',');
          for (const command of ['status', 'hashkv']) {
            const result = await runEtcdctl(endpoints, ['endpoint', command, '-w', 'json']);
            assert.equal(
              result.code,
              0,
              `etcdctl --endpoints=${endpoints} endpoint ${command} failed:\n${result.stderr}`,
            );
            const entries = parseEtcdctlJson(result.stdout) as unknown[];
            assert.equal(entries.length, cluster.members.length, `one ${command} per member: ${result.stdout}`);
          }
        });

        test('a write through any member is readable through every member, linearizable and serializable', async () => {
          await withClients(cluster.members, async (clients) => {
            for (const [i, writer] of cluster.members.entries()) {
              await clients[i]!.put(`cross/${writer.name}`)
                .value(`via-${writer.name}`)
                .options({ deadline: Date.now() + readDeadlineMs })
                .exec();
              for (const [j, reader] of cluster.members.entries()) {
                const linearizable = await clients[j]!.get(`cross/${writer.name}`)
                  .options({ deadline: Date.now() + readDeadlineMs })
                  .string();
                assert.equal(
                  linearizable,
                  `via-${writer.name}`,
                  `linearizable read through ${reader.name} of a put through ${writer.name}`,
                );
                // The linearizable read above is the barrier: this member has applied the put now.
                const serializable = await clients[j]!.get(`cross/${writer.name}`).serializable(true).string();
                assert.equal(
                  serializable,
                  `via-${writer.name}`,
                  `serializable read through ${reader.name} of a put through ${writer.name}`,
                );
              }
            }
          });
        });

        test('after kill -9 of the leader under concurrent writers a new leader takes over and no acknowledged put is lost', async (t) => {
          const oldLeader = await cluster.leader();
          const survivors = cluster.followers(oldLeader);
          const writers = new Writers(
            'failover',
            survivors.map((m) => m.clientUrl),
          );
          try {
            await writers.waitForAcks(acksWantedPerPhase, 'before the kill');
            const killedAtMs = Date.now();
            await oldLeader.kill9();
            writers.markDisruption(killedAtMs);
            await writers.waitForAcksAfterDisruption(acksWantedPerPhase, 'after the leader was killed');
            const failoverMs = writers.firstAckAfterDisruptionMs() - killedAtMs;
            t.diagnostic(
              `${target.label} failover: ${failoverMs} ms from kill -9 of ${oldLeader.name} to the first acknowledged put sent after it`,
            );
            const newLeader = await cluster.leader();
            assert.notEqual(newLeader, oldLeader, 'a surviving member leads');
            await oldLeader.restart();
            writers.markDisruption(Date.now());
            await writers.waitForAcksAfterDisruption(acksWantedPerPhase, `after ${oldLeader.name} restarted`);
          } finally {
            await writers.stop();
          }
          t.diagnostic(
            `${target.label}: ${writers.acknowledged.size} puts acknowledged, ${writers.failures} attempts failed`,
          );
          await assertEveryMemberHas(cluster, 'failover/', writers.acknowledged);
          await assertHashesAgree(cluster, catchUpWaitMs);
        });

        test('a follower killed and restarted catches up on the writes it missed', async () => {
          const leader = await cluster.leader();
          const [follower] = cluster.followers(leader);
          assert.ok(follower !== undefined, 'expected a follower');
          await follower.kill9();
          const written = new Map<string, string>();
          await withClients([leader], async ([client]) => {
            for (let i = 0; i < keysWhileFollowerDownCount; i += 1) {
              const key = `missed/${String(i).padStart(4, '0')}`;
              await client!
                .put(key)
                .value(`while-${follower.name}-was-down-${i}`)
                .options({ deadline: Date.now() + readDeadlineMs })
                .exec();
              written.set(key, `while-${follower.name}-was-down-${i}`);
            }
          });
          await follower.restart();
          await assertEveryMemberHas(cluster, 'missed/', written);
          await assertHashesAgree(cluster, catchUpWaitMs);
        });
      },
    );
  }
});

/** `etcdctl member list` lines with IDs and ports replaced by placeholders, sorted. */
async function normalisedMemberList(cluster: Cluster, endpoint: string): Promise<string[]> {
  const result = await runEtcdctl(endpoint, ['member', 'list']);
  assert.equal(result.code, 0, `member list failed: ${result.stderr}`);
  const ids = new Set<string>();
  const lines = result.stdout
    .trim()
    .split('\n')
    .map((line) => {
      const [id, ...rest] = line.split(', ');
      assert.match(id ?? '', /^[0-9a-f]{1,16}$/, `member ID in "${line}"`);
      ids.add(id!);
      let normalised = ['<id>', ...rest].join(', ');
      for (const m of cluster.members) {
        normalised = normalised.replaceAll(m.peerUrl, `<peer ${m.name}>`).replaceAll(m.clientUrl, `<client ${m.name}>`);
      }
      return normalised;
    });
  assert.equal(ids.size, lines.length, `member IDs are distinct: ${result.stdout}`);
  return lines.sort();
}

/** Concurrent writers putting unique keys through the given endpoints until stopped. */
class Writers {
  readonly acknowledged = new Map<string, string>();
  failures = 0;
  private stopped = false;
  private disruptionAtMs = Number.POSITIVE_INFINITY;
  /** Acknowledged puts sent after the latest disruption, and when the first of them was acknowledged. */
  private acksAfterDisruption = 0;
  private firstAckAfterMs: number | undefined;
  private readonly connections: KvConnection[];
  private readonly loops: Array<Promise<void>>;
  private readonly deadlineMs = Date.now() + 60_000;

  constructor(
    private readonly prefix: string,
    endpoints: readonly string[],
  ) {
    this.connections = endpoints.map((endpoint) => new KvConnection(endpoint));
    this.loops = Array.from({ length: writersCount }, (_, i) => this.loop(i));
  }

  /** Counts only puts sent after `atMs` from now on. */
  markDisruption(atMs: number): void {
    this.disruptionAtMs = atMs;
    this.acksAfterDisruption = 0;
    this.firstAckAfterMs = undefined;
  }

  firstAckAfterDisruptionMs(): number {
    assert.ok(this.firstAckAfterMs !== undefined, 'expected an acknowledged put after the disruption');
    return this.firstAckAfterMs;
  }

  async waitForAcks(count: number, when: string): Promise<void> {
    await pollUntil(`${count} acknowledged puts ${when}`, progressWaitMs, async () =>
      this.acknowledged.size >= count ? '' : `${this.acknowledged.size} so far, ${this.failures} failed`,
    );
  }

  async waitForAcksAfterDisruption(count: number, when: string): Promise<void> {
    await pollUntil(`${count} acknowledged puts ${when}`, progressWaitMs, async () =>
      this.acksAfterDisruption >= count ? '' : `${this.acksAfterDisruption} so far, ${this.failures} failed`,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    for (const connection of this.connections) connection.close();
  }

  private async loop(writerIndex: number): Promise<void> {
    const connection = this.connections[writerIndex % this.connections.length]!;
    for (let seq = 0; seq < putsPerWriterMax && !this.stopped && Date.now() < this.deadlineMs; seq += 1) {
      const key = `${this.prefix}/w${writerIndex}/${String(seq).padStart(5, '0')}`;
      const value = `value-${writerIndex}-${seq}`;
      const sentAtMs = Date.now();
      try {
        await connection.put(Buffer.from(key), Buffer.from(value), putDeadlineMs);
      } catch {
        // Not acknowledged: it may or may not have been applied, so it is not checked.
        this.failures += 1;
        await sleep(retryPauseMs);
        continue;
      }
      this.acknowledged.set(key, value);
      if (sentAtMs >= this.disruptionAtMs) {
        this.acksAfterDisruption += 1;
        this.firstAckAfterMs ??= Date.now();
      }
    }
  }
}

/**
 * For every member: a linearizable read through it (retried while it catches up) is the barrier,
 * after which a serializable read of `prefix` through the same member must hold every put.
 */
async function assertEveryMemberHas(
  cluster: Cluster,
  prefix: string,
  expected: ReadonlyMap<string, string>,
): Promise<void> {
  await withClients(cluster.members, async (clients) => {
    for (const [i, member] of cluster.members.entries()) {
      const client = clients[i]!;
      await pollUntil(`a linearizable read through ${member.describe()}`, catchUpWaitMs, async () => {
        try {
          await client
            .get('barrier')
            .options({ deadline: Date.now() + readDeadlineMs })
            .string();
          return '';
        } catch (error) {
          return (error as Error).message;
        }
      });
      const stored = await client
        .getAll()
        .prefix(prefix)
        .serializable(true)
        .options({ deadline: Date.now() + readDeadlineMs })
        .strings();
      const missing: string[] = [];
      for (const [key, value] of expected)
        if (stored[key] !== value) missing.push(`${key}: expected ${value}, saw ${String(stored[key])}`);
      assert.equal(
        missing.length,
        0,
        `${member.describe()} lacks ${missing.length} of ${expected.size} acknowledged puts:\n${missing.slice(0, 10).join('\n')}`,
      );
    }
  });
}

/** One etcd3 client per member, each pinned to that member alone, closed afterwards. */
async function withClients<T>(members: readonly ClusterMember[], use: (clients: Etcd3[]) => Promise<T>): Promise<T> {
  const clients = members.map((m) => new Etcd3({ hosts: m.clientUrl }));
  try {
    return await use(clients);
  } finally {
    for (const client of clients) client.close();
  }
}
