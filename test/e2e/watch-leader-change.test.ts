/**
 * Watch guarantees on a three-member cluster under concurrent writers, a compaction and two
 * leader changes (etcdctl move-leader, then kill -9 of the leader and its restart): every watcher
 * gets every revision of its range exactly once, in order, each revision whole in one response
 * and equal to what the writers did, and a watcher resumed on another member (on purpose, or
 * because its member was killed) continues exactly at the next revision. Real etcd runs alongside
 * with the same checks.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, endpointStatus, leaderWaitMsDefault, pollUntil, type ClusterMember } from '../support/cluster.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';
import {
  checkWatcher,
  headerRevision,
  KvClient,
  resolveHistory,
  ResumingWatcher,
  WriteHistory,
  type WriteIntent,
} from '../support/watch-checker.js';
import type { WireMessage } from '../../src/api/proto-wire.js';

const writersCount = 4;
/** Bound on each writer's attempts, in case the cluster is very fast. */
const opsPerWriterMax = 1_500;
/** Deadline of one write; a write still waiting on a dead leader then counts as unknown. */
const writeDeadlineMs = 2_000;
/** Pause after a failed write, so writers do not spin while there is no leader. */
const retryPauseMs = 50;
/** Acknowledged writes wanted before the first disruption and after each one. */
const acksPerPhase = 30;
/** Bound on each wait for writers to make progress. */
const progressWaitMs = 20_000;
/** Bound on watchers reaching the final revision. */
const catchUpWaitMs = 20_000;
/** Pause after the writers stop, for writes whose client gave up but which are still in flight. */
const settleMs = 500;
/** Times the final revision is re-read after watchers reached it, in case a late write landed. */
const settleRoundsMax = 3;
/** How often broken watch streams are looked for and resumed. */
const healIntervalMs = 50;
/** Bound on one request other than a write (reads, compaction). */
const requestDeadlineMs = 5_000;
/** Bound on the healer loop should the test body never stop it. */
const healerLifetimeMs = 120_000;
/** The first revision writes can make; revision 1 is the empty store. */
const firstWriteRevision = 2;

const prefix = 'wlc/';
const range = { key: prefix, rangeEnd: 'wlc0' };

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined
    ? { label: 'tsetcd', skip: sut.skipReason }
    : { label: sut.command.label, command: sut.command },
];

// etcd's cluster and tsetcd's run side by side on their own ports: neither needs the other.
describe('watchers across leader changes on etcd and on tsetcd, side by side', { concurrency: true }, () => {
  for (const target of targets) {
    const options = target.skip === undefined ? { timeout: 120_000 } : { skip: target.skip };
    test(
      `watchers on a three-member ${target.label} cluster get every revision once, in order and whole, across move-leader, a compaction and kill -9 of the leader`,
      options,
      async (t) => {
        const cluster = await Cluster.start({ command: target.command as MemberCommand });
        const clients = cluster.members.map((m) => new KvClient(m.clientUrl));
        const history = new WriteHistory();
        const writers = new Writers(history, clients);
        const watchers: ResumingWatcher[] = [];
        const healer = new Healer(() => watchers, cluster);
        const steps: string[] = [];
        try {
          const [m1, m2, m3] = cluster.members as [ClusterMember, ClusterMember, ClusterMember];
          const watch = async (
            name: string,
            member: ClusterMember,
            from: number | 'now',
            prevKv = false,
          ): Promise<ResumingWatcher> => {
            const watcher = new ResumingWatcher(name, range, prevKv);
            await watcher.start(member.clientUrl, from);
            watchers.push(watcher);
            return watcher;
          };
          await watch(`A (on ${m1.name}, from revision 1)`, m1, 1);
          await watch(`B (on ${m2.name}, from now, prev kv)`, m2, 'now', true);
          await watch(`C (on ${m3.name}, from revision 1)`, m3, 1);
          const resumed = await watch(
            `R (on ${m1.name} from revision 1, cancelled midway, resumed on another member)`,
            m1,
            1,
          );
          healer.start();
          writers.start();
          await writers.waitForAcks(acksPerPhase, 'before any disruption');

          const resumeOn = cluster.members.find(
            (m) => m.running && m.clientUrl !== resumed.current.endpoint,
          ) as ClusterMember;
          const resumeFrom = await resumed.cancelAndResume(resumeOn.clientUrl);
          steps.push(`R cancelled and resumed from ${resumeFrom} on ${resumeOn.name}`);
          await writers.waitForAcks(acksPerPhase, 'after R resumed');

          steps.push(await moveLeader(cluster));
          await writers.waitForAcks(acksPerPhase, 'after move-leader');

          const compactedAt = Math.min(...watchers.map((w) => w.reached()));
          assert.ok(
            compactedAt >= firstWriteRevision,
            `expected every watcher past revision ${firstWriteRevision} before compacting, lowest is ${compactedAt}`,
          );
          await clients[cluster.members.indexOf(await cluster.leader())]!.compact(compactedAt, requestDeadlineMs);
          steps.push(`compacted at ${compactedAt}`);
          await writers.waitForAcks(acksPerPhase, 'after the compaction');

          const victim = await cluster.leader();
          const resumesBeforeKill = healer.notes.length;
          await victim.kill9();
          steps.push(`kill -9 of leader ${victim.name}`);
          await writers.waitForAcks(acksPerPhase, `after ${victim.name} was killed`);
          steps.push(`${(await cluster.leader()).name} leads`);
          await victim.restart();
          steps.push(`${victim.name} restarted`);
          await watch(`H (on restarted ${victim.name}, from the compaction revision + 1)`, victim, compactedAt + 1);
          await writers.waitForAcks(acksPerPhase, `after ${victim.name} restarted`);
          await writers.stop();

          const last = await settleAndCatchUp(cluster, clients, watchers);
          await healer.stop();
          const resolution = resolveHistory(
            history,
            watchers.map((w) => w.view()),
            firstWriteRevision,
            last,
          );
          const failures = [...resolution.problems.map((p) => `history: ${p}`)];
          for (const watcher of watchers)
            failures.push(...checkWatcher(watcher, resolution).map((p) => `${watcher.name}: ${p}`));
          failures.push(...healer.errors.map((e) => `healer: ${e}`));
          // Every member has a watcher, so the kill must have broken at least one stream.
          if (!healer.notes.slice(resumesBeforeKill).some((note) => note.includes(victim.clientUrl)))
            failures.push(`no watcher resumed after ${victim.name} was killed`);
          failures.push(
            ...history
              .headerMismatches()
              .slice(0, 5)
              .map((m) => `write response header: ${m}`),
          );
          failures.push(...(await finalStateProblems(cluster, clients, resolution.finalState)));

          t.diagnostic(`${target.label}: ${steps.join('; ')}`);
          t.diagnostic(
            `${target.label}: revisions ${firstWriteRevision}..${last}, ${writers.acks} writes acknowledged, ${history.unknown.length} of unknown outcome (${resolution.unknownApplied.size} of them happened)`,
          );
          for (const note of healer.notes) t.diagnostic(`${target.label}: ${note}`);
          assert.deepEqual(
            failures,
            [],
            `${target.label}: watch guarantees broken (${steps.join('; ')}):\n${failures.join('\n')}`,
          );
        } finally {
          await writers.stop();
          await healer.stop();
          for (const watcher of watchers) watcher.close();
          for (const client of clients) client.close();
          await cluster.destroy();
        }
      },
    );
  }
});

/** Concurrent writers of puts, two-key transactions and prefix deletes, spread over the members. */
class Writers {
  acks = 0;
  private stopped = false;
  private loops: Array<Promise<void>> = [];

  constructor(
    private readonly history: WriteHistory,
    private readonly clients: readonly KvClient[],
  ) {}

  start(): void {
    this.loops = Array.from({ length: writersCount }, (_, w) => this.loop(w));
  }

  /** Waits for `count` more acknowledged writes than there are now. */
  async waitForAcks(count: number, when: string): Promise<void> {
    const wanted = this.acks + count;
    await pollUntil(`${count} acknowledged writes ${when}`, progressWaitMs, async () =>
      this.acks >= wanted ? '' : `${this.acks}/${wanted} so far, ${this.history.unknown.length} of unknown outcome`,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  private async loop(writer: number): Promise<void> {
    let clientIndex = writer % this.clients.length;
    for (let index = 0; index < opsPerWriterMax && !this.stopped; index += 1) {
      const intent = intentFor(writer, index);
      let response: WireMessage;
      try {
        response = await this.clients[clientIndex]!.txn(txnRequest(intent), writeDeadlineMs);
      } catch (error) {
        // It may or may not have happened; the checker accepts either, so a new write follows.
        this.history.markUnknown(intent, (error as Error).message);
        clientIndex = (clientIndex + 1) % this.clients.length;
        await sleep(retryPauseMs);
        continue;
      }
      try {
        const made = madeRevision(intent, response);
        this.history.acknowledge(intent, made.revision, headerRevision(response), made.deleted);
      } catch (error) {
        this.history.problems.push(`acknowledged write ${intent.id}: ${(error as Error).message}`);
      }
      this.acks += 1;
    }
  }
}

/** Writer `writer`'s `index`th write: mostly puts, every tenth a two-key transaction, every tenth a prefix delete. */
function intentFor(writer: number, index: number): WriteIntent {
  const own = `${prefix}w${writer}/`;
  const id = `w${writer}#${index}`;
  if (index % 10 === 9)
    return {
      id,
      puts: [
        [`${own}t1`, `t-${id}`],
        [`${own}t2`, `t-${id}`],
      ],
    };
  // The marker put makes the delete a revision even when it finds nothing to delete.
  if (index % 10 === 4)
    return { id, deleteRange: { key: `${own}k`, rangeEnd: `${own}l` }, puts: [[`${own}m`, `d-${id}`]] };
  return { id, puts: [[`${own}k${index % 3}`, `v-${id}`]] };
}

/** The intent as one transaction, ending with a read of its last put key to learn the revision it made. */
function txnRequest(intent: WriteIntent): WireMessage {
  const ops: WireMessage[] = [];
  if (intent.deleteRange !== undefined)
    ops.push({
      requestDeleteRange: {
        key: Buffer.from(intent.deleteRange.key),
        rangeEnd: Buffer.from(intent.deleteRange.rangeEnd),
        prevKv: true,
      },
    });
  for (const [key, value] of intent.puts)
    ops.push({ requestPut: { key: Buffer.from(key), value: Buffer.from(value) } });
  const probe = intent.puts.at(-1)?.[0] as string;
  ops.push({ requestRange: { key: Buffer.from(probe) } });
  return { compare: [], success: ops, failure: [] };
}

/**
 * The revision the write made, from the mod revision of its own last put (independent of the
 * response header, which is checked separately), and the keys its delete removed.
 */
function madeRevision(intent: WriteIntent, response: WireMessage): { revision: number; deleted: string[] } {
  const responses = response.responses as Array<{
    responseRange?: { kvs: Array<{ value: Buffer; modRevision: string }> };
    responseDeleteRange?: { prevKvs: Array<{ key: Buffer }> };
  }>;
  const probed = responses.at(-1)?.responseRange?.kvs[0];
  const lastPut = intent.puts.at(-1) as readonly [string, string];
  assert.ok(
    probed !== undefined && probed.value.toString() === lastPut[1],
    `${intent.id}: expected its read to see ${lastPut[0]}=${lastPut[1]}, saw ${JSON.stringify(probed)}`,
  );
  const deleted =
    intent.deleteRange === undefined
      ? []
      : (responses[0]?.responseDeleteRange?.prevKvs ?? []).map((kv) => kv.key.toString());
  return { revision: Number(probed.modRevision), deleted };
}

/** Hands leadership from the current leader to a follower with etcdctl move-leader and waits until all agree. */
async function moveLeader(cluster: Cluster): Promise<string> {
  const leader = await cluster.leader();
  const transferee = cluster.followers(leader)[0] as ClusterMember;
  const transfereeId = (await endpointStatus(transferee.clientUrl)).memberId;
  const moved = await runEtcdctl(cluster.endpoints().join(','), ['move-leader', transfereeId]);
  assert.equal(moved.code, 0, `move-leader ${leader.name} -> ${transferee.name} failed: ${moved.stderr}`);
  await pollUntil(`${transferee.name} to lead for every member`, leaderWaitMsDefault, async () => {
    const now = await cluster.leader();
    return now === transferee ? '' : `${now.name} leads`;
  });
  return `move-leader ${leader.name} -> ${transferee.name}`;
}

/**
 * Reads the final revision once in-flight writes have settled, waits for every watcher to reach it,
 * and reads again until it no longer moves; returns it.
 */
async function settleAndCatchUp(
  cluster: Cluster,
  clients: readonly KvClient[],
  watchers: readonly ResumingWatcher[],
): Promise<number> {
  let last = 0;
  for (let round = 0; round < settleRoundsMax; round += 1) {
    await sleep(settleMs);
    const leader = await cluster.leader();
    const now = headerRevision(
      await clients[cluster.members.indexOf(leader)]!.range(
        { key: Buffer.from(prefix), countOnly: true },
        requestDeadlineMs,
      ),
    );
    if (now === last) return last;
    last = now;
    await pollUntil(`every watcher to reach revision ${last}`, catchUpWaitMs, async () => {
      const behind = watchers.filter((w) => w.reached() < last);
      return behind.map((w) => `${w.name} at ${w.reached()}`).join('; ');
    });
  }
  return last;
}

/** Every member's keys under the prefix (after a linearizable read) must equal the replayed history's. */
async function finalStateProblems(
  cluster: Cluster,
  clients: readonly KvClient[],
  expected: ReadonlyMap<string, string>,
): Promise<string[]> {
  const problems: string[] = [];
  const wanted = [...expected]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  for (const [i, member] of cluster.members.entries()) {
    const response = await clients[i]!.range(
      { key: Buffer.from(range.key), rangeEnd: Buffer.from(range.rangeEnd) },
      requestDeadlineMs,
    );
    const stored = (response.kvs as Array<{ key: Buffer; value: Buffer }>)
      .map((kv) => `${kv.key.toString()}=${kv.value.toString()}`)
      .join(', ');
    if (stored !== wanted)
      problems.push(`final state on ${member.name}: stored {${stored}}, the replayed history says {${wanted}}`);
  }
  return problems;
}

/** Resumes broken watch streams in the background, on another member than the broken one. */
class Healer {
  readonly notes: string[] = [];
  readonly errors: string[] = [];
  private stopped = false;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly watchers: () => readonly ResumingWatcher[],
    private readonly cluster: Cluster,
  ) {}

  start(): void {
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async run(): Promise<void> {
    const deadline = Date.now() + healerLifetimeMs;
    while (!this.stopped && Date.now() < deadline) {
      for (const watcher of this.watchers()) {
        try {
          const note = await watcher.heal(this.cluster.endpoints());
          if (note !== '') this.notes.push(note);
        } catch (error) {
          this.errors.push((error as Error).message);
        }
      }
      await sleep(healIntervalMs);
    }
  }
}
