/**
 * Frozen connections found as etcdctl finds them. --keepalive-time and --keepalive-timeout acting: a watch goes through a relay that stops
 * forwarding without closing anything, as a path that drops packets. etcdctl against etcd (the
 * reference), tsetcdctl against another etcd and tsetcdctl against tsetcd must each find out the
 * same way: an HTTP/2 PING at grpc-go's ten-second floor for the two seconds asked, the connection
 * given up once the PING went unanswered for the one-second timeout, and the watch left waiting
 * for a connection again (neither prints nor exits). A lease keep-alive behind a frozen relay
 * gives up once its TTL passed without an answer, saying the lease expired, exit 0. These
 * scenarios wait on the clock: keepalives act only with time.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runEtcdctl } from '../support/etcdctl.js';
import { FreezingRelay, type RelayedConnection } from '../support/freezing-relay.js';
import { Member } from '../support/member.js';
import { Running } from '../support/running.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, tsetcdctlBinPath, type MemberCommand } from '../support/sut.js';

const tsetcd = sutCommand();
/** grpc-go's smallest keepalive time, which the two seconds asked for are raised to. */
const keepAliveFloorMs = 10_000;
/** The --keepalive-timeout the scenario asks for. */
const keepAliveTimeoutMs = 1_000;
/** Scheduling slack allowed around each timer on a machine shared with other work. */
const slackMs = 1_500;
/** A bound on the wait for the frozen connection to be given up, not a measure of speed. */
const givenUpWaitMs = keepAliveFloorMs + keepAliveTimeoutMs + 3 * slackMs;
const pollMs = 100;
/** A bound on a scenario that hangs (it takes about fifteen seconds), not a measure of speed. */
const scenarioTimeoutMs = 60_000;

/** The connection that carried the watch: the one that sent PINGs after the relay froze. */
function watchConnection(relay: FreezingRelay, frozenMs: number): RelayedConnection | undefined {
  return relay.connections.find((connection) => connection.pingsMs.some((pingMs) => pingMs > frozenMs));
}

/**
 * The lease's TTL: long enough that a keep-alive started on a loaded machine (relays, then one
 * process per side) still finds its lease alive; with 4 s one side once found it expired already.
 */
const leaseTtlSeconds = 8;

describe('frozen connections are found as etcdctl finds them', { skip: tsetcd.skipReason ?? false }, () => {
  const members: Member[] = [];
  const relays: FreezingRelay[] = [];
  const started = new Set<ChildProcessWithoutNullStreams>();

  before(async () => {
    const commands: MemberCommand[] = [etcdCommand(), etcdCommand(), tsetcd.command as MemberCommand];
    for (const command of commands) {
      const member = await Member.start({ command });
      members.push(member);
      relays.push(await FreezingRelay.start(member.clientPort));
      const put = await runEtcdctl(member.clientUrl, ['put', 'k', 'before']);
      assert.equal(put.code, 0, put.stderr);
    }
  });

  /** Starts etcdctl through the first relay and tsetcdctl through the others, with `args(index)`. */
  function startThroughRelays(through: readonly FreezingRelay[], args: (index: number) => string[]): Running[] {
    return through.map((relay, index) => {
      const full = [`--endpoints=127.0.0.1:${relay.port}`, ...args(index)];
      const [command, argv] = index === 0 ? [etcdctlBinaryPath, full] : [process.execPath, [tsetcdctlBinPath, ...full]];
      const child = spawn(command, argv, {
        env: { ...process.env, ETCDCTL_API: '3' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      started.add(child);
      return new Running(child);
    });
  }

  after(async () => {
    for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(relays.map((relay) => relay.close()));
    await Promise.all(members.map((member) => member.destroy()));
  });

  it(
    'watch --keepalive-time 2s --keepalive-timeout 1s gives up a frozen connection and keeps waiting',
    { timeout: scenarioTimeoutMs },
    async () => {
      const watches = startThroughRelays(relays, () => [
        '--keepalive-time=2s',
        `--keepalive-timeout=${keepAliveTimeoutMs / 1000}s`,
        'watch',
        'k',
        '--rev=1',
      ]);
      // The put, replayed from revision 1 through the relay: the watch is up, and this was its
      // connection's last traffic.
      await Promise.all(watches.map((watch) => watch.waitFor('before\n')));
      const frozenMs = relays.map((relay) => {
        relay.freeze();
        return relay.nowMs();
      });
      for (let waitedMs = 0; waitedMs < givenUpWaitMs; waitedMs += pollMs) {
        const closed = relays.map((relay, index) => watchConnection(relay, frozenMs[index] ?? 0)?.closedMs);
        if (closed.every((closedMs) => closedMs !== undefined)) break;
        await sleep(pollMs);
      }
      const seen = relays.map((relay, index) => {
        const connection = watchConnection(relay, frozenMs[index] ?? 0);
        assert.ok(connection?.closedMs !== undefined, `expected client ${index} to give up its frozen connection`);
        // The PING that went unanswered is the last before the connection was given up.
        const keepAlivePingMs = Math.max(...connection.pingsMs);
        return {
          pingAfterOpenMs: keepAlivePingMs - connection.openedMs,
          givenUpAfterPingMs: connection.closedMs - keepAlivePingMs,
        };
      });
      const [reference, ...ours] = seen;
      assert.ok(reference !== undefined);
      for (const side of seen) {
        // The PING comes at the floor, not after the two seconds asked for.
        assert.ok(
          side.pingAfterOpenMs > keepAliveFloorMs - slackMs,
          `expected no keepalive PING before the floor, saw ${JSON.stringify(seen)}`,
        );
        assert.ok(
          Math.abs(side.givenUpAfterPingMs - keepAliveTimeoutMs) < slackMs,
          `expected the connection given up a timeout after the PING, saw ${JSON.stringify(seen)}`,
        );
      }
      for (const side of ours)
        assert.ok(
          Math.abs(side.pingAfterOpenMs - reference.pingAfterOpenMs) < slackMs,
          `expected tsetcdctl's PING as long after the connection opened as etcdctl's, saw ${JSON.stringify(seen)}`,
        );
      // The watch then waits for a connection that never answers: nothing printed, still running.
      await sleep(slackMs);
      const transcripts = await Promise.all(watches.map((watch) => watch.end('SIGTERM')));
      assert.equal(transcripts[0], 'stdout:\nPUT\nk\nbefore\nstderr:\nexit SIGTERM');
      for (const transcript of transcripts.slice(1)) assert.equal(transcript, transcripts[0]);
    },
  );

  it(
    'lease keep-alive through a frozen relay gives up once the TTL passed unanswered',
    { timeout: scenarioTimeoutMs },
    async () => {
      const granted = await Promise.all(
        members.map((member) => runEtcdctl(member.clientUrl, ['lease', 'grant', String(leaseTtlSeconds)])),
      );
      const ids = granted.map((result) => /lease ([0-9a-f]+) granted/.exec(result.stdout)?.[1] ?? '');
      // Relays of its own: the first scenario's stay frozen.
      const leaseRelays = await Promise.all(members.map((member) => FreezingRelay.start(member.clientPort)));
      relays.push(...leaseRelays);
      const keepAlives = startThroughRelays(leaseRelays, (index) => ['lease', 'keep-alive', ids[index] ?? '']);
      await Promise.all(keepAlives.map((keepAlive) => keepAlive.waitFor(`keepalived with TTL(${leaseTtlSeconds})`)));
      for (const relay of leaseRelays) relay.freeze();
      const transcripts = (await Promise.all(keepAlives.map((keepAlive) => keepAlive.end('by itself')))).map(
        (transcript, index) =>
          transcript
            .split(ids[index] ?? '')
            .join('<lease>')
            .replace(new RegExp(`(lease <lease> keepalived with TTL\\(${leaseTtlSeconds}\\)\n)+`), '$1'),
      );
      assert.equal(
        transcripts[0],
        `stdout:\nlease <lease> keepalived with TTL(${leaseTtlSeconds})\nlease <lease> expired or revoked.\nstderr:\nexit 0`,
      );
      for (const transcript of transcripts.slice(1)) assert.equal(transcript, transcripts[0]);
    },
  );
});
