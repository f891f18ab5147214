/**
 * Seeded random histories checked against a plain model (a full key map per revision), then
 * the store is reopened from its backend and must answer every read the same way. Every entry
 * is applied to a store on MemoryBackend and to its twin on LMDB.
 */

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Prng } from '../../src/lib/prng.js';
import { type Backend, MemoryBackend } from '../../src/mvcc/backend.js';
import { KvStore } from '../../src/mvcc/kv-store.js';
import { LmdbBackend } from '../../src/mvcc/lmdb-backend.js';
import type { KvProposalBody } from '../../src/api/types.js';
import { Harness, deleteReq, op, putReq, rangeReq, text, txnReq } from './helpers.js';

interface ModelKv {
  value: string;
  create: number;
  mod: number;
  version: number;
}

type Snapshot = Map<string, ModelKv>;

const keySpace = ['a', 'b', 'c', 'd', 'e', 'f'];
const opsPerRun = 250;

class Model {
  current: Snapshot = new Map();
  readonly byRevision = new Map<number, Snapshot>([[1, new Map()]]);
  rev = 1;

  /** Applies writes that share one new revision; returns whether anything changed. */
  write(writes: ({ put: string; value: string } | { del: string; end: string })[]): void {
    const next = new Map(this.current);
    const rev = this.rev + 1;
    let changed = false;
    for (const w of writes) {
      if ('put' in w) {
        const old = next.get(w.put);
        next.set(w.put, { value: w.value, create: old?.create ?? rev, mod: rev, version: (old?.version ?? 0) + 1 });
        changed = true;
      } else {
        for (const key of [...next.keys()]) {
          if (key >= w.del && key < w.end) {
            next.delete(key);
            changed = true;
          }
        }
      }
    }
    if (!changed) return;
    this.rev = rev;
    this.current = next;
    this.byRevision.set(rev, next);
  }

  at(rev: number): Snapshot {
    for (let r = rev; r >= 1; r--) {
      const snapshot = this.byRevision.get(r);
      if (snapshot !== undefined) return snapshot;
    }
    return new Map();
  }
}

function describeStore(store: KvStore, rev: number): string[] {
  return store
    .range(rangeReq('\0', '\0', { revision: rev }))
    .kvs.map((kv) => `${text(kv.key)}=${text(kv.value)}@${kv.createRevision}/${kv.modRevision}/v${kv.version}`);
}

function describeModel(snapshot: Snapshot): string[] {
  return [...snapshot.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, kv]) => `${k}=${kv.value}@${kv.create}/${kv.mod}/v${kv.version}`);
}

/** Applies one entry to every store; all must agree on the outcome, error or not. */
function applyAll(stores: Harness[], body: KvProposalBody): void {
  const outcomes = stores.map((h) => {
    try {
      return JSON.stringify(h.apply(body), (_k, v: unknown) =>
        typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? text(v) : v,
      );
    } catch (error) {
      return (error as Error).message;
    }
  });
  for (const outcome of outcomes) assert.equal(outcome, outcomes[0]);
}

function randomStep(prng: Prng, stores: Harness[], model: Model, step: number): void {
  const key = (): string => prng.pick(keySpace);
  const roll = prng.nextInt(10);
  const compactRevision = stores[0]!.store.compactRevision;
  if (roll < 5) {
    const k = key();
    applyAll(stores, { type: 'put', put: putReq(k, `v${step}`) });
    model.write([{ put: k, value: `v${step}` }]);
  } else if (roll < 7) {
    const [from, to] = [key(), key()].sort();
    const end = from === to ? `${from}\0` : to!;
    applyAll(stores, { type: 'deleteRange', deleteRange: deleteReq(from!, end) });
    model.write([{ del: from!, end }]);
  } else if (roll < 9) {
    const [k1, k2] = [key(), key()];
    applyAll(stores, {
      type: 'txn',
      txn: txnReq([], [op.put(putReq(k1, `t${step}`)), op.del(deleteReq(k2)), op.put(putReq(k2, `u${step}`))]),
    });
    model.write([
      { put: k1, value: `t${step}` },
      { del: k2, end: `${k2}\0` },
      { put: k2, value: `u${step}` },
    ]);
  } else if (model.rev > compactRevision + 1) {
    const low = Math.max(compactRevision + 1, 1);
    applyAll(stores, {
      type: 'compaction',
      compaction: { revision: low + prng.nextInt(model.rev - low + 1), physical: false },
    });
  }
}

function checkAllRevisions(store: KvStore, model: Model): void {
  for (let rev = Math.max(store.compactRevision, 1); rev <= model.rev; rev++) {
    assert.deepEqual(describeStore(store, rev), describeModel(model.at(rev)), `revision ${rev}`);
  }
  if (store.compactRevision > 1)
    assert.throws(() => store.range(rangeReq('a', '', { revision: store.compactRevision - 1 })), /compacted/);
}

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function lmdbAt(dir: string): Backend {
  return LmdbBackend.open(join(dir, 'db'));
}

describe('random histories against a model', () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: every revision reads as the model says, also after reopening`, async () => {
      const prng = new Prng(seed);
      const memory = new MemoryBackend();
      const dir = mkdtempSync(join(tmpdir(), 'mvcc-model-'));
      tempDirs.push(dir);
      const lmdb = lmdbAt(dir);
      const h = new Harness(memory);
      const twin = new Harness(lmdb);
      const model = new Model();
      for (let step = 0; step < opsPerRun; step++) randomStep(prng, [h, twin], model, step);
      assert.equal(h.store.currentRevision, model.rev);
      assert.ok(
        h.store.compactRevision > 1 && model.rev > 150,
        `history too tame: compacted at ${h.store.compactRevision}, revision ${model.rev}`,
      );
      checkAllRevisions(h.store, model);
      const hash = h.store.hashKV(0);
      assert.deepEqual(twin.store.hashKV(0), hash);

      const reopenedMemory = KvStore.open(memory);
      checkAllRevisions(reopenedMemory, model);
      assert.deepEqual(reopenedMemory.hashKV(0), hash);

      await lmdb.close();
      const reopenedLmdb = lmdbAt(dir);
      const fromDisk = KvStore.open(reopenedLmdb);
      assert.equal(fromDisk.consistentIndex, h.store.consistentIndex);
      assert.equal(fromDisk.compactRevision, h.store.compactRevision);
      checkAllRevisions(fromDisk, model);
      assert.deepEqual(fromDisk.hashKV(0), hash);
      await reopenedLmdb.close();
    });
  }
});
