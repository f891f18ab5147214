/**
 * The role machine's graph and the events it takes. The graph must hold Raft's role changes and
 * no others, each a named event; these tests walk the machine definition for the edge set and
 * drive bare role machines (no RawNode) to see which events an election or a step-down takes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Actor, type InspectionEvent, createActor } from 'xstate';
import { type RaftRoleCommand, raftRoleMachine } from '../../machines/raft-role.js';
import { type RaftCore, message, newRaftCore } from '../../src/raft/raft.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import { EntryType, type Message, MessageType, type NodeId } from '../../src/raft/types.js';
import { confStateOf, decode, text } from './harness.js';

/** Every `source -EVENT-> target` of the machine, from its definition, sorted. */
function edgesOf(machine: typeof raftRoleMachine): string[] {
  const edges = new Set<string>();
  for (const node of [machine.root, ...Object.values(machine.root.states)]) {
    for (const [eventType, transitions] of node.transitions) {
      for (const transition of transitions) {
        for (const target of transition.target ?? []) edges.add(`${node.key} -${eventType}-> ${target.key}`);
      }
    }
  }
  return [...edges].sort();
}

const raftEdges = [
  'follower -CAMPAIGN-> candidate',
  'follower -CAMPAIGN-> preCandidate',
  'follower -ELECTION_TIMEOUT-> candidate',
  'follower -ELECTION_TIMEOUT-> preCandidate',
  'follower -HIGHER_TERM-> follower',
  'follower -TIMEOUT_NOW-> candidate',
  'preCandidate -CAMPAIGN-> candidate',
  'preCandidate -CAMPAIGN-> preCandidate',
  'preCandidate -ELECTION_TIMEOUT-> candidate',
  'preCandidate -ELECTION_TIMEOUT-> preCandidate',
  'preCandidate -HIGHER_TERM-> follower',
  'preCandidate -LEADER_SEEN-> follower',
  'preCandidate -PRE_VOTE_LOST-> follower',
  'preCandidate -PRE_VOTE_WON-> candidate',
  'candidate -CAMPAIGN-> candidate',
  'candidate -CAMPAIGN-> preCandidate',
  'candidate -ELECTION_TIMEOUT-> candidate',
  'candidate -ELECTION_TIMEOUT-> preCandidate',
  'candidate -HIGHER_TERM-> follower',
  'candidate -LEADER_SEEN-> follower',
  'candidate -VOTE_LOST-> follower',
  'candidate -VOTE_WON-> leader',
  'leader -DEMOTED-> follower',
  'leader -HIGHER_TERM-> follower',
  'leader -QUORUM_LOST-> follower',
].sort();

test('the role machine has exactly the role changes Raft allows, each a named event', () => {
  assert.deepEqual(edgesOf(raftRoleMachine), raftEdges);
});

test('the role machine has no leader -> candidate, leader -> preCandidate, follower -> leader or preCandidate -> leader edge', () => {
  const pairs = new Set(edgesOf(raftRoleMachine).map((edge) => edge.replace(/ -\w+-> /, ' -> ')));
  for (const forbidden of [
    'leader -> candidate',
    'leader -> preCandidate',
    'follower -> leader',
    'preCandidate -> leader',
  ]) {
    assert.equal(pairs.has(forbidden), false, `forbidden edge ${forbidden}`);
  }
  // Only a candidate becomes leader, and only by winning its vote.
  assert.deepEqual(
    edgesOf(raftRoleMachine).filter((edge) => edge.endsWith('-> leader')),
    ['candidate -VOTE_WON-> leader'],
  );
});

test('no role follows a field: no eventless transition changes the role', () => {
  // The root's eventless transition only raises a recorded role change as its named event.
  for (const node of [raftRoleMachine.root, ...Object.values(raftRoleMachine.root.states)]) {
    for (const transition of node.always ?? [])
      assert.equal(transition.target, undefined, `${node.key} has an eventless edge`);
  }
  assert.deepEqual(
    Object.values(raftRoleMachine.root.states).map((node) => node.always ?? []),
    [[], [], [], []],
  );
});

/**
 * A bare role machine over a fresh core, recording each microstep that takes an event as 'EVENT'
 * or 'source -EVENT-> target' (the root's eventless step that raises a role change is left out).
 */
interface Member {
  id: NodeId;
  core: RaftCore;
  actor: Actor<typeof raftRoleMachine>;
  steps: string[];
}

function newMember(id: NodeId, voters: NodeId[], options: { preVote?: boolean; learners?: NodeId[] } = {}): Member {
  const core = newRaftCore({
    id,
    storage: MemoryStorage.withConfState(confStateOf(voters, options.learners ?? [])),
    appliedIndex: 0,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: options.preVote ?? false,
    checkQuorum: false,
    maxEntriesPerMessage: 64,
    maxInflightMessages: 256,
    seed: Number(id),
  });
  const steps: string[] = [];
  const inspect = (inspection: InspectionEvent) => {
    if (inspection.type !== '@xstate.microstep' || inspection.event.type === 'xstate.init') return;
    if (inspection._transitions.every((t) => t.eventType === '')) return;
    const targeted = inspection._transitions.find((t) => t.target !== undefined);
    const target = targeted?.target?.[0];
    steps.push(
      targeted && target ? `${targeted.source.key} -${inspection.event.type}-> ${target.key}` : inspection.event.type,
    );
  };
  const actor = createActor(raftRoleMachine, { input: { core }, inspect });
  actor.start();
  return { id, core, actor, steps };
}

/** The role changes among a member's microsteps. */
const roleChanges = (member: Member): string[] => member.steps.filter((step) => step.includes('->'));

function send(member: Member, event: RaftRoleCommand): void {
  member.actor.send(event);
  const snapshot = member.actor.getSnapshot();
  if (snapshot.status === 'error') throw snapshot.error;
}

/** Delivers every member's outbox, one MESSAGE batch per target, until no message is left. */
function stabilize(members: Member[]): void {
  for (let round = 0; round < 100; round += 1) {
    const byTarget = new Map<NodeId, Message[]>();
    for (const member of members) {
      for (const m of member.core.outbox) byTarget.set(m.to, [...(byTarget.get(m.to) ?? []), m]);
      member.core.outbox = [];
    }
    if (byTarget.size === 0) return;
    for (const [to, messages] of byTarget) {
      const target = members.find((member) => member.id === to);
      if (target) send(target, { type: 'MESSAGE', messages });
    }
  }
  throw new Error('members did not stabilize within 100 rounds');
}

const roleOf = (member: Member): string => String(member.actor.getSnapshot().value);

test('three members elect the campaigner by CAMPAIGN then VOTE_WON, and the voters take HIGHER_TERM', () => {
  const members = [1n, 2n, 3n].map((id) => newMember(id, [1n, 2n, 3n]));
  const [campaigner, voter] = members as [Member, Member, Member];
  send(campaigner, { type: 'CAMPAIGN' });
  stabilize(members);
  assert.deepEqual(members.map(roleOf), ['leader', 'follower', 'follower']);
  assert.deepEqual(roleChanges(campaigner), ['follower -CAMPAIGN-> candidate', 'candidate -VOTE_WON-> leader']);
  // The first vote response wins: its batch's MESSAGE raises VOTE_WON; the second arrives at the leader.
  assert.deepEqual(campaigner.steps.slice(0, 4), [
    'follower -CAMPAIGN-> candidate',
    'MESSAGE',
    'candidate -VOTE_WON-> leader',
    'MESSAGE',
  ]);
  // A voter learns term 1 from the MsgVote: HIGHER_TERM, then the follower it stays grants the vote.
  assert.deepEqual(voter.steps.slice(0, 3), ['MESSAGE', 'follower -HIGHER_TERM-> follower', 'MESSAGE']);
  assert.deepEqual([voter.core.term, voter.core.vote, voter.core.leaderId], [1, 1n, 1n]);
});

test('with pre-vote three members elect the campaigner by CAMPAIGN, PRE_VOTE_WON then VOTE_WON', () => {
  const members = [1n, 2n, 3n].map((id) => newMember(id, [1n, 2n, 3n], { preVote: true }));
  const campaigner = members[0] as Member;
  send(campaigner, { type: 'CAMPAIGN' });
  stabilize(members);
  assert.deepEqual(members.map(roleOf), ['leader', 'follower', 'follower']);
  assert.deepEqual(roleChanges(campaigner), [
    'follower -CAMPAIGN-> preCandidate',
    'preCandidate -PRE_VOTE_WON-> candidate',
    'candidate -VOTE_WON-> leader',
  ]);
  assert.equal(campaigner.core.term, 1);
});

for (const preVote of [false, true]) {
  test(`a single voter elects itself in two transitions, ELECTION_TIMEOUT then VOTE_WON (pre-vote ${preVote ? 'on' : 'off'})`, () => {
    const member = newMember(1n, [1n], { preVote });
    for (let i = 0; i < 20 && roleOf(member) !== 'leader'; i += 1) send(member, { type: 'TICK' });
    assert.deepEqual(roleChanges(member), ['follower -ELECTION_TIMEOUT-> candidate', 'candidate -VOTE_WON-> leader']);
    assert.deepEqual([member.core.term, member.core.vote, member.core.log.lastIndex()], [1, 1n, 1]);
  });
}

test('a leader that sees a higher term steps down by HIGHER_TERM, and the follower it becomes answers the message', () => {
  const leader = newMember(1n, [1n, 2n, 3n]);
  const others = [2n, 3n].map((id) => newMember(id, [1n, 2n, 3n]));
  send(leader, { type: 'CAMPAIGN' });
  stabilize([leader, ...others]);
  assert.equal(roleOf(leader), 'leader');
  leader.steps.length = 0;
  send(leader, { type: 'MESSAGE', messages: [message({ type: MessageType.heartbeat, from: 3n, to: 1n, term: 5 })] });
  assert.deepEqual(leader.steps, ['MESSAGE', 'leader -HIGHER_TERM-> follower', 'MESSAGE']);
  assert.deepEqual([roleOf(leader), leader.core.term, leader.core.vote, leader.core.leaderId], ['follower', 5, 0n, 3n]);
  assert.deepEqual(
    leader.core.outbox.map((m) => [m.type, m.to, m.term]),
    [[MessageType.heartbeatResp, 3n, 5]],
  );
});

test('the rest of a batch after a role change is stepped by the new role', () => {
  const members = [1n, 2n, 3n].map((id) => newMember(id, [1n, 2n, 3n]));
  const [candidate, voter] = members as [Member, Member, Member];
  send(candidate, { type: 'CAMPAIGN' });
  candidate.core.outbox = [];
  // The vote that wins, then an acknowledgement of the leader's empty entry in the same batch: a
  // candidate would ignore the MsgAppResp; the leader counts it and commits index 1.
  const grant = message({ type: MessageType.voteResp, from: voter.id, to: 1n, term: 1 });
  const ack = message({ type: MessageType.appResp, from: voter.id, to: 1n, term: 1, index: 1 });
  send(candidate, { type: 'MESSAGE', messages: [grant, ack] });
  assert.deepEqual(candidate.steps, [
    'follower -CAMPAIGN-> candidate',
    'MESSAGE',
    'candidate -VOTE_WON-> leader',
    'MESSAGE',
  ]);
  assert.equal(candidate.core.log.committed, 1);
});

test('a lone voter taking TIMEOUT_NOW wins before the rest of its batch is stepped', () => {
  // Voter 1 alone, with learner 2 forwarding a proposal right behind a MsgTimeoutNow: the
  // candidacy wins by its own vote at once, so the leader, not the candidate, takes the proposal.
  const member = newMember(1n, [1n], { learners: [2n] });
  const proposal = message({
    type: MessageType.prop,
    from: 2n,
    to: 1n,
    entries: [{ term: 0, index: 0, type: EntryType.normal, data: text('p') }],
  });
  send(member, { type: 'MESSAGE', messages: [message({ type: MessageType.timeoutNow, from: 2n, to: 1n }), proposal] });
  assert.deepEqual(member.steps, [
    'MESSAGE',
    'follower -TIMEOUT_NOW-> candidate',
    'candidate -VOTE_WON-> leader',
    'MESSAGE',
  ]);
  assert.deepEqual(
    member.core.log.entriesFrom(1, 10).map((e) => decode(e.data)),
    ['', 'p'],
  );
});
