/**
 * The lock and election recipes run directly against a ConcurrencyHost, where a test can give up
 * on a wait (abort its signal) and count the watches a waiter holds.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { concurrencyHandlers } from '../../actors/client/grpc/concurrency-service.js';
import { EtcdError, GrpcCode, errors } from '../../src/api/errors.js';
import { campaign, observe, resign, type LeaderState } from '../../src/concurrency/election.js';
import type { ConcurrencyWatchBatch, ConcurrencyWatchRequest } from '../../src/concurrency/host.js';
import { leaseKey, prefixRangeEnd, recipePrefix } from '../../src/concurrency/keys.js';
import { lock, unlock } from '../../src/concurrency/lock.js';
import { bytes, rangeReq, text } from '../mvcc/helpers.js';
import { ConcurrencyTestHost, stillPending, waitUntil } from './host.js';

const never = new AbortController().signal;

/** Keys under `prefix` in create order. */
function keysUnder(host: ConcurrencyTestHost, prefix: string): string[] {
  return host.store
    .range(rangeReq(prefix, text(prefixRangeEnd(bytes(prefix)))))
    .kvs.sort((a, b) => a.createRevision - b.createRevision)
    .map((kv) => text(kv.key));
}

describe('the key layout', () => {
  test('a waiter key is the name, a slash and the lease ID in lowercase hex (signed, as Go prints it)', () => {
    assert.equal(text(leaseKey(recipePrefix(bytes('job')), 0x694d7a1b2cn)), 'job/694d7a1b2c');
    assert.equal(text(leaseKey(recipePrefix(bytes('job')), -255n)), 'job/-ff');
  });

  test('a prefix ends at its last byte below 0xff plus one, or nowhere', () => {
    assert.deepEqual(prefixRangeEnd(bytes('a/')), bytes('a0'));
    assert.deepEqual(prefixRangeEnd(new Uint8Array([0x61, 0xff, 0xff])), bytes('b'));
    assert.deepEqual(prefixRangeEnd(new Uint8Array([0xff])), new Uint8Array([0]));
  });
});

describe('the lock recipe', () => {
  test('waiters acquire in arrival order, each watching only the key just ahead of it', async () => {
    const host = new ConcurrencyTestHost();
    const [a, b, c] = [await host.grantLease(), await host.grantLease(), await host.grantLease()];
    const held = await lock(host, { name: bytes('q'), lease: a }, never);
    const second = lock(host, { name: bytes('q'), lease: b }, never);
    const third = lock(host, { name: bytes('q'), lease: c }, never);
    await waitUntil(() => host.activeWatches === 2, 'two waiters to watch');
    await unlock(host, held.key);
    const acquired = await second;
    assert.equal(text(acquired.key), `q/${b.toString(16)}`);
    assert.ok(await stillPending(third, 50), 'the third waiter still waits for the second');
    assert.equal(host.activeWatches, 1);
    await unlock(host, acquired.key);
    assert.equal(text((await third).key), `q/${c.toString(16)}`);
    assert.equal(host.activeWatches, 0);
  });

  test('a waiter that gives up removes its key and its watch', async () => {
    const host = new ConcurrencyTestHost();
    const [a, b] = [await host.grantLease(), await host.grantLease()];
    await lock(host, { name: bytes('quit'), lease: a }, never);
    const giveUp = new AbortController();
    const waiting = lock(host, { name: bytes('quit'), lease: b }, giveUp.signal);
    await waitUntil(() => keysUnder(host, 'quit/').length === 2, 'the waiter key to appear');
    giveUp.abort();
    await assert.rejects(waiting, (error: unknown) => error instanceof EtcdError && error.code === GrpcCode.canceled);
    assert.deepEqual(keysUnder(host, 'quit/'), [`quit/${a.toString(16)}`]);
    assert.equal(host.activeWatches, 0);
  });

  test('a wait the host cannot serve (compacted history) fails and withdraws the key', async () => {
    const host = new ConcurrencyTestHost();
    const [a, b] = [await host.grantLease(), await host.grantLease()];
    await lock(host, { name: bytes('gone'), lease: a }, never);
    host.watch = (_request: ConcurrencyWatchRequest, _onBatch: (batch: ConcurrencyWatchBatch) => void) =>
      Promise.reject(errors.compacted());
    await assert.rejects(lock(host, { name: bytes('gone'), lease: b }, never), /required revision has been compacted/);
    assert.deepEqual(keysUnder(host, 'gone/'), [`gone/${a.toString(16)}`]);
  });

  test("the gRPC handler withdraws a waiter when its call's signal aborts", async () => {
    const host = new ConcurrencyTestHost();
    const [a, b] = [await host.grantLease(), await host.grantLease()];
    const handlers = concurrencyHandlers(host);
    const lockHandler = handlers['v3lockpb.Lock/Lock']!;
    const context = {
      metadata: undefined as never,
      requestBytes: 0,
      peer: 'test',
      signal: new AbortController().signal,
      token: undefined,
      commonName: undefined,
    };
    await lockHandler({ name: Buffer.from('h'), lease: a.toString() }, context);
    const giveUp = new AbortController();
    const waiting = lockHandler({ name: Buffer.from('h'), lease: b.toString() }, { ...context, signal: giveUp.signal });
    await waitUntil(() => host.activeWatches === 1, 'the waiter to watch');
    giveUp.abort();
    await assert.rejects(waiting, /context canceled/);
    assert.deepEqual(keysUnder(host, 'h/'), [`h/${a.toString(16)}`]);
  });
});

describe('the election recipe', () => {
  test('a candidate that gives up resigns its candidacy', async () => {
    const host = new ConcurrencyTestHost();
    const [a, b] = [await host.grantLease(), await host.grantLease()];
    await campaign(host, { name: bytes('e'), lease: a, value: bytes('a') }, never);
    const giveUp = new AbortController();
    const waiting = campaign(host, { name: bytes('e'), lease: b, value: bytes('b') }, giveUp.signal);
    await waitUntil(() => keysUnder(host, 'e/').length === 2, 'the candidate key to appear');
    giveUp.abort();
    await assert.rejects(waiting, /context canceled/);
    assert.deepEqual(keysUnder(host, 'e/'), [`e/${a.toString(16)}`]);
  });

  test('an observer of an empty election reports each leader once it appears', async () => {
    const host = new ConcurrencyTestHost();
    const [a, b] = [await host.grantLease(), await host.grantLease()];
    const stop = new AbortController();
    const seen: LeaderState[] = [];
    const observing = (async () => {
      for await (const state of observe(host, bytes('o'), stop.signal)) seen.push(state);
    })();
    const first = await campaign(host, { name: bytes('o'), lease: a, value: bytes('a') }, never);
    await waitUntil(() => seen.length === 1, 'the first leader');
    await resign(host, first.leader);
    const second = await campaign(host, { name: bytes('o'), lease: b, value: bytes('b') }, never);
    await waitUntil(() => seen.length === 2, 'the second leader');
    stop.abort();
    await assert.rejects(observing, /context canceled/);
    assert.deepEqual(
      seen.map((state) => [state.header.revision, text(state.kv.key), text(state.kv.value)]),
      [
        [first.leader.rev, `o/${a.toString(16)}`, 'a'],
        [second.leader.rev, `o/${b.toString(16)}`, 'b'],
      ],
    );
    assert.equal(host.activeWatches, 0);
  });
});
