/**
 * The member's publish loop (etcd's publish): a try that waited out its request timeout is followed
 * by the next at once, as etcd's loop does, so that a leader elected during the failed try's last
 * moments takes the attributes without an extra wait; a try refused at once (a dropped proposal)
 * waits an election timeout before the next, so a member cannot spin on it. The clock is node:test's
 * mock timers, so nothing here depends on how fast the machine is.
 */
import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { errors } from '../../src/api/errors.js';
import type { MemberConfig } from '../../src/config/config.js';
import { Cluster, type ClusterParts } from '../../actors/member/cluster.js';
import { MemberLifecycle } from '../../machines/member-lifecycle.js';

const electionTimeoutMs = 5_000;

/** A Cluster whose Raft loop answers each publish try with the next of `outcomes` (an error fails it). */
function publishingCluster(outcomes: Array<Error | 'applied'>) {
  const tries: number[] = [];
  const logged: string[] = [];
  const lifecycle = new MemberLifecycle();
  const config = { name: 'm1', advertiseClientUrls: ['http://127.0.0.1:2379'], electionTimeoutMs } as MemberConfig;
  const logger = {
    info: (_fields: object, msg: string) => void logged.push(msg),
    warn: (fields: { error?: string }, msg: string) => void logged.push(`${msg}: ${fields.error}`),
  };
  const parts = {
    config,
    memberId: 1n,
    clusterId: 2n,
    lifecycle,
    logger,
    loop: {
      propose: () => {
        tries.push(tries.length + 1);
        const outcome = outcomes.shift();
        assert.ok(outcome !== undefined, `more publish tries than the test planned (${tries.length})`);
        return outcome === 'applied' ? Promise.resolve({}) : Promise.reject(outcome);
      },
    },
  } as unknown as ClusterParts;
  return { cluster: new Cluster(parts), tries, logged, lifecycle };
}

/** Lets the promise callbacks of a settled try run. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 5; turn++) await Promise.resolve();
}

test('a publish try that timed out is followed by the next at once, as in etcd', async (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const { cluster, tries, logged } = publishingCluster([errors.deadlineExceeded(), errors.timeout(), 'applied']);
  let published = false;
  void cluster.publishAttributes().then(() => (published = true));
  await settle();
  assert.equal(tries.length, 1);
  mock.timers.tick(0);
  await settle();
  assert.equal(tries.length, 2, 'the try after a timed-out one starts without waiting');
  mock.timers.tick(0);
  await settle();
  assert.equal(tries.length, 3);
  assert.equal(published, true);
  assert.deepEqual(logged, [
    'failed to publish local member to cluster through raft: etcdserver: request timed out',
    'failed to publish local member to cluster through raft: etcdserver: request timed out',
    'published local member to cluster through raft',
  ]);
});

test('a publish try refused at once waits an election timeout before the next', async (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const { cluster, tries, logged } = publishingCluster([errors.proposalDropped(), 'applied']);
  void cluster.publishAttributes();
  await settle();
  mock.timers.tick(electionTimeoutMs - 1);
  await settle();
  assert.equal(tries.length, 1, 'no second try within the election timeout');
  mock.timers.tick(1);
  await settle();
  assert.equal(tries.length, 2);
  assert.deepEqual(logged, [
    'failed to publish local member to cluster through raft: raft proposal dropped',
    'published local member to cluster through raft',
  ]);
});

test('a stopped member ends its publish loop after the failed try', async (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const { cluster, tries, logged, lifecycle } = publishingCluster([errors.stopped()]);
  void cluster.publishAttributes();
  lifecycle.send({ type: 'STOP' });
  await settle();
  mock.timers.tick(0);
  await settle();
  assert.equal(tries.length, 1);
  assert.deepEqual(logged, ['stopped publish because server is stopped: etcdserver: server stopped']);
});
