import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfChangeType, decodeConfChange, encodeConfChange } from '../../src/raft/conf-change.js';
import { ProposalDroppedError } from '../../machines/raw-node.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import { EntryType, MessageType, RaftRole } from '../../src/raft/types.js';
import { Cluster, confStateOf, decode, newMember, text } from './harness.js';

function elected(options = {}): Cluster {
  const cluster = new Cluster([1n, 2n, 3n], options);
  cluster.member(1n).node.campaign();
  cluster.stabilize();
  assert.deepEqual(cluster.leaders(), [1n]);
  return cluster;
}

test('three members elect the campaigner and replicate its empty entry', () => {
  const cluster = elected();
  for (const id of [1n, 2n, 3n]) {
    const status = cluster.member(id).node.status();
    assert.equal(status.term, 1);
    assert.equal(status.leaderId, 1n);
    assert.equal(status.commit, 1);
  }
});

test('a proposal at the leader commits on every member', () => {
  const cluster = elected();
  cluster.member(1n).node.propose(text('x'));
  cluster.stabilize();
  for (const id of [1n, 2n, 3n]) assert.deepEqual(cluster.appliedData(id), ['x']);
});

test('a proposal at a follower is forwarded to the leader', () => {
  const cluster = elected();
  cluster.member(3n).node.propose(text('from-3'));
  cluster.stabilize();
  for (const id of [1n, 2n, 3n]) assert.deepEqual(cluster.appliedData(id), ['from-3']);
});

test('the leader commits with one follower down but not with both', () => {
  const cluster = elected();
  cluster.isolated.add(3n);
  cluster.member(1n).node.propose(text('a'));
  cluster.stabilize();
  assert.deepEqual(cluster.appliedData(1n), ['a']);
  cluster.isolated.add(2n);
  cluster.member(1n).node.propose(text('b'));
  cluster.stabilize();
  assert.deepEqual(cluster.appliedData(1n), ['a']);
  cluster.isolated.clear();
  cluster.tick(1n, 1); // a heartbeat brings the followers back in
  cluster.stabilize();
  for (const id of [1n, 2n, 3n]) assert.deepEqual(cluster.appliedData(id), ['a', 'b']);
});

test('a lagging follower with a divergent log is repaired by backtracking', () => {
  const cluster = elected({ maxEntriesPerMessage: 2 });
  cluster.isolated.add(1n);
  // The old leader appends entries no one else sees.
  for (const v of ['lost1', 'lost2', 'lost3']) cluster.member(1n).node.propose(text(v));
  cluster.stabilize();
  cluster.member(2n).node.campaign();
  cluster.stabilize();
  for (let i = 0; i < 5; i += 1) cluster.member(2n).node.propose(text(`k${i}`));
  cluster.stabilize();
  cluster.isolated.clear();
  cluster.tick(2n, 1);
  cluster.stabilize();
  const expected = ['k0', 'k1', 'k2', 'k3', 'k4'];
  for (const id of [1n, 2n, 3n]) assert.deepEqual(cluster.appliedData(id), expected);
  assert.equal(cluster.member(1n).node.status().role, RaftRole.follower);
});

test('readIndex at the leader is answered after a heartbeat quorum', () => {
  const cluster = elected();
  cluster.member(1n).node.readIndex(text('r1'));
  cluster.processReady(1n);
  assert.equal(cluster.member(1n).readStates.length, 0);
  cluster.stabilize();
  assert.deepEqual(
    cluster.member(1n).readStates.map((r) => [r.index, decode(r.requestCtx)]),
    [[1, 'r1']],
  );
});

test('readIndex at a follower is forwarded and answered with the leader commit', () => {
  const cluster = elected();
  cluster.member(1n).node.propose(text('x'));
  cluster.stabilize();
  cluster.member(2n).node.readIndex(text('r2'));
  cluster.stabilize();
  assert.deepEqual(
    cluster.member(2n).readStates.map((r) => [r.index, decode(r.requestCtx)]),
    [[2, 'r2']],
  );
});

test('readIndex is not answered by a leader cut off from the quorum', () => {
  const cluster = elected();
  cluster.isolated.add(2n);
  cluster.isolated.add(3n);
  cluster.member(1n).node.readIndex(text('r'));
  cluster.stabilize();
  assert.equal(cluster.member(1n).readStates.length, 0);
});

test('a node with a higher term rejoining does not depose the leader under pre-vote', () => {
  const cluster = elected({ preVote: true, checkQuorum: true });
  cluster.isolated.add(3n);
  cluster.tick(3n, 50);
  cluster.stabilize();
  assert.equal(cluster.member(3n).node.status().term, 1, 'pre-vote failures must not raise the term');
  cluster.isolated.clear();
  cluster.tickAll(1);
  cluster.stabilize();
  assert.deepEqual(cluster.leaders(), [1n]);
  assert.equal(cluster.member(1n).node.status().term, 1);
});

test('without pre-vote a rejoining partitioned node forces a new term', () => {
  const cluster = elected({ preVote: false, checkQuorum: false });
  cluster.isolated.add(3n);
  cluster.tick(3n, 30);
  cluster.stabilize();
  assert.ok(cluster.member(3n).node.status().term > 1);
  cluster.isolated.clear();
  cluster.tick(3n, 30); // its next campaign carries the higher term to everyone
  cluster.stabilize();
  assert.ok(cluster.member(1n).node.status().term > 1);
});

test('a leader without a quorum steps down under check-quorum', () => {
  const cluster = elected({ checkQuorum: true });
  cluster.isolated.add(2n);
  cluster.isolated.add(3n);
  cluster.tick(1n, 25);
  assert.equal(cluster.member(1n).node.status().role, RaftRole.follower);
});

test('followers with a live leader reject votes within the lease', () => {
  const cluster = elected({ checkQuorum: true });
  cluster.member(3n).node.campaign();
  cluster.stabilize();
  assert.deepEqual(cluster.leaders(), [1n]);
  // Member 3 is now at a higher term; 1 and 2 ignored its votes and the leader still leads.
  assert.equal(cluster.member(2n).node.status().leaderId, 1n);
});

test('leadership transfers to an up-to-date follower with MsgTimeoutNow', () => {
  const cluster = elected();
  cluster.member(1n).node.transferLeader(3n);
  cluster.stabilize();
  assert.deepEqual(cluster.leaders(), [3n]);
  assert.equal(cluster.member(1n).node.status().leaderId, 3n);
  cluster.member(1n).node.propose(text('after'));
  cluster.stabilize();
  for (const id of [1n, 2n, 3n]) assert.deepEqual(cluster.appliedData(id), ['after']);
});

test('leadership transfer is requested from a follower and catches up a lagging transferee', () => {
  const cluster = elected({ preVote: true, checkQuorum: true });
  cluster.isolated.add(2n);
  cluster.member(1n).node.propose(text('a'));
  cluster.stabilize();
  cluster.isolated.clear();
  cluster.member(3n).node.transferLeader(2n);
  cluster.stabilize();
  assert.deepEqual(cluster.leaders(), [2n]);
  for (const id of [1n, 2n, 3n]) assert.deepEqual(cluster.appliedData(id), ['a']);
});

test('a leader drops proposals while a transfer is pending', () => {
  const cluster = elected();
  cluster.isolated.add(3n);
  cluster.member(1n).node.propose(text('a'));
  cluster.stabilize();
  cluster.member(1n).node.transferLeader(3n);
  assert.throws(() => cluster.member(1n).node.propose(text('b')), ProposalDroppedError);
  cluster.tick(1n, 12); // the transfer times out after an election timeout
  cluster.member(1n).node.propose(text('c'));
});

test('a follower that needs compacted entries receives a snapshot', () => {
  const cluster = elected();
  cluster.isolated.add(3n);
  for (let i = 0; i < 6; i += 1) cluster.member(1n).node.propose(text(`v${i}`));
  cluster.stabilize();
  cluster.snapshotAndCompact(1n);
  cluster.isolated.clear();
  cluster.tick(1n, 1);
  const sawSnapshot = () => cluster.queue.some((m) => m.type === MessageType.snap);
  let snapshotSent = false;
  for (let i = 0; i < 20 && !snapshotSent; i += 1) {
    cluster.processReady(1n);
    snapshotSent = sawSnapshot();
    cluster.deliverAll();
    cluster.processReady(3n);
    cluster.deliverAll();
  }
  assert.ok(snapshotSent, 'leader should send MsgSnap');
  cluster.member(1n).node.reportSnapshot(3n, true);
  cluster.stabilize();
  cluster.member(1n).node.propose(text('after'));
  cluster.stabilize();
  const expected = ['v0', 'v1', 'v2', 'v3', 'v4', 'v5', 'after'];
  for (const id of [1n, 2n, 3n]) assert.deepEqual(cluster.appliedData(id), expected);
  assert.equal(cluster.member(3n).storage.firstIndex(), cluster.member(1n).storage.firstIndex());
});

test('conf changes add a learner, promote it, and remove a voter', () => {
  const cluster = new Cluster([1n], {});
  cluster.member(1n).node.campaign();
  cluster.stabilize();
  cluster.member(1n).node.proposeConfChange({ type: ConfChangeType.addLearnerNode, nodeId: 2n });
  cluster.stabilize();
  assert.deepEqual(cluster.member(1n).confState.learners, [2n]);
  // The new member starts empty; a snapshot brings it the configuration that predates the log.
  cluster.snapshotAndCompact(1n);
  cluster.members.set(2n, newMember(2n, new MemoryStorage(), {}));
  cluster.member(1n).node.propose(text('x'));
  cluster.tick(1n, 1);
  cluster.stabilize();
  assert.deepEqual(cluster.appliedData(2n), ['x']);
  assert.deepEqual(cluster.member(2n).confState.learners, [2n]);

  cluster.member(1n).node.proposeConfChange({ type: ConfChangeType.addNode, nodeId: 2n });
  cluster.stabilize();
  assert.deepEqual(cluster.member(1n).confState.voters, [1n, 2n]);
  // A lone voter tells its learner of a commit once the entry is stable: at the next heartbeat.
  cluster.tick(1n, 1);
  cluster.stabilize();
  assert.deepEqual(cluster.member(2n).confState.voters, [1n, 2n]);
  cluster.member(1n).node.propose(text('y'));
  cluster.stabilize();
  assert.deepEqual(cluster.appliedData(2n), ['x', 'y']);

  cluster.member(1n).node.proposeConfChange({ type: ConfChangeType.removeNode, nodeId: 1n });
  cluster.stabilize();
  assert.deepEqual(cluster.member(2n).confState.voters, [2n]);
  // The removed leader leads on until its member stops it, but takes nothing new.
  assert.equal(cluster.member(1n).node.status().role, RaftRole.leader);
  assert.throws(() => cluster.member(1n).node.propose(text('z')), ProposalDroppedError);
  assert.throws(() => cluster.member(1n).node.readIndex(text('r')), ProposalDroppedError);
  cluster.tick(2n, 25);
  cluster.stabilize();
  assert.equal(cluster.member(2n).node.status().role, RaftRole.leader);
});

// Found by the membership simulator (test/raft/simulator-membership.test.ts, seed 16): the leader
// of a two-voter cluster removed itself and stepped down at once; the append telling the other
// voter that the removal committed was lost, so that voter kept counting the removed member and
// waited for its vote forever. As etcd raft 3.4, the removed leader now leads on, and its next
// heartbeat carries the commit index.
test('a leader that removed itself tells the last voter of the commit with its next heartbeat', () => {
  const cluster = new Cluster([1n, 2n], { heartbeatTicks: 1, electionTicks: 10 });
  cluster.member(1n).node.campaign();
  cluster.stabilize();
  cluster.member(1n).node.proposeConfChange({ type: ConfChangeType.removeNode, nodeId: 1n });
  cluster.processReady(1n);
  cluster.deliverAll(); // The removal reaches 2,
  cluster.processReady(2n);
  cluster.deliverAll(); // and its acknowledgement commits the removal at 1,
  cluster.processReady(1n); // which applies it; the append carrying the commit index is lost.
  cluster.queue = [];
  assert.deepEqual(cluster.member(1n).confState.voters, [2n]);
  assert.deepEqual(cluster.member(2n).confState.voters, [1n, 2n]);
  cluster.tick(1n, 1);
  cluster.stabilize();
  assert.deepEqual(cluster.member(2n).confState.voters, [2n]);
  cluster.isolated.add(1n); // Its member stops.
  cluster.tick(2n, 25);
  cluster.stabilize();
  assert.equal(cluster.member(2n).node.status().role, RaftRole.leader);
});

// Found by the membership simulator (seed 461 of RAFT_SIM_MEMBERSHIP_SEEDS=5000 from 201): a lone
// voter commits an entry as it appends it, and the Ready persisting the entry also sent it to the
// learner with that commit index; the learner applied it, the leader crashed before its fsync and
// lost it, and its next term put another entry at that index.
test('a lone voter tells its learner of a commit only once the entry is in its own stable log', () => {
  const cluster = new Cluster([1n]);
  for (const id of [1n, 2n]) {
    cluster.members.set(id, newMember(id, MemoryStorage.withConfState(confStateOf([1n], [2n])), {}));
  }
  cluster.member(1n).node.campaign();
  cluster.stabilize();
  cluster.member(1n).node.propose(text('x'));
  const ready = cluster.member(1n).node.ready();
  const entry = ready.entries.find((e) => decode(e.data) === 'x');
  assert.ok(entry, 'the Ready persists the proposal');
  const append = ready.messages.find((m) => m.type === MessageType.app && m.to === 2n);
  assert.ok(append, 'the leader sends the proposal to its learner as it persists it');
  assert.ok(append.commit < entry.index, `commit ${append.commit} told before ${entry.index} is stable`);
  // Persisted: the next heartbeat tells the learner, which then applies it.
  cluster.member(1n).storage.append(ready.entries);
  if (ready.hardState) cluster.member(1n).storage.setHardState(ready.hardState);
  cluster.queue.push(...ready.messages);
  cluster.member(1n).node.advance(ready);
  cluster.stabilize();
  cluster.tick(1n, 1);
  cluster.stabilize();
  assert.deepEqual(cluster.appliedData(2n), ['x']);
});

// Found by the membership simulator (seed 3577 of RAFT_SIM_MEMBERSHIP_SEEDS=4000 from 201): the
// last voter left after a removal applied it, the removed member stopped, and a power cut then took
// the unsynced commit index; the survivor restarted in the old configuration and waited forever
// for the removed member's vote. Committing a conf change now makes its Ready one to fsync.
test('every Ready that commits a conf change must be synced before it is applied', () => {
  const cluster = elected();
  const seen: { id: bigint; newEntries: number; mustSync: boolean }[] = [];
  cluster.onReady = (id, ready) => {
    if (ready.committedEntries.some((e) => e.type === EntryType.confChange))
      seen.push({ id, newEntries: ready.entries.length, mustSync: ready.mustSync });
  };
  cluster.member(1n).node.proposeConfChange({ type: ConfChangeType.removeNode, nodeId: 3n });
  cluster.stabilize();
  cluster.tickAll(2);
  cluster.stabilize();
  assert.deepEqual(
    seen.map((s) => s.id).sort(),
    [1n, 2n, 3n],
    'every member applies the change (the leader learns it from acknowledgements alone)',
  );
  assert.ok(seen.some((s) => s.newEntries === 0));
  for (const s of seen) assert.equal(s.mustSync, true, `member ${s.id}'s Ready committing the change`);
});

test('a second conf change while one is pending becomes a no-op entry', () => {
  const cluster = new Cluster([1n, 2n, 3n]);
  cluster.member(1n).node.campaign();
  cluster.stabilize();
  cluster.isolated.add(2n);
  cluster.isolated.add(3n);
  cluster.member(1n).node.proposeConfChange({ type: ConfChangeType.addLearnerNode, nodeId: 4n });
  cluster.member(1n).node.proposeConfChange({ type: ConfChangeType.addLearnerNode, nodeId: 5n });
  cluster.processReady(1n);
  const entries = cluster.member(1n).storage.entries(2, 4);
  assert.deepEqual(
    entries.map((e) => e.type),
    [1, 0],
  );
});

test('conf changes round-trip through the etcd protobuf encoding', () => {
  const change = { type: ConfChangeType.addLearnerNode, nodeId: 0xfedcba9876543210n, context: text('peer'), id: 7n };
  const bytes = encodeConfChange(change);
  assert.deepEqual(decodeConfChange(bytes), change);
  // etcd's gogoproto output for {ID:0, Type:AddNode, NodeID:2}: 08 00 10 00 18 02.
  assert.deepEqual([...encodeConfChange({ type: ConfChangeType.addNode, nodeId: 2n })], [8, 0, 16, 0, 24, 2]);
});

test('a restarted follower rejoins and catches up', () => {
  const cluster = elected();
  cluster.member(1n).node.propose(text('a'));
  cluster.stabilize();
  const old = cluster.member(2n);
  old.node.stop();
  const applied = old.node.status().applied;
  const restarted = newMember(2n, old.storage, old.options, applied);
  restarted.applied = old.applied;
  cluster.members.set(2n, restarted);
  cluster.member(1n).node.propose(text('b'));
  cluster.stabilize();
  assert.deepEqual(cluster.appliedData(2n), ['a', 'b']);
  assert.equal(restarted.node.status().term, 1);
});
void confStateOf;

test('a batch of proposals at a follower commits in order on every member', () => {
  const cluster = elected();
  cluster.member(2n).node.proposeMany([text('a'), text('b'), text('c')]);
  cluster.stabilize();
  for (const id of [1n, 2n, 3n]) assert.deepEqual(cluster.appliedData(id), ['a', 'b', 'c']);
});
