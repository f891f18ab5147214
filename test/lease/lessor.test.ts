import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EtcdError } from '../../src/api/errors.js';
import type { KeyValue } from '../../src/api/types.js';
import { applyLeaseProposal, revokeTxn } from '../../src/lease/apply.js';
import { LeaseIdGenerator, leaseIdAt } from '../../src/lease/lease-id.js';
import { Lessor, minLeaseTtlSeconds, promoteExtendMs } from '../../src/lease/lessor.js';
import { leaseRevokeRatePerSecondMax, leaseTtlSecondsMax } from '../../src/lib/limits.js';
import { MemoryBackend } from '../../src/mvcc/backend.js';
import { KvStore } from '../../src/mvcc/kv-store.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const str = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

function makeLessor(minTtlSeconds = 2, backend = new MemoryBackend()): { lessor: Lessor; backend: MemoryBackend } {
  return { lessor: Lessor.open(backend, { minTtlSeconds, expiredRetryMs: 3_000 }), backend };
}

function etcdMessage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof EtcdError, `expected an EtcdError, saw ${String(error)}`);
    return error.message;
  }
  assert.fail('expected an error');
}

function kv(key: string, lease: bigint): KeyValue {
  return { key: text(key), value: text('v'), createRevision: 2, modRevision: 2, version: 1, lease };
}

describe('lease limits', () => {
  it('computes the minimum TTL from election ticks and heartbeat as etcd does', () => {
    assert.equal(minLeaseTtlSeconds(10, 100), 2); // 1.5 s rounded up
    assert.equal(minLeaseTtlSeconds(5, 100), 1); // (15 / 2 = 7 ticks) * 100 ms = 0.7 s
    assert.equal(minLeaseTtlSeconds(10, 500), 8); // 7.5 s
    assert.equal(promoteExtendMs(10, 100), 1_000);
  });
});

describe('Lessor replicated operations', () => {
  it('grants with the requested TTL and raises small ones to the minimum', () => {
    const { lessor } = makeLessor(2);
    assert.deepEqual(lessor.applyGrant(7n, 10, 0), { id: 7n, ttlSeconds: 10 });
    assert.deepEqual(lessor.applyGrant(8n, 1, 0), { id: 8n, ttlSeconds: 2 });
    assert.deepEqual(lessor.applyGrant(9n, -5, 0), { id: 9n, ttlSeconds: 2 });
    assert.ok(lessor.exists(7n));
    assert.equal(lessor.size, 3);
  });

  it('refuses an existing ID, ID 0 and a TTL over etcd maximum with etcd errors', () => {
    const { lessor } = makeLessor();
    lessor.applyGrant(7n, 10, 0);
    assert.equal(
      etcdMessage(() => lessor.applyGrant(7n, 10, 0)),
      'etcdserver: lease already exists',
    );
    assert.equal(
      etcdMessage(() => lessor.applyGrant(0n, 10, 0)),
      'etcdserver: requested lease not found',
    );
    assert.equal(
      etcdMessage(() => lessor.applyGrant(8n, leaseTtlSecondsMax + 1, 0)),
      'etcdserver: too large lease TTL',
    );
    assert.deepEqual(lessor.applyGrant(8n, leaseTtlSecondsMax, 0), { id: 8n, ttlSeconds: leaseTtlSecondsMax });
  });

  it('attaches keys from put events, moves them between leases and detaches on delete', () => {
    const { lessor } = makeLessor();
    lessor.applyGrant(1n, 10, 0);
    lessor.applyGrant(2n, 10, 0);
    lessor.applyEvents([
      { type: 'put', kv: kv('a', 1n) },
      { type: 'put', kv: kv('b', 1n) },
      { type: 'put', kv: kv('c', 2n) },
    ]);
    assert.deepEqual(lessor.timeToLive(1n, 0, true).keys.map(str), ['a', 'b']);
    lessor.applyEvents([
      { type: 'put', kv: kv('b', 2n) },
      { type: 'put', kv: kv('c', 0n) },
    ]);
    assert.deepEqual(lessor.timeToLive(1n, 0, true).keys.map(str), ['a']);
    assert.deepEqual(lessor.timeToLive(2n, 0, true).keys.map(str), ['b']);
    lessor.applyEvents([{ type: 'delete', kv: kv('a', 0n) }]);
    assert.deepEqual(lessor.timeToLive(1n, 0, true).keys, []);
    assert.equal(lessor.leaseOf(text('b')), 2n);
    assert.equal(lessor.leaseOf(text('c')), 0n);
  });

  it('revokes a lease returning its keys in byte order and forgets them', () => {
    const { lessor } = makeLessor();
    lessor.applyGrant(1n, 10, 0);
    lessor.applyEvents([
      { type: 'put', kv: kv('z', 1n) },
      { type: 'put', kv: kv('a', 1n) },
    ]);
    assert.deepEqual(lessor.applyRevoke(1n).map(str), ['a', 'z']);
    assert.equal(lessor.exists(1n), false);
    assert.equal(lessor.leaseOf(text('a')), 0n);
    assert.equal(
      etcdMessage(() => lessor.applyRevoke(1n)),
      'etcdserver: requested lease not found',
    );
  });

  it('builds the revoke transaction as one delete per key', () => {
    const txn = revokeTxn([text('a'), text('b')]);
    assert.deepEqual(txn.compare, []);
    assert.deepEqual(
      txn.success.map((op) => (op.type === 'deleteRange' ? str(op.deleteRange.key) : op.type)),
      ['a', 'b'],
    );
  });
});

describe('Lessor leader timing', () => {
  it('reports the granted TTL while not leader and never expires anything', () => {
    const { lessor } = makeLessor();
    lessor.applyGrant(1n, 5, 0);
    assert.equal(lessor.timeToLive(1n, 1_000_000, false).ttlSeconds, 5);
    assert.deepEqual(lessor.expiredLeases(1_000_000), []);
    assert.equal(
      etcdMessage(() => lessor.renew(1n, 0)),
      'etcdserver: not leader',
    );
  });

  it('extends every lease by the promote extension and expires it after that', () => {
    const { lessor } = makeLessor();
    lessor.applyGrant(1n, 5, 0);
    lessor.promote(10_000, 1_000);
    const ttl = lessor.timeToLive(1n, 10_000, false);
    assert.deepEqual([ttl.ttlSeconds, ttl.grantedTtlSeconds], [6, 5]);
    assert.deepEqual(lessor.expiredLeases(15_999), []);
    assert.deepEqual(lessor.expiredLeases(16_000), [1n]);
  });

  it('times leases granted while leader from the apply time', () => {
    const { lessor } = makeLessor();
    lessor.promote(0, 1_000);
    lessor.applyGrant(1n, 3, 500);
    assert.equal(lessor.timeToLive(1n, 1_200, false).ttlSeconds, 2); // 2.3 s truncated
    assert.deepEqual(lessor.expiredLeases(3_499), []);
    assert.deepEqual(lessor.expiredLeases(3_500), [1n]);
  });

  it('renews a lease to its full TTL and reports a missing or expired lease as not found', () => {
    const { lessor } = makeLessor();
    lessor.promote(0, 0);
    lessor.applyGrant(1n, 3, 0);
    assert.equal(lessor.renew(1n, 2_000), 3);
    assert.deepEqual(lessor.expiredLeases(4_999), []);
    assert.deepEqual(lessor.expiredLeases(5_000), [1n]);
    assert.equal(
      etcdMessage(() => lessor.renew(1n, 5_000)),
      'etcdserver: requested lease not found',
    );
    assert.equal(
      etcdMessage(() => lessor.renew(99n, 0)),
      'etcdserver: requested lease not found',
    );
  });

  it('offers an expired lease again only after the retry interval and never after its revoke', () => {
    const { lessor } = makeLessor();
    lessor.promote(0, 0);
    lessor.applyGrant(1n, 2, 0);
    assert.deepEqual(lessor.expiredLeases(2_000), [1n]);
    assert.deepEqual(lessor.expiredLeases(4_999), []);
    assert.deepEqual(lessor.expiredLeases(5_000), [1n]);
    lessor.applyRevoke(1n);
    assert.deepEqual(lessor.expiredLeases(100_000), []);
  });

  it('hands over at most the requested number of expired leases, soonest first', () => {
    const { lessor } = makeLessor();
    lessor.promote(0, 0);
    for (let id = 1n; id <= 10n; id++) lessor.applyGrant(id, 2 + Number(id), 0);
    assert.deepEqual(lessor.expiredLeases(60_000, 3), [1n, 2n, 3n]);
    assert.deepEqual(lessor.expiredLeases(60_000, 100).length, 7);
  });

  it('stops timing on demote and restarts from the new promote', () => {
    const { lessor } = makeLessor();
    lessor.promote(0, 0);
    lessor.applyGrant(1n, 2, 0);
    lessor.demote();
    assert.deepEqual(lessor.expiredLeases(100_000), []);
    assert.equal(lessor.timeToLive(1n, 100_000, false).ttlSeconds, 2);
    lessor.promote(100_000, 1_000);
    assert.deepEqual(lessor.expiredLeases(102_999), []);
    assert.deepEqual(lessor.expiredLeases(103_000), [1n]);
  });

  it('spreads a pile of leases expiring together over later seconds on promote', () => {
    const { lessor } = makeLessor();
    const count = 2 * leaseRevokeRatePerSecondMax;
    for (let id = 1; id <= count; id++) lessor.applyGrant(BigInt(id), 10, 0);
    lessor.promote(0, 1_000);
    const perSecond = new Map<number, number>();
    for (const id of lessor.leases()) {
      const second = Math.floor(lessor.timeToLive(id, 0, false).ttlSeconds);
      perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
    }
    assert.ok(Math.max(...perSecond.values()) <= leaseRevokeRatePerSecondMax, `saw ${JSON.stringify([...perSecond])}`);
    assert.ok(perSecond.size > 1);
    assert.equal(Math.min(...perSecond.keys()), 11);
  });

  it('lists leases soonest expiry first', () => {
    const { lessor } = makeLessor();
    lessor.promote(0, 0);
    lessor.applyGrant(5n, 30, 0);
    lessor.applyGrant(6n, 10, 0);
    lessor.applyGrant(7n, 20, 0);
    assert.deepEqual(lessor.leases(), [6n, 7n, 5n]);
  });
});

describe('Lessor with the KvStore', () => {
  function setup(): { lessor: Lessor; store: KvStore; backend: MemoryBackend } {
    const backend = new MemoryBackend();
    const lessor = Lessor.open(backend, { minTtlSeconds: 2 });
    const store = KvStore.open(backend, {
      leaseExists: (id) => lessor.exists(id),
      onChanges: (events) => lessor.applyEvents(events),
    });
    return { lessor, store, backend };
  }
  const put = (key: string, lease: bigint) => ({
    type: 'put' as const,
    put: { key: text(key), value: text('v'), lease, prevKv: false, ignoreValue: false, ignoreLease: false },
  });

  it('revokes a lease and deletes its keys in one revision', () => {
    const { lessor, store, backend } = setup();
    applyLeaseProposal(
      lessor,
      store,
      { index: 1, term: 1 },
      { type: 'leaseGrant', leaseGrant: { id: 9n, ttlSeconds: 60 } },
      0,
    );
    store.apply(2, 1, put('a', 9n));
    store.apply(3, 1, put('b', 9n));
    store.apply(4, 1, put('c', 0n));
    assert.equal(store.currentRevision, 4);
    assert.deepEqual(
      applyLeaseProposal(lessor, store, { index: 5, term: 1 }, { type: 'leaseRevoke', leaseRevoke: { id: 9n } }, 0),
      { type: 'leaseRevoke' },
    );
    assert.equal(store.currentRevision, 5);
    assert.equal(store.consistentIndex, 5);
    assert.deepEqual([...KvStore.open(backend).takeRestoredLeases()], []);
    assert.equal(
      store.range({
        key: text('a'),
        rangeEnd: text('z'),
        limit: 0,
        revision: 0,
        sortOrder: 0,
        sortTarget: 0,
        serializable: true,
        keysOnly: false,
        countOnly: true,
        minModRevision: 0,
        maxModRevision: 0,
        minCreateRevision: 0,
        maxCreateRevision: 0,
      }).count,
      1,
    );
  });

  it('records a refused lease proposal as applied and makes no revision for a lease without keys', () => {
    const { lessor, store } = setup();
    assert.throws(
      () =>
        applyLeaseProposal(lessor, store, { index: 1, term: 1 }, { type: 'leaseRevoke', leaseRevoke: { id: 4n } }, 0),
      /lease not found/,
    );
    assert.equal(store.consistentIndex, 1);
    applyLeaseProposal(
      lessor,
      store,
      { index: 2, term: 1 },
      { type: 'leaseGrant', leaseGrant: { id: 4n, ttlSeconds: 60 } },
      0,
    );
    assert.throws(
      () =>
        applyLeaseProposal(
          lessor,
          store,
          { index: 3, term: 1 },
          { type: 'leaseGrant', leaseGrant: { id: 4n, ttlSeconds: 60 } },
          0,
        ),
      /already exists/,
    );
    assert.equal(store.consistentIndex, 3);
    applyLeaseProposal(lessor, store, { index: 4, term: 1 }, { type: 'leaseRevoke', leaseRevoke: { id: 4n } }, 0);
    assert.deepEqual([store.consistentIndex, store.currentRevision], [4, 1]);
  });

  it('refuses a put naming a lease that does not exist', () => {
    const { store } = setup();
    assert.throws(() => store.apply(1, 1, put('a', 77n)), /requested lease not found/);
  });

  it('restores leases from the backend and attachments from the key space', () => {
    const { lessor, store, backend } = setup();
    applyLeaseProposal(
      lessor,
      store,
      { index: 1, term: 1 },
      { type: 'leaseGrant', leaseGrant: { id: 1n, ttlSeconds: 60 } },
      0,
    );
    applyLeaseProposal(
      lessor,
      store,
      { index: 2, term: 1 },
      { type: 'leaseGrant', leaseGrant: { id: 2n, ttlSeconds: 1 } },
      0,
    );
    store.apply(3, 1, put('a', 1n));
    store.apply(4, 1, put('b', 2n));
    const restored = Lessor.open(backend, { minTtlSeconds: 3 });
    const reopened = KvStore.open(backend, { leaseExists: (id) => restored.exists(id) });
    assert.equal(restored.recoverAttachments(reopened.takeRestoredLeases()), 0);
    assert.deepEqual(restored.leases(), [1n, 2n]);
    // The minimum TTL of the restarted member applies to restored leases, as etcd's recover.
    assert.equal(restored.grantedTtlSeconds(2n), 3);
    assert.deepEqual(restored.timeToLive(1n, 0, true).keys.map(str), ['a']);
    assert.deepEqual(restored.timeToLive(2n, 0, true).keys.map(str), ['b']);
  });

  it('restores the lease of each live key from its last revision, once', () => {
    const { lessor, store, backend } = setup();
    for (const [index, id] of [
      [1, 1n],
      [2, 2n],
    ] as const) {
      applyLeaseProposal(
        lessor,
        store,
        { index, term: 1 },
        { type: 'leaseGrant', leaseGrant: { id, ttlSeconds: 60 } },
        0,
      );
    }
    store.apply(3, 1, put('moved', 1n));
    store.apply(4, 1, put('dropped', 1n));
    store.apply(5, 1, put('deleted', 2n));
    store.apply(6, 1, put('kept', 2n));
    store.apply(7, 1, put('moved', 2n));
    store.apply(8, 1, put('dropped', 0n));
    store.apply(9, 1, {
      type: 'deleteRange',
      deleteRange: { key: text('deleted'), rangeEnd: new Uint8Array(0), prevKv: false },
    });
    const reopened = KvStore.open(backend);
    const leased = [...reopened.takeRestoredLeases()];
    assert.deepEqual(leased.sort(), [
      ['kept', 2n],
      ['moved', 2n],
    ]);
    assert.deepEqual([...reopened.takeRestoredLeases()], []);
  });

  it('skips and counts restored keys whose lease is gone', () => {
    const { lessor } = makeLessor();
    lessor.applyGrant(1n, 10, 0);
    assert.equal(
      lessor.recoverAttachments(
        new Map([
          ['a', 1n],
          ['b', 2n],
          ['c', 0n],
        ]),
      ),
      1,
    );
  });
});

describe('lease IDs', () => {
  it('puts the member ID low bytes on top, the start time next and a counter last', () => {
    const id = leaseIdAt(0x1234n, 0x0102030405, 1n);
    assert.equal(id, 0x1234_0102030405_01n);
  });

  it('are positive, never zero, and increase', () => {
    const generator = new LeaseIdGenerator(0xffffffffffffffffn, 1_700_000_000_000);
    let previous = 0n;
    for (let i = 0; i < 300; i++) {
      const id = generator.next();
      assert.ok(id > previous && id < 1n << 63n, `id ${id} after ${previous}`);
      previous = id;
    }
  });

  it('skips zero when the member bits and the suffix wrap to it', () => {
    const generator = new LeaseIdGenerator(0n, 2 ** 40 - 1);
    const ids = Array.from({ length: 300 }, () => generator.next());
    assert.ok(ids.every((id) => id > 0n));
  });
});
