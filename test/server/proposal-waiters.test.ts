/** Proposal waiters: IDs, the batch handed to Raft, answers and failures. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProposalWaiters } from '../../src/server/proposal-waiters.js';

function propose(waiters: ProposalWaiters<string>, seen: string[]): number {
  const id = waiters.issueId();
  waiters.add(
    id,
    Uint8Array.of(id),
    (value) => seen.push(`${id} resolved ${value}`),
    (error) => seen.push(`${id} rejected ${error.message}`),
  );
  return id;
}

test('proposal IDs count up from the first ID', () => {
  const waiters = new ProposalWaiters<string>(40);
  assert.deepEqual([waiters.issueId(), waiters.issueId(), waiters.issueId()], [40, 41, 42]);
  assert.throws(() => new ProposalWaiters<string>(0), /positive integer/);
});

test('proposals made since the last batch leave together, in order, and stay registered', () => {
  const waiters = new ProposalWaiters<string>();
  const seen: string[] = [];
  assert.equal(waiters.hasUnproposed, false);
  const ids = [propose(waiters, seen), propose(waiters, seen)];
  assert.equal(waiters.hasUnproposed, true);
  const batch = waiters.takeBatch();
  assert.deepEqual(
    batch.map((proposal) => proposal.id),
    ids,
  );
  assert.deepEqual(
    batch.map((proposal) => [...proposal.data]),
    [[1], [2]],
  );
  assert.equal(waiters.hasUnproposed, false);
  assert.deepEqual(waiters.takeBatch(), []);
  assert.equal(waiters.size, 2);
});

test('an applied proposal is answered once; its ID then has no waiter', () => {
  const waiters = new ProposalWaiters<string>();
  const seen: string[] = [];
  const id = propose(waiters, seen);
  waiters.takeBatch();
  waiters.take(id)?.resolve('revision 2');
  assert.equal(waiters.take(id), undefined);
  assert.deepEqual(seen, ['1 resolved revision 2']);
});

test('a refused batch fails only the proposals still waiting', () => {
  const waiters = new ProposalWaiters<string>();
  const seen: string[] = [];
  const [first] = [propose(waiters, seen), propose(waiters, seen)];
  const batch = waiters.takeBatch();
  waiters.take(first)?.resolve('early');
  waiters.failBatch(batch, () => new Error('no leader'));
  assert.deepEqual(seen, ['1 resolved early', '2 rejected no leader']);
  assert.equal(waiters.size, 0);
});

test('stopping fails proposals in the batch and those already handed to Raft, each once', () => {
  const waiters = new ProposalWaiters<string>();
  const seen: string[] = [];
  propose(waiters, seen);
  waiters.takeBatch();
  propose(waiters, seen);
  waiters.failAll(() => new Error('server stopped'));
  assert.deepEqual(seen, ['1 rejected server stopped', '2 rejected server stopped']);
  assert.equal(waiters.hasUnproposed, false);
  assert.equal(waiters.size, 0);
});

test('an ID that was never issued cannot be registered', () => {
  const waiters = new ProposalWaiters<string>();
  assert.throws(
    () =>
      waiters.add(
        1,
        new Uint8Array(),
        () => undefined,
        () => undefined,
      ),
    /proposal ID 1 was never issued/,
  );
});
