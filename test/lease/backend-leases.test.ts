import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { applyLeaseProposal } from '../../src/lease/apply.js';
import { Lessor } from '../../src/lease/lessor.js';
import { decodeLeaseRecord, encodeLeaseKey, encodeLeaseRecord } from '../../src/mvcc/lease-record-codec.js';
import { type Backend, type LeaseRecord, MemoryBackend } from '../../src/mvcc/backend.js';
import { KvStore } from '../../src/mvcc/kv-store.js';
import { LmdbBackend } from '../../src/mvcc/lmdb-backend.js';

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** The inverse of encodeLeaseKey; the backend never reads lease keys back (records carry the ID). */
function decodeLeaseKey(bytes: Uint8Array): bigint {
  assert.equal(bytes.length, 8);
  return BigInt.asIntN(64, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0));
}

function scanAll(backend: Backend): LeaseRecord[] {
  const records: LeaseRecord[] = [];
  backend.scanLeases((record) => records.push(record));
  return records;
}

const noChanges = { puts: [], deletes: [], meta: {} };

interface Subject {
  name: string;
  /** A fresh backend, and a way to get one over the same storage after closing it (same object for memory). */
  make(): { backend: Backend; reopen(): Promise<Backend> };
}

const subjects: Subject[] = [
  {
    name: 'MemoryBackend',
    make: () => {
      const backend = new MemoryBackend();
      return { backend, reopen: () => Promise.resolve(backend) };
    },
  },
  {
    name: 'LmdbBackend',
    make: () => {
      const dir = mkdtempSync(join(tmpdir(), 'lease-backend-'));
      tempDirs.push(dir);
      const path = join(dir, 'db');
      const backend = LmdbBackend.open(path);
      return {
        backend,
        reopen: async () => {
          await backend.close();
          return LmdbBackend.open(path);
        },
      };
    },
  },
];

describe('lease record codec', () => {
  it('encodes leasepb.Lease as gogoproto does', () => {
    assert.deepEqual([...encodeLeaseRecord({ id: 1n, ttlSeconds: 10 })], [0x08, 0x01, 0x10, 0x0a]);
    assert.deepEqual([...encodeLeaseRecord({ id: 300n, ttlSeconds: 0 })], [0x08, 0xac, 0x02]);
  });

  it('round-trips large and negative IDs and keys them big-endian', () => {
    for (const record of [
      { id: 0x390da2136eaaf005n, ttlSeconds: 9_000_000_000 },
      { id: -5n, ttlSeconds: 2 },
    ]) {
      assert.deepEqual(decodeLeaseRecord(encodeLeaseRecord(record)), record);
      assert.equal(decodeLeaseKey(encodeLeaseKey(record.id)), record.id);
    }
    assert.deepEqual([...encodeLeaseKey(0x0102n)], [0, 0, 0, 0, 0, 0, 1, 2]);
  });

  it('reads and drops the remaining TTL that etcd checkpoints write', () => {
    assert.deepEqual(decodeLeaseRecord(Uint8Array.from([0x08, 0x07, 0x10, 0x05, 0x18, 0x03])), {
      id: 7n,
      ttlSeconds: 5,
    });
  });
});

for (const subject of subjects) {
  describe(`${subject.name} lease area`, () => {
    it('keeps puts and deletes in unsigned ID order and sees them before they commit', async () => {
      const { backend } = subject.make();
      backend.write({
        ...noChanges,
        leases: {
          puts: [
            { id: 5n, ttlSeconds: 10 },
            { id: -1n, ttlSeconds: 3 },
            { id: 2n, ttlSeconds: 7 },
          ],
          deletes: [],
        },
      });
      assert.deepEqual(
        scanAll(backend).map((record) => record.id),
        [2n, 5n, -1n],
      );
      backend.write({ ...noChanges, leases: { puts: [], deletes: [5n] } });
      assert.deepEqual(
        scanAll(backend).map((record) => record.id),
        [2n, -1n],
      );
      await backend.flush();
      assert.deepEqual(scanAll(backend), [
        { id: 2n, ttlSeconds: 7 },
        { id: -1n, ttlSeconds: 3 },
      ]);
      await backend.close();
    });

    it('ends granted when a lease is revoked and granted again before the commit', async () => {
      const { backend, reopen } = subject.make();
      backend.write({ ...noChanges, leases: { puts: [{ id: 9n, ttlSeconds: 10 }], deletes: [] } });
      await backend.flush();
      backend.write({ ...noChanges, leases: { puts: [], deletes: [9n] } });
      backend.write({ ...noChanges, leases: { puts: [{ id: 9n, ttlSeconds: 20 }], deletes: [] } });
      const again = await reopen();
      assert.deepEqual(scanAll(again), [{ id: 9n, ttlSeconds: 20 }]);
      await again.close();
    });

    it('brings leases, attachments and the revoke revision back after a restart', async () => {
      const { backend, reopen } = subject.make();
      const lessor = Lessor.open(backend, { minTtlSeconds: 2 });
      const store = KvStore.open(backend, {
        leaseExists: (id) => lessor.exists(id),
        onChanges: (events) => lessor.applyEvents(events),
      });
      const put = (key: string, lease: bigint) => ({
        type: 'put' as const,
        put: {
          key: new TextEncoder().encode(key),
          value: new Uint8Array([1]),
          lease,
          prevKv: false,
          ignoreValue: false,
          ignoreLease: false,
        },
      });
      applyLeaseProposal(
        lessor,
        store,
        { index: 1, term: 1 },
        { type: 'leaseGrant', leaseGrant: { id: 11n, ttlSeconds: 30 } },
        0,
      );
      applyLeaseProposal(
        lessor,
        store,
        { index: 2, term: 1 },
        { type: 'leaseGrant', leaseGrant: { id: 12n, ttlSeconds: 40 } },
        0,
      );
      store.apply(3, 1, put('x', 11n));
      store.apply(4, 1, put('y', 12n));
      applyLeaseProposal(lessor, store, { index: 5, term: 1 }, { type: 'leaseRevoke', leaseRevoke: { id: 11n } }, 0);

      const again = await reopen();
      const restored = Lessor.open(again, { minTtlSeconds: 2 });
      const reopened = KvStore.open(again, { leaseExists: (id) => restored.exists(id) });
      assert.equal(restored.recoverAttachments(reopened.takeRestoredLeases()), 0);
      assert.deepEqual([reopened.consistentIndex, reopened.currentRevision], [5, 4]);
      assert.deepEqual(restored.leases(), [12n]);
      const ttl = restored.timeToLive(12n, 0, true);
      assert.deepEqual([ttl.grantedTtlSeconds, ttl.keys.map((key) => new TextDecoder().decode(key))], [40, ['y']]);
      await again.close();
    });
  });
}
