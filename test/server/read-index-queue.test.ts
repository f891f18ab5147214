/** The read-index queue: reads wait unsent, then requested, then confirmed, and run once applied. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReadIndexQueue } from '../../src/server/read-index-queue.js';

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));

test('with no read waiting there is no request to make', () => {
  const queue = new ReadIndexQueue<string>();
  assert.equal(queue.hasUnsent, false);
  assert.equal(queue.takeRequest(), undefined);
});

test('the reads unsent at a pass share one request, and each request has a new context', () => {
  const queue = new ReadIndexQueue<string>();
  queue.add('a');
  queue.add('b');
  assert.equal(queue.hasUnsent, true);
  assert.equal(text(queue.takeRequest()), '1');
  assert.equal(queue.hasUnsent, false);
  queue.add('c');
  assert.equal(text(queue.takeRequest()), '2');
  assert.equal(queue.size, 3);
});

test('confirmed reads run only once their read index is applied, in confirmation order', () => {
  const queue = new ReadIndexQueue<string>();
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
  const queue = new ReadIndexQueue<string>();
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
  const queue = new ReadIndexQueue<string>();
  queue.add('a');
  const context = queue.takeRequest() as Uint8Array;
  queue.confirm(new TextEncoder().encode('99'), 1);
  queue.confirm(context, 3);
  queue.confirm(context, 1);
  assert.deepEqual(queue.takeDue(2), []);
  assert.deepEqual(queue.takeDue(3), ['a']);
});

test('a read index that is not a non-negative integer throws', () => {
  const queue = new ReadIndexQueue<string>();
  queue.add('a');
  assert.throws(() => queue.confirm(queue.takeRequest() as Uint8Array, -1), /non-negative integer/);
});

test('taking all empties every phase', () => {
  const queue = new ReadIndexQueue<string>();
  queue.add('confirmed');
  queue.confirm(queue.takeRequest() as Uint8Array, 5);
  queue.add('requested');
  queue.takeRequest();
  queue.add('unsent');
  assert.deepEqual(queue.takeAll().sort(), ['confirmed', 'requested', 'unsent']);
  assert.equal(queue.size, 0);
  assert.deepEqual(queue.takeDue(100), []);
});
