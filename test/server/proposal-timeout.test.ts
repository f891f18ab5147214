/** Which "request timed out" a proposal Raft took but never applied gets, as etcd's parseProposeCtxErr picks it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { proposalTimeoutError } from '../../src/server/proposal-timeout.js';

const electionTimeoutMs = 1_000;

function messageFor(startMs: number, leaderElectedMs: number | undefined): string {
  return proposalTimeoutError({ startMs, leaderElectedMs, electionTimeoutMs }).message;
}

test('a leader elected within two election timeouts after the request began blames the previous leader', () => {
  const leaderFailure = 'etcdserver: request timed out, possibly due to previous leader failure';
  assert.equal(messageFor(10_000, 10_001), leaderFailure);
  assert.equal(messageFor(10_000, 11_999), leaderFailure);
  const error = proposalTimeoutError({ startMs: 10_000, leaderElectedMs: 11_000, electionTimeoutMs });
  assert.equal(error.code, 14, 'etcd maps it to Unavailable');
});

test('a leader elected before the request, or long after it began, leaves the plain timeout', () => {
  const plain = 'etcdserver: request timed out';
  assert.equal(messageFor(10_000, undefined), plain);
  assert.equal(messageFor(10_000, 9_000), plain);
  assert.equal(messageFor(10_000, 10_000), plain, 'a leader elected at the very start was there before it');
  assert.equal(messageFor(10_000, 12_000), plain, 'two election timeouts after the start is too late');
});
