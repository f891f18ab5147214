/**
 * The Lock and Election services over gRPC, against a real KvStore behind a grpc-js server. The
 * expected answers (codes, texts, headers, keys) are those etcd 3.4.23 gives for the same calls.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { WireMessage } from '../../src/api/proto-wire.js';
import { rangeReq } from '../mvcc/helpers.js';
import { type CallOutcome, ConcurrencyTestHost, RecipeClients, stillPending, waitUntil } from './host.js';

const grpcUnknown = 2;

function ok(outcome: CallOutcome): Record<string, any> {
  assert.ok(outcome.ok, `expected success, got ${JSON.stringify(outcome)}`);
  return outcome.response as Record<string, any>;
}

function text(value: unknown): string {
  return Buffer.from(value as Uint8Array).toString('latin1');
}

function revisionOf(response: WireMessage): number {
  return Number((response.header as { revision: string }).revision);
}

describe('the Lock service', () => {
  let host: ConcurrencyTestHost;
  let clients: RecipeClients;
  before(async () => {
    host = new ConcurrencyTestHost();
    await host.start();
    clients = new RecipeClients(host.endpoint);
  });
  after(async () => {
    clients.close();
    await host.stop();
  });

  test('a lock is a key named after the lease in hex, held by that lease', async () => {
    const lease = await host.grantLease();
    const response = ok(
      await clients.call(clients.lock, 'Lock', { name: Buffer.from('shape'), lease: lease.toString() }),
    );
    assert.deepEqual(Object.keys(response).sort(), ['header', 'key']);
    assert.equal(text(response.key), `shape/${lease.toString(16)}`);
    assert.deepEqual(response.header, {
      clusterId: '4660',
      memberId: '22136',
      revision: String(host.store.currentRevision),
      raftTerm: '3',
    });
    const [kv] = host.store.range(rangeReq(`shape/${lease.toString(16)}`)).kvs;
    assert.equal(kv?.lease, lease);
    assert.equal(kv?.value.length, 0);
  });

  test('the second locker acquires only after the first unlocks', async () => {
    const [first, second] = [await host.grantLease(), await host.grantLease()];
    const held = ok(await clients.call(clients.lock, 'Lock', { name: Buffer.from('serial'), lease: first.toString() }));
    const waiting = clients.call(clients.lock, 'Lock', { name: Buffer.from('serial'), lease: second.toString() });
    assert.ok(await stillPending(waiting), 'the second Lock should wait while the first holds');
    const unlocked = ok(await clients.call(clients.lock, 'Unlock', { key: held.key }));
    assert.deepEqual(Object.keys(unlocked), ['header']);
    const acquired = ok(await waiting);
    assert.equal(text(acquired.key), `serial/${second.toString(16)}`);
    assert.ok(revisionOf(acquired) >= revisionOf(unlocked), 'the lock is granted at or after the unlock');
  });

  test('locking again with the holding lease answers at once with the same key', async () => {
    const lease = await host.grantLease();
    const once = ok(await clients.call(clients.lock, 'Lock', { name: Buffer.from('again'), lease: lease.toString() }));
    const twice = ok(await clients.call(clients.lock, 'Lock', { name: Buffer.from('again'), lease: lease.toString() }));
    assert.deepEqual(twice.key, once.key);
    assert.equal(revisionOf(twice), revisionOf(once), 'nothing is written the second time');
  });

  test('a lock whose holder lease is revoked passes to the next waiter', async () => {
    const [first, second] = [await host.grantLease(), await host.grantLease()];
    ok(await clients.call(clients.lock, 'Lock', { name: Buffer.from('expiry'), lease: first.toString() }));
    const waiting = clients.call(clients.lock, 'Lock', { name: Buffer.from('expiry'), lease: second.toString() });
    assert.ok(await stillPending(waiting));
    await host.revokeLease(first);
    assert.equal(text(ok(await waiting).key), `expiry/${second.toString(16)}`);
  });

  test('lease 0 locks under a freshly granted lease', async () => {
    const before = new Set(host.leases);
    const response = ok(await clients.call(clients.lock, 'Lock', { name: Buffer.from('fresh'), lease: '0' }));
    const granted = [...host.leases].filter((id) => !before.has(id));
    assert.equal(granted.length, 1);
    assert.equal(text(response.key), `fresh/${granted[0]!.toString(16)}`);
  });

  test('an empty name locks under the bare prefix "/"', async () => {
    const lease = await host.grantLease();
    const response = ok(await clients.call(clients.lock, 'Lock', { name: Buffer.alloc(0), lease: lease.toString() }));
    assert.equal(text(response.key), `/${lease.toString(16)}`);
  });

  test("errors reach the client with code UNKNOWN and etcd's words", async () => {
    assert.deepEqual(await clients.call(clients.lock, 'Lock', { name: Buffer.from('l'), lease: '12345' }), {
      ok: false,
      code: grpcUnknown,
      details: 'etcdserver: requested lease not found',
    });
    assert.deepEqual(await clients.call(clients.lock, 'Unlock', { key: Buffer.alloc(0) }), {
      ok: false,
      code: grpcUnknown,
      details: 'etcdserver: key is not provided',
    });
  });

  test('unlocking a key that does not exist succeeds without a write', async () => {
    const revision = host.store.currentRevision;
    const response = ok(await clients.call(clients.lock, 'Unlock', { key: Buffer.from('nope') }));
    assert.equal(revisionOf(response), revision);
  });
});

describe('the Election service', () => {
  let host: ConcurrencyTestHost;
  let clients: RecipeClients;
  before(async () => {
    host = new ConcurrencyTestHost();
    await host.start();
    clients = new RecipeClients(host.endpoint);
  });
  after(async () => {
    clients.close();
    await host.stop();
  });

  const campaign = (name: string, lease: bigint, value: string) =>
    clients.call(clients.election, 'Campaign', {
      name: Buffer.from(name),
      lease: lease.toString(),
      value: Buffer.from(value),
    });

  test('two candidates take turns: campaign, leader, proclaim, resign', async () => {
    const [a, b] = [await host.grantLease(), await host.grantLease()];
    const first = ok(await campaign('turns', a, 'alpha'));
    assert.deepEqual(Object.keys(first).sort(), ['header', 'leader']);
    assert.deepEqual(first.leader, {
      name: Buffer.from('turns'),
      key: Buffer.from(`turns/${a.toString(16)}`),
      rev: String(host.store.currentRevision),
      lease: a.toString(),
    });
    const second = campaign('turns', b, 'beta');
    assert.ok(await stillPending(second), 'the second candidate waits for the first');

    const leader = ok(await clients.call(clients.election, 'Leader', { name: Buffer.from('turns') }));
    assert.deepEqual(Object.keys(leader).sort(), ['header', 'kv']);
    assert.equal(text(leader.kv.value), 'alpha');
    assert.equal(leader.kv.createRevision, first.leader.rev);

    const proclaimed = ok(
      await clients.call(clients.election, 'Proclaim', { leader: first.leader, value: Buffer.from('alpha2') }),
    );
    assert.deepEqual(Object.keys(proclaimed), ['header']);
    assert.equal(
      text(ok(await clients.call(clients.election, 'Leader', { name: Buffer.from('turns') })).kv.value),
      'alpha2',
    );

    const resigned = ok(await clients.call(clients.election, 'Resign', { leader: first.leader }));
    const elected = ok(await second);
    assert.equal(text(elected.leader.key), `turns/${b.toString(16)}`);
    assert.ok(Number(elected.leader.rev) < revisionOf(resigned), "the rev is the candidate key's create revision");
    assert.equal(revisionOf(elected), Number(elected.leader.rev), "Campaign answers with its own txn's header");
    assert.equal(
      text(ok(await clients.call(clients.election, 'Leader', { name: Buffer.from('turns') })).kv.value),
      'beta',
    );

    const stale = await clients.call(clients.election, 'Proclaim', { leader: first.leader, value: Buffer.from('x') });
    assert.deepEqual(stale, { ok: false, code: grpcUnknown, details: 'election: not leader' });
  });

  test("campaigning again with a new value proclaims it but answers with the first txn's header", async () => {
    const lease = await host.grantLease();
    const first = ok(await campaign('again', lease, 'one'));
    const again = ok(await campaign('again', lease, 'two'));
    assert.deepEqual(again.leader, first.leader);
    assert.equal(revisionOf(again), revisionOf(first), 'the header is read before the proclaim');
    assert.equal(host.store.currentRevision, Number(first.leader.rev) + 1, 'the proclaim is the only new write');
    assert.equal(
      text(ok(await clients.call(clients.election, 'Leader', { name: Buffer.from('again') })).kv.value),
      'two',
    );
  });

  test('resigning with a stale leader key changes nothing and is not an error', async () => {
    const lease = await host.grantLease();
    const elected = ok(await campaign('stale', lease, 'v'));
    const revision = host.store.currentRevision;
    const resigned = ok(await clients.call(clients.election, 'Resign', { leader: { ...elected.leader, rev: '1' } }));
    assert.equal(revisionOf(resigned), revision);
    assert.equal(host.store.currentRevision, revision);
  });

  test("errors reach the client with code UNKNOWN and etcd's words", async () => {
    const failure = (details: string) => ({ ok: false, code: grpcUnknown, details });
    assert.deepEqual(
      await clients.call(clients.election, 'Leader', { name: Buffer.from('nobody') }),
      failure('election: no leader'),
    );
    assert.deepEqual(await campaign('bad', 999n, 'v'), failure('etcdserver: requested lease not found'));
    assert.deepEqual(
      await clients.call(clients.election, 'Proclaim', { value: Buffer.from('v') }),
      failure('"leader" field must be provided'),
    );
    assert.deepEqual(await clients.call(clients.election, 'Resign', {}), failure('"leader" field must be provided'));
    const ghost = { name: Buffer.from('ghost'), key: Buffer.from('ghost/1'), rev: '2', lease: '1' };
    assert.deepEqual(
      await clients.call(clients.election, 'Proclaim', { leader: ghost, value: Buffer.from('v') }),
      failure('election: not leader'),
    );
    const lease = (await host.grantLease()).toString();
    const blank = { name: Buffer.from('blank'), key: Buffer.alloc(0), rev: '0', lease };
    const noKey = failure('etcdserver: key is not provided');
    assert.deepEqual(
      await clients.call(clients.election, 'Proclaim', { leader: blank, value: Buffer.from('v') }),
      noKey,
    );
    assert.deepEqual(await clients.call(clients.election, 'Resign', { leader: blank }), noKey);
  });

  test('Observe streams the leader, its proclamations and then the next leader', async () => {
    const [a, b] = [await host.grantLease(), await host.grantLease()];
    const observer = clients.observe('watched');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const first = ok(await campaign('watched', a, 'a1'));
    const second = campaign('watched', b, 'b1');
    await waitUntil(() => observer.responses.length >= 1, 'the first leader to be observed');
    ok(await clients.call(clients.election, 'Proclaim', { leader: first.leader, value: Buffer.from('a2') }));
    ok(await clients.call(clients.election, 'Resign', { leader: first.leader }));
    ok(await second);
    await waitUntil(() => observer.responses.length >= 3, 'three observations');
    const seen = observer.responses.map((response) => {
      const kv = response.kv as Record<string, unknown>;
      return {
        revision: revisionOf(response),
        key: text(kv.key),
        value: text(kv.value),
        modRevision: Number(kv.modRevision),
      };
    });
    const [aKey, bKey] = [`watched/${a.toString(16)}`, `watched/${b.toString(16)}`];
    const createdA = Number(first.leader.rev);
    assert.deepEqual(seen, [
      // The first put on an empty election is reported at its own revision.
      { revision: createdA, key: aKey, value: 'a1', modRevision: createdA },
      { revision: createdA + 2, key: aKey, value: 'a2', modRevision: createdA + 2 },
      // The next leader is read after the resignation (createdA + 3), so the header is that read's.
      { revision: createdA + 3, key: bKey, value: 'b1', modRevision: createdA + 1 },
    ]);
    assert.deepEqual(Object.keys(observer.responses[0]!).sort(), ['header', 'kv']);
    observer.stream.cancel();
    await observer.ended;
    await waitUntil(() => host.activeWatches === 0, "the observer's watch to end");
  });
});
