/** etcd's pkg/wait as the member uses it: register, take once, answer once, fail what is left. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AssertionError } from '../../src/lib/assert.js';
import { Waiters } from '../../src/server/waiters.js';

function recorder() {
  const seen: string[] = [];
  return {
    seen,
    resolve: (value: string) => seen.push(`resolved ${value}`),
    reject: (error: Error) => seen.push(`rejected ${error.message}`),
  };
}

test('a registered waiter is taken once and answered through its own callbacks', () => {
  const waiters = new Waiters<bigint, string>();
  const first = recorder();
  waiters.register(7n, first.resolve, first.reject);
  assert.equal(waiters.size, 1);
  assert.equal(waiters.has(7n), true);
  waiters.take(7n)?.resolve('members');
  assert.deepEqual(first.seen, ['resolved members']);
  assert.equal(waiters.take(7n), undefined, 'taking removed it');
  assert.equal(waiters.size, 0);
});

test('an ID nobody registered has no waiter', () => {
  const waiters = new Waiters<number, string>();
  assert.equal(waiters.take(3), undefined);
});

test('a waiter answered twice throws, naming its ID', () => {
  const waiters = new Waiters<number, string>();
  const only = recorder();
  waiters.register(5, only.resolve, only.reject);
  const waiter = waiters.take(5);
  waiter?.resolve('once');
  assert.throws(
    () => waiter?.reject(new Error('twice')),
    (error: Error) => error instanceof AssertionError && /waiter 5 answered once/.test(error.message),
  );
  assert.deepEqual(only.seen, ['resolved once']);
});

test('registering an ID that still waits throws instead of losing the first waiter', () => {
  const waiters = new Waiters<number, string>();
  const first = recorder();
  waiters.register(1, first.resolve, first.reject);
  assert.throws(
    () => waiters.register(1, first.resolve, first.reject),
    /a waiter for 1 is registered while one still waits/,
  );
});

test('failing all rejects each waiter with its own error and leaves none', () => {
  const waiters = new Waiters<number, string>();
  const [a, b] = [recorder(), recorder()];
  waiters.register(1, a.resolve, a.reject);
  waiters.register(2, b.resolve, b.reject);
  const made: Error[] = [];
  waiters.failAll(() => {
    const error = new Error('server stopped');
    made.push(error);
    return error;
  });
  assert.deepEqual([...a.seen, ...b.seen], ['rejected server stopped', 'rejected server stopped']);
  assert.equal(made.length, 2);
  assert.notEqual(made[0], made[1]);
  assert.equal(waiters.size, 0);
});
