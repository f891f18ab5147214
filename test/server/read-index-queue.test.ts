/** The read-index queue: reads wait unsent, then requested, then confirmed, and run once applied. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReadIndexQueue, readIndexContextPrefix } from '../../src/server/read-index-queue.js';
import { RaftRole } from '../../src/raft/types.js';
import { Cluster } from '../raft/harness.js';

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));

test('with no read waiting there is no request to make', () => {
  const queue = new ReadIndexQueue<string>('m1');
  assert.equal(queue.hasUnsent, false);
  assert.equal(queue.takeRequest(), undefined);
});

test('the reads unsent at a pass share one request, and each request has a new context', () => {
  const queue = new ReadIndexQueue<string>('m1');
  queue.add('a');
  queue.add('b');
  assert.equal(queue.hasUnsent, true);
  assert.equal(text(queue.takeRequest()), 'm1.1');
  assert.equal(queue.hasUnsent, false);
  queue.add('c');
  assert.equal(text(queue.takeRequest()), 'm1.2');
  assert.equal(queue.size, 3);
});

test('confirmed reads run only once their read index is applied, in confirmation order', () => {
  const queue = new ReadIndexQueue<string>('m1');
  queue.add('a');
  const first = queue.takeRequest() as Uint8Array;
  queue.add('b');
  const second = queue.takeRequest() as Uint8Array;
  assert.deepEqual(queue.takeDue(100), [], 'nothing is due before the leader confirms');
  queue.confirm(first, 10);
  queue.confirm(second, 12);
  assert.deepEqual(queue.takeDue(9), []);
  assert.deepEqual(queue.takeDue(11), ['a']);
  assert.deepEqual(queue.takeDue(12), ['b']);
  assert.equal(queue.size, 0);
});

test('a confirmation at a lower index waits behind an earlier one at a higher index', () => {
  const queue = new ReadIndexQueue<string>('m1');
  queue.add('a');
  const first = queue.takeRequest() as Uint8Array;
  queue.add('b');
  const second = queue.takeRequest() as Uint8Array;
  queue.confirm(first, 20);
  queue.confirm(second, 15);
  assert.deepEqual(queue.takeDue(16), []);
  assert.deepEqual(queue.takeDue(20), ['a', 'b']);
});

test('a context the queue does not know, or confirmed already, is ignored', () => {
  const queue = new ReadIndexQueue<string>('m1');
  queue.add('a');
  const context = queue.takeRequest() as Uint8Array;
  queue.confirm(new TextEncoder().encode('99'), 1);
  queue.confirm(context, 3);
  queue.confirm(context, 1);
  assert.deepEqual(queue.takeDue(2), []);
  assert.deepEqual(queue.takeDue(3), ['a']);
});

test('a read index that is not a non-negative integer throws', () => {
  const queue = new ReadIndexQueue<string>('m1');
  queue.add('a');
  assert.throws(() => queue.confirm(queue.takeRequest() as Uint8Array, -1), /non-negative integer/);
});

test('taking all empties every phase', () => {
  const queue = new ReadIndexQueue<string>('m1');
  queue.add('confirmed');
  queue.confirm(queue.takeRequest() as Uint8Array, 5);
  queue.add('requested');
  queue.takeRequest();
  queue.add('unsent');
  assert.deepEqual(queue.takeAll().sort(), ['confirmed', 'requested', 'unsent']);
  assert.equal(queue.size, 0);
  assert.deepEqual(queue.takeDue(100), []);
});

test('after a leader change the unanswered requests fail, counted once, and a late answer to them is ignored', () => {
  const queue = new ReadIndexQueue<string>('m1');
  queue.add('confirmed');
  queue.confirm(queue.takeRequest() as Uint8Array, 5);
  queue.add('first');
  const first = queue.takeRequest() as Uint8Array;
  queue.add('second');
  queue.takeRequest();
  queue.add('unsent');
  assert.deepEqual(queue.takeUnanswered().sort(), ['first', 'second']);
  assert.equal(queue.failedRequests, 1);
  assert.deepEqual(queue.takeUnanswered(), []);
  assert.equal(queue.failedRequests, 1, 'a leader change with nothing unanswered fails nothing');
  queue.confirm(first, 6);
  assert.deepEqual(queue.takeDue(100), ['confirmed']);
  assert.equal(queue.hasUnsent, true);
  assert.equal(queue.size, 1);
});

test('members started at the same time name their reads apart, and a restart names them anew', () => {
  const startedAtMs = 1_764_000_000_000;
  const contexts = [
    readIndexContextPrefix(0x8e9e05c52164694dn, startedAtMs),
    readIndexContextPrefix(0x91bc3c398fb3c146n, startedAtMs),
    readIndexContextPrefix(0x8e9e05c52164694dn, startedAtMs + 1),
  ].map((prefix) => {
    const queue = new ReadIndexQueue<string>(prefix);
    queue.add('read');
    return text(queue.takeRequest());
  });
  assert.equal(new Set(contexts).size, contexts.length, `contexts ${contexts.join(', ')} repeat`);
});

test('reads sent through every member of a cluster at once are all answered', () => {
  // The leader ignores a ReadIndex request whose context is already pending, so two members that
  // both sent their first read at once lost one of them until this queue named contexts apart.
  const cluster = new Cluster([1n, 2n, 3n], {});
  cluster.member(1n).node.campaign();
  cluster.stabilize();
  assert.equal(cluster.member(1n).node.status().role, RaftRole.leader);
  const queues = new Map([1n, 2n, 3n].map((id) => [id, new ReadIndexQueue<string>(readIndexContextPrefix(id, 1))]));
  for (const [id, queue] of queues) {
    queue.add(`read through ${id}`);
    cluster.member(id).node.readIndex(queue.takeRequest() as Uint8Array);
  }
  cluster.stabilize();
  for (const [id, queue] of queues) {
    for (const state of cluster.member(id).readStates) queue.confirm(state.requestCtx, state.index);
    assert.deepEqual(queue.takeDue(cluster.member(id).node.status().commit), [`read through ${id}`]);
  }
});
