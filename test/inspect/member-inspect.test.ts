import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage, RawNode } from '../../machines/raw-node.js';
import { MemberLifecycle } from '../../machines/member-lifecycle.js';
import type { MachineInspect } from '../../machines/raft-role.js';
import { createMemberInspect, inspectionSessionPrefix, memberOfSession } from '../../actors/inspect/member-inspect.js';
import { confStateOf } from '../raft/harness.js';

function singleVoter(inspect: MachineInspect | undefined, preVote: boolean): RawNode {
  return new RawNode({
    id: 1n,
    storage: MemoryStorage.withConfState(confStateOf([1n])),
    appliedIndex: 0,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote,
    checkQuorum: false,
    maxEntriesPerMessage: 64,
    maxInflightMessages: 256,
    seed: 7,
    ...(inspect === undefined ? {} : { inspect }),
  });
}

/** An inspection event as it arrives over the wire. */
interface Wire {
  type: string;
  sessionId: string;
  name?: string;
  definition?: string;
  event: { type: string };
  snapshot: { value?: unknown; context: Record<string, unknown> };
}

/** Collects what a member's inspection sends, as JSON would carry it. */
function recorder(): { events: Wire[]; adapter: { send(event: unknown): void } } {
  const events: Wire[] = [];
  return { events, adapter: { send: (event) => events.push(JSON.parse(JSON.stringify(event)) as Wire) } };
}

/** [from, to, event type] for each snapshot that changed the state of session `sessionId`. */
function transitions(events: Wire[], sessionId: string): string[] {
  const seen: string[] = [];
  let previous: unknown;
  for (const event of events) {
    if (event.type !== '@xstate.snapshot' || event.sessionId !== sessionId) continue;
    const value = event.snapshot.value;
    if (previous !== undefined && value !== previous)
      seen.push(`${String(previous)} -> ${String(value)} ${event.event.type}`);
    previous = value;
  }
  return seen;
}

test('a role change is shown with the named event that caused it, and idle ticks are left out', () => {
  const { events, adapter } = recorder();
  const node = singleVoter(createMemberInspect(inspectionSessionPrefix('infra1', 1), adapter, false), false);
  const actor = events.find((event) => event.type === '@xstate.actor');
  assert.ok(actor !== undefined);
  assert.equal(actor.name, 'raftRole');
  assert.equal(memberOfSession(actor.sessionId), 'infra1');
  assert.match(actor.definition ?? '', /"candidate"/);
  for (let tick = 0; tick < 40; tick += 1) node.tick();
  assert.deepEqual(transitions(events, actor.sessionId), [
    'follower -> candidate ELECTION_TIMEOUT',
    'candidate -> leader VOTE_WON',
  ]);
  const shownTypes = events.filter((event) => event.type === '@xstate.event').map((event) => event.event.type);
  // Only the tick that timed out the election is shown; the other ticks changed nothing.
  assert.equal(shownTypes.filter((type) => type === 'TICK').length, 1);
  assert.ok(shownTypes.includes('ELECTION_TIMEOUT') && shownTypes.includes('VOTE_WON'));
  const leader = events.filter((event) => event.type === '@xstate.snapshot').at(-1);
  assert.ok(leader !== undefined);
  assert.equal(leader.snapshot.context.member, '1');
  assert.equal(leader.snapshot.context.term, 1);
  assert.equal(leader.snapshot.context.core, undefined);
});

test('with --inspect-all-events every tick is shown', () => {
  const { events, adapter } = recorder();
  const node = singleVoter(createMemberInspect(inspectionSessionPrefix('infra1', 1), adapter, true), false);
  for (let tick = 0; tick < 40; tick += 1) node.tick();
  const ticks = events.filter((event) => event.type === '@xstate.event' && event.event.type === 'TICK');
  assert.equal(ticks.length, 40);
});

test('session IDs are prefixed with the member, so members in one thread never share one', () => {
  const { events, adapter } = recorder();
  singleVoter(createMemberInspect(inspectionSessionPrefix('infra1', 1), adapter, false), true);
  singleVoter(createMemberInspect(inspectionSessionPrefix('infra2', 1), adapter, false), true);
  new MemberLifecycle(createMemberInspect(inspectionSessionPrefix('infra1', 1), adapter, false)).send({
    type: 'STARTED',
  });
  const sessions = events.filter((event) => event.type === '@xstate.actor').map((event) => event.sessionId);
  assert.equal(sessions.length, 3);
  assert.equal(new Set(sessions).size, 3);
  assert.deepEqual(sessions.map(memberOfSession), ['infra1', 'infra2', 'infra1']);
  const lifecycle = sessions[2] as string;
  assert.deepEqual(transitions(events, lifecycle), ['starting -> serving STARTED']);
});

test('an inspection that fails never fails the machine: the member goes on and the failure is reported', () => {
  const failures: unknown[] = [];
  const failing = {
    send: () => {
      throw new Error('inspector adapter failed');
    },
  };
  const node = singleVoter(
    createMemberInspect(inspectionSessionPrefix('infra1', 1), failing, false, (error) => failures.push(error)),
    false,
  );
  for (let tick = 0; tick < 40; tick += 1) node.tick();
  assert.equal(node.status().role, 'leader');
  assert.ok(failures.length > 0);
});
