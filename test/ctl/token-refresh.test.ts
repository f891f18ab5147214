/**
 * An auth token that expires while a command runs is fetched anew, as clientv3 does: members run
 * with --auth-token-ttl 1, so a simple token unused for a second is gone. `lock L --user ... --
 * CMD` unlocks with a token that expired while CMD ran; the streaming commands outlive their
 * token too (an interactive watch whose later creates are refused, a lease keep-alive renewing
 * past several token lifetimes, an election observer that opens a new watch after the leader
 * changed). etcdctl against etcd (the reference), tsetcdctl against another etcd and tsetcdctl
 * against tsetcd must answer alike. These scenarios wait on the clock: a token expires only
 * with time.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { authDialTimeoutFlag, runCommand, runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { Running } from '../support/running.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, tsetcdctlBinPath, type MemberCommand } from '../support/sut.js';

const tsetcd = sutCommand();
/** Past etcd's one-second TTL and its keeper's one-second round: the token is gone when the command ends. */
const holdSeconds = '3';

/** Past the one-second TTL plus etcd's one-second sweep: a token unused this long is gone. */
const tokenGoneMs = 2_500;
/** A bound on a scenario that hangs (they take about ten seconds), not a measure of speed. */
const scenarioTimeoutMs = 60_000;
/** A bound on one step of a scenario (an answer, an exit on a signal), not a measure of speed. */
const stepTimeoutMs = 15_000;
/** A lease renewed every three seconds, longer than a token lives unused. */
const leaseTtlSeconds = 9;
/** A pause after the expected events arrived, for a copy delivered once too often to show. */
const deliveryMs = 500;

/** Drops clientv3's retry warnings (the refresh logs one), which carry timestamps and random client names. */
function withoutWarnings(text: string): string {
  return text.replace(/^\{"level":"warn".*\n/gm, '');
}

function comparable(result: CommandResult): CommandResult {
  return { code: result.code, stdout: result.stdout, stderr: withoutWarnings(result.stderr) };
}

/** Lease IDs differ between servers: in hex after a slash (election keys) or as a word. */
function withoutLeaseIds(text: string): string {
  return text.replace(/\b[0-9a-f]{16}\b/g, '<lease>').replace(/\/[0-9a-f]{12,16}\b/g, '/<lease>');
}

describe('a token that expires during a command is fetched anew', { skip: tsetcd.skipReason ?? false }, () => {
  const members: Member[] = [];

  before(async () => {
    const commands: MemberCommand[] = [etcdCommand(), etcdCommand(), tsetcd.command as MemberCommand];
    for (const command of commands) {
      const member = await Member.start({ command, extraFlags: ['--auth-token-ttl', '1'] });
      members.push(member);
      for (const args of [
        ['user', 'add', 'root:pw'],
        ['auth', 'enable'],
      ]) {
        const result = await runEtcdctl(member.clientUrl, args);
        assert.equal(result.code, 0, result.stderr);
      }
    }
  });

  const started = new Set<ChildProcessWithoutNullStreams>();

  after(async () => {
    for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(members.map((member) => member.destroy()));
  });

  /** The command line for member `index` as root: etcdctl on the first member, tsetcdctl on the others. */
  function commandLine(index: number, args: readonly string[]): [command: string, argv: string[]] {
    const full = [`--endpoints=${members[index]?.clientUrl ?? ''}`, '--user=root:pw', authDialTimeoutFlag, ...args];
    return index === 0 ? [etcdctlBinaryPath, full] : [process.execPath, [tsetcdctlBinPath, ...full]];
  }

  /** The command left running against member `index`: etcdctl on the first, tsetcdctl on the others. */
  function startOn(index: number, args: readonly string[]): Running {
    const [command, argv] = commandLine(index, args);
    const child = spawn(command, argv, {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    started.add(child);
    return new Running(child);
  }

  /** The command left running against each member: etcdctl on the first, tsetcdctl on the others. */
  function startThreeWays(args: readonly string[]): Running[] {
    return members.map((_member, index) => startOn(index, args));
  }

  /** Runs an etcdctl command as root on every member; `each` gives per-member arguments. */
  async function driveAll(each: (index: number) => readonly string[]): Promise<CommandResult[]> {
    return Promise.all(
      members.map(async (member, index) => {
        const result = await runEtcdctl(member.clientUrl, ['--user=root:pw', authDialTimeoutFlag, ...each(index)]);
        assert.equal(result.code, 0, result.stderr);
        return result;
      }),
    );
  }

  /** Each transcript without warnings and lease IDs; the tsetcdctl ones must equal etcdctl's. */
  function assertSame(transcripts: readonly string[]): void {
    const [reference, ...ours] = transcripts.map((text) => withoutLeaseIds(withoutWarnings(text)));
    for (const [index, transcript] of ours.entries())
      assert.equal(transcript, reference, `tsetcdctl against ${['etcd', 'tsetcd'][index]}`);
  }

  /** The same command line three ways: etcdctl on the first member, tsetcdctl on the others. */
  async function threeWays(args: readonly string[]): Promise<CommandResult[]> {
    return Promise.all(
      members.map((_member, index) => {
        const [command, argv] = commandLine(index, args);
        return runCommand(command, argv, { env: { ETCDCTL_API: '3' } }).then(comparable);
      }),
    );
  }

  it('lock NAME -- CMD unlocks after the command outlived the token', async () => {
    const [reference, ...ours] = await threeWays(['lock', 'L', '--', 'sh', '-c', `sleep ${holdSeconds}; echo held`]);
    assert.deepEqual(reference, { code: 0, stdout: 'held\n', stderr: '' });
    for (const result of ours) assert.deepEqual(result, reference);
  });

  it(
    'watch -i opens a new stream when a create is refused for an expired token, as etcdctl does',
    { timeout: scenarioTimeoutMs },
    async () => {
      const watches = startThreeWays(['watch', '-i']);
      // Each watch replays a first put, so its create is known to be done before the token's time runs.
      const watchFromFirstPut = async (key: string): Promise<void> => {
        await driveAll(() => ['put', key, '0']);
        for (const watch of watches) watch.write(`watch ${key} --rev 1\n`);
        await Promise.all(watches.map((watch) => watch.waitFor(`${key}\n0\n`)));
      };
      await watchFromFirstPut('tw/a');
      // Each later create finds the token of its stream expired: clientv3 opens a new stream and
      // creates every watch there, leaving the old stream delivering, so events arrive once per stream.
      await sleep(tokenGoneMs);
      await watchFromFirstPut('tw/b');
      await sleep(tokenGoneMs);
      await watchFromFirstPut('tw/c');
      // Every stream that watches a key delivers its event: tw/a was created on three streams, tw/b on two.
      for (const [key, value, streams] of [
        ['tw/a', '2', 3],
        ['tw/b', '3', 2],
        ['tw/c', '4', 1],
      ] as const) {
        await driveAll(() => ['put', key, value]);
        await Promise.all(watches.map((watch) => watch.waitFor(`PUT\n${key}\n${value}\n`, streams, stepTimeoutMs)));
      }
      // A copy delivered once too often would come right behind the others.
      await sleep(deliveryMs);
      const transcripts = await Promise.all(watches.map((watch) => watch.end('eof')));
      assert.match(
        transcripts[0] ?? '',
        /\nPUT\ntw\/c\n0\n(PUT\ntw\/a\n2\n){3}(PUT\ntw\/b\n3\n){2}PUT\ntw\/c\n4\nstderr:/,
      );
      assertSame(transcripts);
    },
  );

  it(
    'lease keep-alive renews past several token lifetimes until the lease is revoked',
    { timeout: scenarioTimeoutMs },
    async () => {
      const granted = await driveAll(() => ['lease', 'grant', String(leaseTtlSeconds)]);
      const ids = granted.map((result) => /lease ([0-9a-f]+) granted/.exec(result.stdout)?.[1] ?? '');
      const renewal = (index: number): string => `lease ${ids[index]} keepalived with TTL(${leaseTtlSeconds})\n`;
      const keepAlives = members.map((_member, index) => startOn(index, ['lease', 'keep-alive', ids[index] ?? '']));
      // Renewals every three seconds: the second and later ones come after the stream's token expired.
      await Promise.all(keepAlives.map((keepAlive, index) => keepAlive.waitFor(renewal(index), 3, scenarioTimeoutMs)));
      await driveAll((index) => ['lease', 'revoke', ids[index] ?? '']);
      const transcripts = await Promise.all(keepAlives.map((keepAlive) => keepAlive.end('by itself')));
      // How many renewals fit before the revoke depends on when each answer came; each ran past three.
      const collapsed = transcripts.map((transcript, index) => {
        const once = transcript
          .split(renewal(index))
          .join('')
          .replace('stdout:\n', `stdout:\n${renewal(index)}`);
        return withoutLeaseIds(withoutWarnings(once));
      });
      assert.equal(
        collapsed[0],
        `stdout:\nlease <lease> keepalived with TTL(${leaseTtlSeconds})\nlease <lease> expired or revoked.\nstderr:\nexit 0`,
      );
      for (const transcript of collapsed.slice(1)) assert.equal(transcript, collapsed[0]);
    },
  );

  it('elect --listen follows a new leader found after its token expired', { timeout: scenarioTimeoutMs }, async () => {
    const listeners = startThreeWays(['elect', '--listen', 'te']);
    const campaign = async (proposal: string): Promise<void> => {
      const campaigners = startThreeWays(['elect', 'te', proposal]);
      await Promise.all(campaigners.map((campaigner) => campaigner.waitFor(`${proposal}\n`, 1, stepTimeoutMs)));
      await Promise.all(listeners.map((listener) => listener.waitFor(`${proposal}\n`, 1, stepTimeoutMs)));
      await sleep(tokenGoneMs);
      // An interrupted campaigner resigns, which deletes its key.
      await Promise.all(campaigners.map((campaigner) => campaigner.end('SIGINT', stepTimeoutMs)));
    };
    await campaign('p1');
    // The observer looks for the next leader and opens a watch for it with the token expired.
    await sleep(tokenGoneMs);
    await campaign('p2');
    // The signal comes while each observer authenticates anew to watch for a third leader: it
    // must still end the observer, as it ends etcdctl's.
    assertSame(await Promise.all(listeners.map((listener) => listener.end('SIGTERM', stepTimeoutMs))));
  });
});
