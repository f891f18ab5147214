/** Proposal waiters: IDs, the batch handed to Raft, answers and failures. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstProposalIdAt, ProposalWaiters, proposalIdsPerMsMax } from '../../src/server/proposal-waiters.js';

/** Adds a proposal whose answer or failure is recorded in `seen`; `deadlineMs` as add() takes it. */
function propose(waiters: ProposalWaiters<string>, seen: string[], deadlineMs?: number): number {
  const id = waiters.issueId();
  waiters.add(
    id,
    Uint8Array.of(id),
    (value) => seen.push(`${id} resolved ${value}`),
    (error) => seen.push(`${id} rejected ${error.message}`),
    deadlineMs,
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

test('proposals past their deadline are taken out, saying whether Raft had them; the rest wait', () => {
  const waiters = new ProposalWaiters<string>();
  const seen: string[] = [];
  const answered = propose(waiters, seen, 100);
  propose(waiters, seen, 100);
  waiters.takeBatch();
  waiters.take(answered)?.resolve('applied');
  propose(waiters, seen, 150);
  propose(waiters, seen, 300);
  assert.deepEqual(waiters.expire(99), []);
  const expired = waiters.expire(150);
  assert.deepEqual(
    expired.map((proposal) => [proposal.proposed, proposal.deadlineMs]),
    [
      [true, 100],
      [false, 150],
    ],
    "each with its own deadline, from which the request's start is known",
  );
  for (const { waiter, proposed } of expired) waiter.reject(new Error(proposed ? 'timed out' : 'deadline'));
  assert.deepEqual(seen, ['1 resolved applied', '2 rejected timed out', '3 rejected deadline']);
  assert.deepEqual(
    waiters.takeBatch().map((proposal) => proposal.id),
    [4],
    'an expired proposal never handed to Raft leaves the batch',
  );
  assert.equal(waiters.size, 1);
  assert.equal(waiters.failed, 2);
  assert.deepEqual(waiters.expire(299), []);
  assert.equal(waiters.expire(300).length, 1);
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

test('a restarted member issues IDs above every ID its earlier run could reach', () => {
  const startedMs = 1_764_900_000_000;
  const earlier = new ProposalWaiters<string>(firstProposalIdAt(startedMs));
  // The earlier run issues as many IDs as its uptime allows at the bound, then restarts.
  const uptimeMs = 2_000;
  let lastEarlierId = 0;
  for (let i = 0; i < uptimeMs * proposalIdsPerMsMax; i += 1) lastEarlierId = earlier.issueId();
  const restarted = new ProposalWaiters<string>(firstProposalIdAt(startedMs + uptimeMs + 1));
  assert.ok(restarted.issueId() > lastEarlierId);
});

test('a start time that is not a time, or whose IDs would pass 2^53, is refused', () => {
  assert.throws(() => firstProposalIdAt(0), /is not a time/);
  assert.throws(() => firstProposalIdAt(2 ** 53 / 16), /pass 2\^53/);
});
