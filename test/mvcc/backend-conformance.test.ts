/** One conformance suite for every Backend: the in-memory twin and LMDB must behave the same. */

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyValue } from '../../src/api/types.js';
import { type Backend, type StoredKeyValue, MemoryBackend, emptyMeta } from '../../src/mvcc/backend.js';
import { LmdbBackend } from '../../src/mvcc/lmdb-backend.js';
import type { Revision } from '../../src/mvcc/revision.js';
import { bytes } from './helpers.js';

interface Subject {
  name: string;
  make(): Backend;
}

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const subjects: Subject[] = [
  { name: 'MemoryBackend', make: () => new MemoryBackend() },
  {
    name: 'LmdbBackend',
    make: () => {
      const dir = mkdtempSync(join(tmpdir(), 'mvcc-backend-'));
      tempDirs.push(dir);
      return LmdbBackend.open(join(dir, 'db'));
    },
  },
];

function putAt(
  rev: Revision,
  key: string,
  value: string,
  extra: Partial<KeyValue> = {},
): { rev: Revision; stored: StoredKeyValue } {
  const kv: KeyValue = {
    key: bytes(key),
    value: bytes(value),
    createRevision: rev.main,
    modRevision: rev.main,
    version: 1,
    lease: 0n,
    ...extra,
  };
  return { rev, stored: { kv, tombstone: false } };
}

function tombstoneAt(rev: Revision, key: string): { rev: Revision; stored: StoredKeyValue } {
  const kv: KeyValue = {
    key: bytes(key),
    value: new Uint8Array(0),
    createRevision: 0,
    modRevision: 0,
    version: 0,
    lease: 0n,
  };
  return { rev, stored: { kv, tombstone: true } };
}

function scanAll(backend: Backend, from: Revision = { main: 0, sub: 0 }): string[] {
  const seen: string[] = [];
  backend.scan(from, (rev, stored) => {
    seen.push(`${rev.main}.${rev.sub}${stored.tombstone ? 't' : ''}`);
  });
  return seen;
}

for (const subject of subjects) {
  describe(`${subject.name} conformance`, () => {
    it('starts empty with the empty meta', async () => {
      const backend = subject.make();
      assert.deepEqual(backend.readMeta(), emptyMeta);
      assert.equal(backend.get({ main: 2, sub: 0 }), undefined);
      assert.deepEqual(scanAll(backend), []);
      await backend.close();
    });

    it('reads see a batch as soon as it is written, and still after it is flushed', async () => {
      const backend = subject.make();
      backend.write({
        puts: [putAt({ main: 2, sub: 0 }, 'a', '1')],
        deletes: [],
        meta: { consistentIndex: 5, term: 2 },
      });
      const check = (): void => {
        assert.deepEqual(backend.get({ main: 2, sub: 0 })?.kv.value, bytes('1'));
        assert.equal(backend.readMeta().consistentIndex, 5);
        assert.equal(backend.readMeta().term, 2);
        assert.deepEqual(scanAll(backend), ['2.0']);
      };
      check();
      await backend.flush();
      check();
      await backend.close();
    });

    it('round-trips tombstones, binary keys and values, and any lease', async () => {
      const backend = subject.make();
      const allBytes = new Uint8Array(256).map((_, i) => i);
      const binary = putAt({ main: 2, sub: 0 }, 'x', '', {
        key: allBytes,
        value: allBytes,
        lease: -5n,
        version: 3,
        createRevision: 1,
      });
      const large = putAt({ main: 2, sub: 1 }, 'big', 'v'.repeat(100_000), { lease: 0x7fff_ffff_ffff_ffffn });
      backend.write({ puts: [binary, large, tombstoneAt({ main: 3, sub: 0 }, 'gone')], deletes: [], meta: {} });
      await backend.flush();
      assert.deepEqual(backend.get({ main: 2, sub: 0 }), binary.stored);
      assert.deepEqual(backend.get({ main: 2, sub: 1 }), large.stored);
      assert.deepEqual(backend.get({ main: 3, sub: 0 }), tombstoneAt({ main: 3, sub: 0 }, 'gone').stored);
      await backend.close();
    });

    it('scans in revision order from a starting revision and stops when told', async () => {
      const backend = subject.make();
      backend.write({
        puts: [putAt({ main: 10, sub: 0 }, 'a', '1'), putAt({ main: 10, sub: 1 }, 'b', '1')],
        deletes: [],
        meta: {},
      });
      await backend.flush();
      backend.write({
        puts: [putAt({ main: 2, sub: 0 }, 'c', '1'), putAt({ main: 256, sub: 0 }, 'd', '1')],
        deletes: [],
        meta: {},
      });
      backend.write({ puts: [tombstoneAt({ main: 300, sub: 0 }, 'a')], deletes: [], meta: {} });
      assert.deepEqual(scanAll(backend), ['2.0', '10.0', '10.1', '256.0', '300.0t']);
      assert.deepEqual(scanAll(backend, { main: 10, sub: 1 }), ['10.1', '256.0', '300.0t']);
      const firstTwo: number[] = [];
      backend.scan({ main: 0, sub: 0 }, (rev) => {
        firstTwo.push(rev.main);
        return firstTwo.length < 2;
      });
      assert.deepEqual(firstTwo, [2, 10]);
      await backend.flush();
      assert.deepEqual(scanAll(backend), ['2.0', '10.0', '10.1', '256.0', '300.0t']);
      await backend.close();
    });

    it('scanIndex gives every revision as scan does, without values, before and after flushing', async () => {
      const backend = subject.make();
      const allBytes = new Uint8Array(256).map((_, i) => i);
      backend.write({
        puts: [
          putAt({ main: 2, sub: 0 }, 'a', '1', { lease: 7n }),
          putAt({ main: 2, sub: 1 }, '', 'big'.repeat(40_000), {
            key: allBytes,
            createRevision: 1,
            version: 3,
            lease: -5n,
          }),
          putAt({ main: 2 ** 40, sub: 0 }, 'b', '', { lease: 0x7fff_ffff_ffff_ffffn }),
        ],
        deletes: [],
        meta: {},
      });
      backend.write({ puts: [tombstoneAt({ main: 2 ** 40 + 1, sub: 0 }, 'a')], deletes: [], meta: {} });
      const expected = (): string[] => {
        const seen: string[] = [];
        backend.scan({ main: 0, sub: 0 }, (rev, { kv, tombstone }) => {
          seen.push(
            JSON.stringify([
              rev.main,
              rev.sub,
              [...kv.key],
              tombstone ? 0 : kv.createRevision,
              tombstone ? 0 : kv.version,
              String(tombstone ? 0n : kv.lease),
              tombstone,
            ]),
          );
        });
        return seen;
      };
      const indexed = (): string[] => {
        const seen: string[] = [];
        backend.scanIndex((record) => {
          const key = [...record.key].map((char) => char.charCodeAt(0));
          seen.push(
            JSON.stringify([
              record.main,
              record.sub,
              key,
              record.createRevision,
              record.version,
              String(record.lease),
              record.tombstone,
            ]),
          );
        });
        return seen;
      };
      assert.equal(expected().length, 4);
      assert.deepEqual(indexed(), expected());
      await backend.flush();
      assert.deepEqual(indexed(), expected());
      await backend.close();
    });

    it('deletes hide revisions from get and scan, before and after flushing', async () => {
      const backend = subject.make();
      backend.write({
        puts: [putAt({ main: 2, sub: 0 }, 'a', '1'), putAt({ main: 3, sub: 0 }, 'a', '2')],
        deletes: [],
        meta: {},
      });
      await backend.flush();
      backend.write({
        puts: [putAt({ main: 4, sub: 0 }, 'b', '1')],
        deletes: [{ main: 2, sub: 0 }],
        meta: { finishedCompactRevision: 3, scheduledCompactRevision: 3 },
      });
      backend.write({ puts: [], deletes: [{ main: 4, sub: 0 }], meta: {} });
      const check = (): void => {
        assert.equal(backend.get({ main: 2, sub: 0 }), undefined);
        assert.equal(backend.get({ main: 4, sub: 0 }), undefined);
        assert.deepEqual(scanAll(backend), ['3.0']);
        assert.equal(backend.readMeta().finishedCompactRevision, 3);
      };
      check();
      await backend.flush();
      check();
      await backend.close();
    });

    it('meta fields update independently and the latest write wins', async () => {
      const backend = subject.make();
      backend.write({ puts: [], deletes: [], meta: { consistentIndex: 1, term: 1 } });
      backend.write({ puts: [], deletes: [], meta: { scheduledCompactRevision: 9 } });
      backend.write({ puts: [], deletes: [], meta: { consistentIndex: 2 } });
      const expected = { consistentIndex: 2, term: 1, scheduledCompactRevision: 9, finishedCompactRevision: -1 };
      assert.deepEqual(backend.readMeta(), expected);
      await backend.flush();
      assert.deepEqual(backend.readMeta(), expected);
      await backend.close();
    });

    it('reports a size that grows with the data', async () => {
      const backend = subject.make();
      const before = backend.sizeBytes();
      const puts = Array.from({ length: 2000 }, (_, i) => putAt({ main: 2, sub: i }, `key${i}`, 'v'.repeat(200)));
      backend.write({ puts, deletes: [], meta: {} });
      await backend.flush();
      assert.ok(backend.sizeBytes() > before, `size ${backend.sizeBytes()} should exceed ${before}`);
      await backend.close();
    });
  });
}
