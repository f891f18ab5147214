import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  clusterVersionLabel,
  clusterVersionOf,
  clusterVersionToPropose,
  decideClusterVersion,
  minClusterVersion,
  raisesCapabilities,
} from '../../src/membership/cluster-version.js';
import { decodeMembership, encodeMembership } from '../../src/snap/snap-file.js';

test('the cluster version is the lowest major.minor of the members, undecided when one is unknown', () => {
  assert.equal(decideClusterVersion(['3.4.23']), '3.4.0');
  assert.equal(decideClusterVersion(['3.4.23', '3.3.9', '3.4.1']), '3.3.0');
  assert.equal(decideClusterVersion(['3.4.23', '3.10.0']), '3.4.0', 'minor versions compare as numbers');
  assert.equal(decideClusterVersion(['3.4.23', undefined]), undefined, 'a member that did not answer');
  assert.equal(decideClusterVersion(['3.4.23', 'not a version']), undefined);
  assert.equal(decideClusterVersion([]), undefined);
});

test('the leader proposes a first version, then only a higher one', () => {
  assert.equal(clusterVersionToPropose(undefined, '3.4.0'), '3.4.0');
  assert.equal(clusterVersionToPropose(undefined, undefined), minClusterVersion, 'undecided: etcd 3.4 starts at 3.0');
  assert.equal(clusterVersionToPropose('3.0.0', '3.4.0'), '3.4.0');
  assert.equal(clusterVersionToPropose('3.4.0', '3.4.0'), undefined);
  assert.equal(clusterVersionToPropose('3.4.0', '3.3.0'), undefined, 'the cluster version never goes down');
  assert.equal(clusterVersionToPropose('3.4.0', undefined), undefined);
});

test('versions are named as etcd names them: 3.4.0 in the log entry, 3.4 in logs and metrics', () => {
  assert.equal(clusterVersionOf('3.4.23'), '3.4.0');
  assert.equal(clusterVersionLabel('3.4.0'), '3.4');
  assert.equal(clusterVersionLabel('3.4'), '3.4');
  assert.throws(() => clusterVersionOf('3.4'), /major\.minor\.patch/);
});

test('capabilities are enabled for a version only when it rises', () => {
  assert.equal(raisesCapabilities(undefined, undefined), false);
  assert.equal(raisesCapabilities(undefined, '3.4.0'), true);
  assert.equal(raisesCapabilities('3.0.0', '3.4.0'), true);
  assert.equal(raisesCapabilities('3.4.0', '3.4.0'), false);
});

test('a snapshot carries the cluster version, and a malformed one is refused', () => {
  const members = [{ id: 1n, name: 'm1', peerUrls: ['http://a:2380'], clientUrls: [], isLearner: false }];
  assert.deepEqual(decodeMembership(encodeMembership({ members, removed: [], clusterVersion: '3.4.0' }), 'test'), {
    members,
    removed: [],
    clusterVersion: '3.4.0',
  });
  assert.deepEqual(decodeMembership(encodeMembership({ members, removed: [] }), 'test'), { members, removed: [] });
  const bad = encodeMembership({ members, removed: [], clusterVersion: 'three' });
  assert.throws(() => decodeMembership(bad, 'snap x'), /snap x: malformed membership/);
});
