import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage, ProposalDroppedError, RawNode } from '../../machines/raw-node.js';
import { EntryType, MessageType, RaftRole } from '../../src/raft/types.js';
import { confStateOf, decode, text } from './harness.js';

function singleVoter(
  storage = MemoryStorage.withConfState(confStateOf([1n])),
  appliedIndex = 0,
  driverMode: 'pure' | 'actor' = 'actor',
) {
  return new RawNode({
    id: 1n,
    storage,
    appliedIndex,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: false,
    checkQuorum: false,
    maxEntriesPerMessage: 64,
    maxInflightMessages: 256,
    seed: 7,
    driverMode,
  });
}

/** Persists and applies every Ready; returns the applied normal payloads. */
function drain(node: RawNode, storage: MemoryStorage): string[] {
  const applied: string[] = [];
  for (let i = 0; i < 10 && node.hasReady(); i += 1) {
    const ready = node.ready();
    if (ready.hardState) storage.setHardState(ready.hardState);
    storage.append(ready.entries);
    for (const e of ready.committedEntries)
      if (e.type === EntryType.normal && e.data.length > 0) applied.push(decode(e.data));
    node.advance(ready);
  }
  return applied;
}

for (const driverMode of ['actor', 'pure'] as const) {
  test(`a single voter elects itself on campaign and commits the empty entry (${driverMode})`, () => {
    const storage = MemoryStorage.withConfState(confStateOf([1n]));
    const node = singleVoter(storage, 0, driverMode);
    node.campaign();
    const ready = node.ready();
    assert.equal(ready.softState?.role, RaftRole.leader);
    assert.deepEqual(ready.hardState, { term: 1, vote: 1n, commit: 1 });
    assert.equal(ready.entries.length, 1);
    assert.equal(ready.committedEntries.length, 1);
    assert.equal(ready.mustSync, true);
    assert.equal(ready.messages.length, 0);
    storage.setHardState(ready.hardState!);
    storage.append(ready.entries);
    node.advance(ready);
    assert.equal(node.hasReady(), false);
    assert.equal(node.status().applied, 1);
  });
}

test('a single voter commits a proposal in the same Ready that carries it', () => {
  const storage = MemoryStorage.withConfState(confStateOf([1n]));
  const node = singleVoter(storage);
  node.campaign();
  drain(node, storage);
  node.propose(text('x'));
  const ready = node.ready();
  assert.deepEqual(
    ready.entries.map((e) => decode(e.data)),
    ['x'],
  );
  assert.deepEqual(
    ready.committedEntries.map((e) => decode(e.data)),
    ['x'],
  );
  assert.equal(ready.hardState?.commit, 2);
});

test('a single voter elects itself after the election timeout', () => {
  const node = singleVoter();
  for (let i = 0; i < 20 && node.status().role !== RaftRole.leader; i += 1) node.tick();
  assert.equal(node.status().role, RaftRole.leader);
  assert.equal(node.status().term, 1);
});

test('a proposal without a leader throws ProposalDroppedError', () => {
  const node = singleVoter();
  assert.throws(() => node.propose(text('x')), ProposalDroppedError);
  assert.throws(() => node.readIndex(text('r')), ProposalDroppedError);
});

test('a single voter answers readIndex at once with its commit index', () => {
  const storage = MemoryStorage.withConfState(confStateOf([1n]));
  const node = singleVoter(storage);
  node.campaign();
  drain(node, storage);
  node.propose(text('a'));
  drain(node, storage);
  node.readIndex(text('ctx'));
  const ready = node.ready();
  assert.equal(ready.readStates.length, 1);
  assert.equal(ready.readStates[0]?.index, 2);
  assert.equal(decode(ready.readStates[0]!.requestCtx), 'ctx');
  node.advance(ready);
});

test('a restarted single voter resumes from storage and keeps its log', () => {
  const storage = MemoryStorage.withConfState(confStateOf([1n]));
  const first = singleVoter(storage);
  first.campaign();
  drain(first, storage);
  first.propose(text('a'));
  first.propose(text('b'));
  assert.deepEqual(drain(first, storage), ['a', 'b']);
  first.stop();

  const restarted = singleVoter(storage, 3);
  const status = restarted.status();
  assert.equal(status.term, 1);
  assert.equal(status.commit, 3);
  assert.equal(status.role, RaftRole.follower);
  assert.equal(restarted.hasReady(), false);
  restarted.campaign();
  restarted.propose(text('c'));
  assert.deepEqual(drain(restarted, storage), ['c']);
  assert.equal(restarted.status().term, 2);
  assert.deepEqual(
    storage.entries(1, storage.lastIndex() + 1).map((e) => e.term),
    [1, 1, 1, 2, 2],
  );
});

test('a restart with an older applied index re-delivers the committed tail', () => {
  const storage = MemoryStorage.withConfState(confStateOf([1n]));
  const first = singleVoter(storage);
  first.campaign();
  drain(first, storage);
  first.propose(text('a'));
  first.propose(text('b'));
  drain(first, storage);
  const restarted = singleVoter(storage, 2);
  const ready = restarted.ready();
  assert.deepEqual(
    ready.committedEntries.map((e) => decode(e.data)),
    ['b'],
  );
});

test('an invariant failure inside the role machine throws synchronously from the call', () => {
  const storage = MemoryStorage.withConfState(confStateOf([1n, 2n]));
  const node = singleVoter(storage);
  const badSnapshot = {
    type: 7,
    to: 1n,
    from: 2n,
    term: 1,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
  };
  assert.throws(() => node.step(badSnapshot), /MsgSnap without a snapshot/);
});

test('the role machine tells which named event entered the current role, in pure and actor mode alike', () => {
  for (const mode of ['pure', 'actor'] as const) {
    const storage = MemoryStorage.withConfState(confStateOf([1n]));
    const node = singleVoter(storage, 0, mode);
    assert.equal(node.roleEnteredBy(), 'xstate.init', mode);
    node.campaign();
    assert.equal(node.status().role, RaftRole.leader, mode);
    assert.equal(node.roleEnteredBy(), 'VOTE_WON', mode);
    drain(node, storage);
    const append = { type: MessageType.app, to: 1n, from: 2n, term: 9, logTerm: 0, index: 0, entries: [], commit: 0 };
    node.step({ ...append, reject: false, rejectHint: 0 });
    assert.equal(node.status().role, RaftRole.follower, mode);
    assert.equal(node.roleEnteredBy(), 'HIGHER_TERM', mode);
  }
});
