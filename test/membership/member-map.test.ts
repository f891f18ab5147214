import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeMemberContext, type ClusterMember } from '../../src/membership/cluster-member.js';
import { MemberMap } from '../../src/membership/member-map.js';
import { type ConfChange, ConfChangeType } from '../../src/raft/conf-change.js';

const member = (id: bigint, isLearner = false, host = `m${id}`): ClusterMember => ({
  id,
  name: '',
  peerUrls: [`http://${host}:2380`],
  clientUrls: [],
  isLearner,
});

/** Checks and, when etcd allows it, applies; returns etcd's refusal message or what changed. */
function commit(map: MemberMap, change: ConfChange): string {
  const { memberChange, refusal } = map.check(change);
  if (refusal !== undefined) return refusal.message;
  return map.apply(change, memberChange).type;
}

test('a member map adds a learner, promotes it, updates and removes members, and refuses as etcd does', () => {
  const map = new MemberMap();
  map.adopt({ members: [member(1n), member(2n)], removed: [] });
  const addLearner = {
    type: ConfChangeType.addLearnerNode,
    nodeId: 3n,
    context: encodeMemberContext(member(3n, true)),
  };
  assert.equal(commit(map, addLearner), 'added');
  assert.equal(map.members.get(3n)?.isLearner, true);
  // etcd allows one learner at a time.
  const secondLearner = {
    type: ConfChangeType.addLearnerNode,
    nodeId: 4n,
    context: encodeMemberContext(member(4n, true)),
  };
  assert.equal(commit(map, secondLearner), 'etcdserver: too many learner members in cluster');
  const promote = (id: bigint) => ({
    type: ConfChangeType.addNode,
    nodeId: id,
    context: encodeMemberContext(member(id), true),
  });
  assert.equal(commit(map, promote(1n)), 'etcdserver: can only promote a learner member');
  assert.equal(commit(map, promote(3n)), 'promoted');
  assert.equal(map.members.get(3n)?.isLearner, false);
  const update = {
    type: ConfChangeType.updateNode,
    nodeId: 2n,
    context: encodeMemberContext(member(2n, false, 'moved')),
  };
  assert.equal(commit(map, update), 'updated');
  assert.deepEqual(map.members.get(2n)?.peerUrls, ['http://moved:2380']);
  const sameUrls = {
    type: ConfChangeType.updateNode,
    nodeId: 1n,
    context: encodeMemberContext(member(1n, false, 'moved')),
  };
  assert.equal(commit(map, sameUrls), 'etcdserver: Peer URLs already exists');
  assert.equal(commit(map, { type: ConfChangeType.removeNode, nodeId: 2n }), 'removed');
  assert.deepEqual([...map.members.keys()], [1n, 3n]);
  // A removed ID never comes back, and is gone for a removal too.
  const readd = { type: ConfChangeType.addNode, nodeId: 2n, context: encodeMemberContext(member(2n, false, 'again')) };
  assert.equal(commit(map, readd), 'etcdserver: member not found');
  assert.equal(commit(map, { type: ConfChangeType.removeNode, nodeId: 2n }), 'etcdserver: member not found');
  // A snapshot's membership replaces the members and keeps the removed IDs.
  map.adopt({ members: [member(5n)], removed: [6n] });
  assert.deepEqual([...map.members.keys()], [5n]);
  assert.deepEqual([...map.removed].sort(), [2n, 6n]);
});
