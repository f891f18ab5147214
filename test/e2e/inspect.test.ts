/**
 * Members stream their machines to an inspector (--inspect-url): a three-member cluster of
 * processes streams to a test WebSocket server, and after its leader is killed with SIGKILL the
 * stream shows a surviving member become leader step by step, each step with the event that caused
 * it. Single-host mode (members as threads of one process) streams through `tsetcd inspect`, which
 * relays to a viewer and prints the role changes. Both run with --pre-vote=true (etcd 3.4's default
 * is false): the steps looked for include the pre-candidate's.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { memberOfSession } from '../../actors/inspect/member-inspect.js';
import { Cluster, pollUntil } from '../support/cluster.js';
import { probeHealth } from '../support/member.js';
import { busyPorts, freePort, loopbackHost } from '../support/ports.js';
import { sutCommand } from '../support/sut.js';

/** Bound on a leader's election showing up in the stream, and on single-host start-up. */
const streamWaitMs = 20_000;

/** An inspection event as it arrives over the wire. */
interface Wire {
  type: string;
  sessionId: string;
  name?: string;
  event?: { type: string };
  snapshot?: { value?: unknown; context?: { term?: number } };
}

/** Records every message received into `events`, parsed. */
function record(socket: WebSocket, events: Wire[]): void {
  socket.on('message', (data: Buffer) => events.push(JSON.parse(data.toString()) as Wire));
}

/** The role machine's session of `member`: the one its @xstate.actor named raftRole. */
function roleSession(events: Wire[], member: string): string | undefined {
  return events.find(
    (e) => e.type === '@xstate.actor' && e.name === 'raftRole' && memberOfSession(e.sessionId) === member,
  )?.sessionId;
}

/** Each state change of `sessionId` from the `from`-th event on, as "from -> to EVENT". */
function transitions(events: Wire[], sessionId: string, from = 0): string[] {
  const seen: string[] = [];
  let previous: unknown;
  for (const [index, event] of events.entries()) {
    if (event.type !== '@xstate.snapshot' || event.sessionId !== sessionId) continue;
    const value = event.snapshot?.value;
    if (previous !== undefined && value !== previous && index >= from)
      seen.push(`${String(previous)} -> ${String(value)} ${event.event?.type}`);
    previous = value;
  }
  return seen;
}

const election = [
  'follower -> preCandidate ELECTION_TIMEOUT',
  'preCandidate -> candidate PRE_VOTE_WON',
  'candidate -> leader VOTE_WON',
];

/** '' when `seen` holds `steps` in order (other steps may come between), else what is missing. */
function missingSteps(seen: string[], steps: string[]): string {
  let at = 0;
  for (const step of steps) {
    const found = seen.indexOf(step, at);
    if (found < 0) return `no "${step}" after the steps before it in [${seen.join('; ')}]`;
    at = found + 1;
  }
  return '';
}

function assertDistinctSessions(events: Wire[], members: string[]): void {
  const sessions = events.filter((e) => e.type === '@xstate.actor').map((e) => e.sessionId);
  assert.equal(new Set(sessions).size, sessions.length, `session IDs repeat: ${sessions.join(', ')}`);
  assert.deepEqual([...new Set(sessions.map(memberOfSession))].sort(), [...members].sort());
  for (const member of members) {
    const names = events
      .filter((e) => e.type === '@xstate.actor' && memberOfSession(e.sessionId) === member)
      .map((e) => e.name)
      .sort();
    assert.deepEqual(names, ['memberLifecycle', 'raftRole'], `sessions of ${member}`);
  }
}

const sut = sutCommand();
const tsetcdOnly =
  sut.command === undefined ? sut.skipReason : sut.command.label === 'tsetcd' ? undefined : 'tsetcd only';

describe('a cluster of processes streams to an inspector', tsetcdOnly === undefined ? {} : { skip: tsetcdOnly }, () => {
  let server: WebSocketServer;
  let cluster: Cluster | undefined;
  const events: Wire[] = [];

  before(async () => {
    server = new WebSocketServer({ host: loopbackHost, port: 0 });
    await new Promise((resolve) => server.once('listening', resolve));
    server.on('connection', (socket) => record(socket, events));
  });

  after(async () => {
    await cluster?.destroy();
    server.close();
  });

  test('after the leader is killed, a survivor goes follower -> preCandidate -> candidate -> leader, each by its event', async () => {
    const address = server.address();
    assert.ok(typeof address === 'object' && address !== null);
    cluster = await Cluster.start({
      command: sut.command!,
      extraFlags: ['--pre-vote=true', '--inspect-url', `ws://${loopbackHost}:${address.port}`],
    });
    const names = cluster.members.map((member) => member.name);
    const leader = await cluster.leader();
    await pollUntil('every member registered its machines', streamWaitMs, async () =>
      names.every((name) => roleSession(events, name) !== undefined) ? '' : 'not yet',
    );
    const killedAt = events.length;
    await leader.kill9();
    const next = await cluster.leader();
    assert.notEqual(next.name, leader.name);
    const session = roleSession(events, next.name)!;
    await pollUntil(`${next.name}'s election in the stream`, streamWaitMs, async () =>
      missingSteps(transitions(events, session, killedAt), election),
    );
    const shown = events.slice(killedAt).filter((e) => e.type === '@xstate.event' && e.sessionId === session);
    for (const type of ['ELECTION_TIMEOUT', 'PRE_VOTE_WON', 'VOTE_WON'])
      assert.ok(
        shown.some((e) => e.event?.type === type),
        `${type} shown as an event of ${session}`,
      );
    assertDistinctSessions(events, names);
  });
});

const singleHostPorts = [2379, 22379, 32379, 2380, 22380, 32380];
const portsBusy = tsetcdOnly === undefined ? await busyPorts(singleHostPorts) : [];
const singleHostSkip =
  tsetcdOnly ?? (portsBusy.length > 0 ? `single-host ports in use: ${portsBusy.join(', ')}` : undefined);

describe(
  'single-host mode streams through tsetcd inspect',
  singleHostSkip === undefined ? {} : { skip: singleHostSkip },
  () => {
    let workDir: string;
    let relay: ChildProcess;
    let cluster: ChildProcess;
    let relayOutput = '';
    let viewer: WebSocket;
    const events: Wire[] = [];

    before(async () => {
      workDir = await mkdtemp(join(tmpdir(), 'tsetcd-inspect-test-'));
      const command = sut.command!;
      const port = await freePort();
      const url = `ws://${loopbackHost}:${port}`;
      relay = spawn(command.command, [...command.args, 'inspect', '--listen', url], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      relay.stdout?.on('data', (chunk: Buffer) => (relayOutput += chunk.toString()));
      let relayLog = '';
      relay.stderr?.on('data', (chunk: Buffer) => (relayLog += chunk.toString()));
      await pollUntil('tsetcd inspect listening', streamWaitMs, async () =>
        relayLog.includes('relaying inspection streams') ? '' : `log so far: "${relayLog}"`,
      );
      viewer = new WebSocket(url);
      record(viewer, events);
      await new Promise((resolve, reject) => viewer.once('open', resolve).once('error', reject));
      cluster = spawn(
        command.command,
        [...command.args, 'cluster', '--members', '3', '--pre-vote=true', '--inspect-url', url],
        {
          cwd: workDir,
          stdio: 'ignore',
        },
      );
      for (const clientPort of [2379, 22379, 32379])
        await pollUntil(`member on ${clientPort} healthy`, streamWaitMs, () =>
          probeHealth(`http://${loopbackHost}:${clientPort}`),
        );
    });

    after(async () => {
      viewer?.close();
      for (const child of [cluster, relay])
        if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await rm(workDir, { recursive: true, force: true });
    });

    test('the viewer sees the leader elected with its events, and member threads have distinct sessions', async () => {
      const names = ['infra1', 'infra2', 'infra3'];
      let leaderSteps = '';
      await pollUntil('an election in the relayed stream', streamWaitMs, async () => {
        for (const name of names) {
          const session = roleSession(events, name);
          if (session === undefined) continue;
          const seen = transitions(events, session);
          if (seen.includes('candidate -> leader VOTE_WON')) {
            leaderSteps = missingSteps(seen, election);
            return '';
          }
        }
        return 'no leader yet';
      });
      assert.equal(leaderSteps, '');
      await pollUntil('every member thread registered', streamWaitMs, async () =>
        events.filter((e) => e.type === '@xstate.actor').length >= 6 ? '' : 'not yet',
      );
      assertDistinctSessions(events, names);
    });

    test('tsetcd inspect prints each role change: member, term, from -> to and the event', async () => {
      await pollUntil('the election printed', streamWaitMs, async () =>
        /^infra\d term \d+: candidate -> leader \(VOTE_WON\)$/m.test(relayOutput)
          ? ''
          : `printed so far: "${relayOutput}"`,
      );
      assert.match(relayOutput, /^infra\d term \d+: follower -> preCandidate \(ELECTION_TIMEOUT\)$/m);
      assert.match(relayOutput, /^infra\d term \d+: preCandidate -> candidate \(PRE_VOTE_WON\)$/m);
      assert.match(relayOutput, /^infra\d memberLifecycle: starting -> serving \(STARTED\)$/m);
    });
  },
);
