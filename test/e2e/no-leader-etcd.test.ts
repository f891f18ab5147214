/**
 * A member left alone (two of three members stopped) has no leader. Against real etcd 3.4 and
 * tsetcd alike: a write waits for a leader until etcd's request timeout (5 s + 2 election
 * timeouts) and then fails with Go's "context deadline exceeded" (code Unknown), or the client's
 * own deadline comes first (a conf change waits for the client's deadline alone); a linearizable read fails with "etcdserver: request timed out"; a
 * serializable read is served. A call that requires a leader (metadata hasleader, as etcdctl
 * watch sends) is refused at once with "etcdserver: no leader", and a watch that required one
 * when it started is ended with that error after a few election timeouts without a leader.
 * Lease calls wait for a leader until the request timeout as well: LeaseGrant and LeaseRevoke
 * (proposals) then fail as a write does, LeaseTimeToLive and LeaseKeepAlive (which the leader
 * answers) with "etcdserver: no leader"; a leader back within that time answers all four.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Cluster, endpointStatus, pollUntil } from '../support/cluster.js';
import { EtcdGrpc, type Answer } from '../support/etcd-grpc.js';
import { portAccepts } from '../support/ports.js';
import { runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';
import { EtcdctlWatch, waitUntil } from '../watch/clients.js';

const sut = sutCommand();
const skip = sut.skipReason === undefined ? {} : { skip: sut.skipReason };
/** Well past etcd's request timeout (7 s with the default election timeout): the server answers first. */
const callDeadlineMs = 20_000;
/** Bound on the survivor noticing it has no leader (a few election timeouts). */
const leaderlessWaitMs = 15_000;
/** Bound on a stopped member's process coming back to listen for peers. */
const relistenWaitMs = 30_000;

const key = Buffer.from('k');

/** etcdctl's last stderr line ("Error: ..."), with the client's and the server's deadline told apart only by text. */
function etcdctlError(result: CommandResult): string {
  const lines = result.stderr.trim().split('\n');
  return `exit ${result.code}: ${lines[lines.length - 1] ?? ''}`;
}

function described(answer: Answer): string {
  return `${grpc.status[answer.code]} ${answer.message}`;
}

const leaseCallNames = ['LeaseGrant', 'LeaseRevoke', 'LeaseTimeToLive', 'LeaseKeepAlive'] as const;

/** The four lease calls that need the leader, in leaseCallNames' order: `revoked` is revoked, `kept` asked about. */
function leaseCalls(client: EtcdGrpc, revoked: unknown, kept: unknown): Promise<Answer>[] {
  return [
    client.unary('etcdserverpb.Lease/LeaseGrant', { TTL: 60 }),
    client.unary('etcdserverpb.Lease/LeaseRevoke', { ID: revoked }),
    client.unary('etcdserverpb.Lease/LeaseTimeToLive', { ID: kept }),
    client.firstOfStream('etcdserverpb.Lease/LeaseKeepAlive', { ID: kept }),
  ];
}

async function grantLease(client: EtcdGrpc): Promise<unknown> {
  const granted = await client.unary('etcdserverpb.Lease/LeaseGrant', { TTL: 600 });
  assert.equal(granted.code, grpc.status.OK, described(granted));
  return granted.response.ID;
}

/** What a user sees through the one running member of a 3-member cluster whose other two stopped. */
async function leaderlessOutcomes(command: MemberCommand): Promise<Record<string, string>> {
  const cluster = await Cluster.start({ command });
  const [survivor, ...others] = cluster.members;
  const plain = new EtcdGrpc(survivor!.clientUrl, callDeadlineMs);
  const requiring = new EtcdGrpc(survivor!.clientUrl, callDeadlineMs, { hasleader: 'true' });
  try {
    assert.equal((await runEtcdctl(survivor!.clientUrl, ['put', 'k', 'v0'])).code, 0);
    const [revoked, kept] = await Promise.all([grantLease(plain), grantLease(plain)]);
    const { memberId } = await endpointStatus(survivor!.clientUrl);
    const openWatch = new EtcdctlWatch(survivor!.clientUrl, ['k'], leaderlessWaitMs + callDeadlineMs);
    for (const member of others) await member.stop();
    await pollUntil('the survivor without a leader', leaderlessWaitMs, async () => {
      const { leaderId } = await endpointStatus(survivor!.clientUrl);
      return leaderId === '0' ? '' : `leader ${leaderId}`;
    });
    const leaderlessLeaseCalls = Promise.all(leaseCalls(plain, revoked, kept));
    const [shortPut, longPut, grpcPut, grpcRange, memberUpdate] = await Promise.all([
      runEtcdctl(survivor!.clientUrl, ['put', 'k', 'v1', '--command-timeout=2s']),
      runEtcdctl(survivor!.clientUrl, ['put', 'k', 'v2', '--command-timeout=10s']),
      plain.unary('etcdserverpb.KV/Put', { key, value: Buffer.from('v3') }),
      plain.unary('etcdserverpb.KV/Range', { key }),
      runEtcdctl(survivor!.clientUrl, [
        'member',
        'update',
        memberId,
        `--peer-urls=${survivor!.peerUrl}`,
        '--command-timeout=2s',
      ]),
    ]);
    const leaderlessLeaseAnswers = await leaderlessLeaseCalls;
    const serializable = await runEtcdctl(survivor!.clientUrl, ['get', 'k', '--consistency=s']);
    const watch = await runEtcdctl(survivor!.clientUrl, ['watch', 'k']);
    await waitUntil(() => openWatch.exitCode !== undefined, 'the open watch to end', leaderlessWaitMs);
    const outcomes: Record<string, string> = {
      ...Object.fromEntries(
        leaseCallNames.map((name, index) => [`gRPC ${name}`, described(leaderlessLeaseAnswers[index]!)]),
      ),
      // The client's 2 s deadline and the server's (which it is given) end together; either may answer.
      'etcdctl put, 2 s': etcdctlError(shortPut).replace(/rpc error: code = Unknown desc = /, ''),
      'etcdctl put, 10 s': etcdctlError(longPut),
      'gRPC Put': described(grpcPut),
      'etcdctl member update, 2 s': etcdctlError(memberUpdate).replace(/rpc error: code = Unknown desc = /, ''),
      'gRPC linearizable Range': described(grpcRange),
      'etcdctl get --consistency=s': `exit ${serializable.code}: ${serializable.stdout.trim().replace('\n', ' ')}`,
      'etcdctl watch': `exit ${watch.code}: ${watch.stderr.trim().replaceAll('\n', ' | ')}`,
      'etcdctl watch started with a leader': `exit ${openWatch.exitCode}: ${openWatch.stderr.trim().replaceAll('\n', ' | ')}`,
      'gRPC Put requiring a leader': described(
        await requiring.unary('etcdserverpb.KV/Put', { key, value: Buffer.from('v4') }),
      ),
      'gRPC serializable Range requiring a leader': described(
        await requiring.unary('etcdserverpb.KV/Range', { key, serializable: true }),
      ),
      'gRPC Status requiring a leader': described(await requiring.unary('etcdserverpb.Maintenance/Status', {})),
      'gRPC Watch requiring a leader': described(
        await requiring.firstOfStream('etcdserverpb.Watch/Watch', { createRequest: { key } }),
      ),
    };
    // Lease calls wait for a leader until the request timeout, so a leader back before then answers them.
    // They are sent once the restarted member listens for peers, before it can have voted: the 7 s
    // request timeout is then the election's, not the process start's too (a loaded run spent more
    // than 7 s starting it).
    const [restarted] = others;
    restarted!.spawn();
    await pollUntil(`${restarted!.describe()} to listen for peers`, relistenWaitMs, async () =>
      (await portAccepts(restarted!.peerPort)) ? '' : 'not yet',
    );
    const leaseCallsWithLeaderBack = await Promise.all(leaseCalls(plain, revoked, kept));
    await restarted!.waitHealthy();
    return {
      ...outcomes,
      ...Object.fromEntries(
        leaseCallNames.map((name, index) => [
          `gRPC ${name}, a leader back meanwhile`,
          described(leaseCallsWithLeaderBack[index]!),
        ]),
      ),
    };
  } finally {
    plain.close();
    requiring.close();
    await cluster.destroy();
  }
}

test('a member without a leader answers as etcd 3.4 does: writes wait, then time out', skip, async () => {
  const expected = await leaderlessOutcomes(etcdCommand());
  assert.deepEqual(
    expected,
    {
      'gRPC LeaseGrant': 'UNKNOWN context deadline exceeded',
      'gRPC LeaseRevoke': 'UNKNOWN context deadline exceeded',
      'gRPC LeaseTimeToLive': 'UNAVAILABLE etcdserver: no leader',
      'gRPC LeaseKeepAlive': 'UNAVAILABLE etcdserver: no leader',
      'gRPC LeaseGrant, a leader back meanwhile': 'OK ',
      'gRPC LeaseRevoke, a leader back meanwhile': 'OK ',
      'gRPC LeaseTimeToLive, a leader back meanwhile': 'OK ',
      'gRPC LeaseKeepAlive, a leader back meanwhile': 'OK ',
      'etcdctl put, 2 s': 'exit 1: Error: context deadline exceeded',
      'etcdctl put, 10 s': 'exit 1: Error: rpc error: code = Unknown desc = context deadline exceeded',
      'gRPC Put': 'UNKNOWN context deadline exceeded',
      'etcdctl member update, 2 s': 'exit 1: Error: context deadline exceeded',
      'gRPC linearizable Range': 'UNAVAILABLE etcdserver: request timed out',
      'etcdctl get --consistency=s': 'exit 0: k v0',
      'etcdctl watch': 'exit 5: watch was canceled (etcdserver: no leader) | Error: watch is canceled by the server',
      'etcdctl watch started with a leader':
        'exit 5: watch was canceled (etcdserver: no leader) | Error: watch is canceled by the server',
      'gRPC Put requiring a leader': 'UNAVAILABLE etcdserver: no leader',
      'gRPC serializable Range requiring a leader': 'UNAVAILABLE etcdserver: no leader',
      'gRPC Status requiring a leader': 'UNAVAILABLE etcdserver: no leader',
      'gRPC Watch requiring a leader': 'UNAVAILABLE etcdserver: no leader',
    },
    'etcd 3.4.23',
  );
  assert.deepEqual(await leaderlessOutcomes(sut.command as MemberCommand), expected);
});
