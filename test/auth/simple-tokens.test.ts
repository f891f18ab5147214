import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimpleTokens } from '../../src/auth/simple-tokens.js';

test('a sweep drops the expired tokens and keeps one that a use kept alive, whatever the order they were assigned in', () => {
  let now = 1_000;
  const tokens = new SimpleTokens(300, () => now);
  const early = tokens.assign('alice', 'aaa', 1);
  now += 100;
  tokens.assign('bob', 'bbb', 2);
  now += 50;
  tokens.assign('carol', 'ccc', 3);
  now += 100;
  // alice's token, the first assigned, is used: it now expires after bob's and carol's.
  assert.equal(tokens.info(early, 1)?.username, 'alice');
  now = 1_000 + 100 + 300 + 1;
  tokens.sweep();
  assert.equal(tokens.size, 2, "bob's token expired and is dropped");
  now = 1_000 + 150 + 300 + 1;
  tokens.sweep();
  assert.equal(tokens.size, 1, "carol's token expired and is dropped");
  assert.equal(tokens.info(early, 1)?.username, 'alice');
  now += 301;
  tokens.sweep();
  assert.equal(tokens.size, 0);
});

test("an assign drops expired tokens, and invalidating a user drops that user's tokens only", () => {
  let now = 0;
  const tokens = new SimpleTokens(1_000, () => now);
  const alice = [tokens.assign('alice', 'a', 1), tokens.assign('alice', 'b', 2)];
  const bob = tokens.assign('bob', 'c', 3);
  tokens.invalidateUser('alice');
  for (const token of alice) assert.equal(tokens.info(token, 1), undefined);
  assert.equal(tokens.info(bob, 1)?.username, 'bob');
  assert.equal(tokens.size, 1);
  now = 2_000;
  tokens.assign('alice', 'd', 4);
  assert.equal(tokens.size, 1, "bob's expired token went at the assign");
  tokens.invalidateUser('bob');
  assert.equal(tokens.size, 1);
  tokens.invalidateUser('alice');
  assert.equal(tokens.size, 0);
});

test('a token assigned again under another user belongs to that user alone', () => {
  const tokens = new SimpleTokens(1_000, () => 0);
  const token = tokens.assign('alice', 'same', 9);
  assert.equal(tokens.assign('bob', 'same', 9), token);
  tokens.invalidateUser('alice');
  assert.equal(tokens.info(token, 1)?.username, 'bob');
  tokens.invalidateUser('bob');
  assert.equal(tokens.info(token, 1), undefined);
});
