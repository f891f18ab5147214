import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SortOrder, SortTarget } from '../../src/api/types.js';
import { Harness, rangeReq, text } from './helpers.js';

/** a..e with distinct versions, create and mod revisions, and values that sort differently from keys. */
function seeded(): Harness {
  const h = new Harness();
  h.put('c', 'x'); // 2
  h.put('a', 'z'); // 3
  h.put('e', 'v'); // 4
  h.put('b', 'y'); // 5
  h.put('d', 'w'); // 6
  h.put('c', 'x2'); // 7: c version 2
  h.put('c', 'x3'); // 8: c version 3
  h.put('a', 'z2'); // 9: a version 2
  return h;
}

describe('range', () => {
  it('an empty range end reads one key', () => {
    assert.deepEqual(seeded().keys('b'), ['b']);
    assert.deepEqual(seeded().keys('bb'), []);
  });

  it('a range end reads the half-open interval [key, end)', () => {
    assert.deepEqual(seeded().keys('b', 'd'), ['b', 'c']);
  });

  it('a range end of one zero byte reads every key from key on', () => {
    assert.deepEqual(seeded().keys('c', '\0'), ['c', 'd', 'e']);
  });

  it('key and range end both a zero byte read every key', () => {
    assert.deepEqual(seeded().keys('\0', '\0'), ['a', 'b', 'c', 'd', 'e']);
  });

  it('a range end at or before the key reads nothing', () => {
    assert.deepEqual(seeded().keys('c', 'c'), []);
    assert.deepEqual(seeded().keys('c', 'b'), []);
  });

  it('limit truncates, sets more, and count stays the total', () => {
    const result = seeded().store.range(rangeReq('a', '\0', { limit: 2 }));
    assert.deepEqual(
      result.kvs.map((kv) => text(kv.key)),
      ['a', 'b'],
    );
    assert.equal(result.more, true);
    assert.equal(result.count, 5);
    const exact = seeded().store.range(rangeReq('a', '\0', { limit: 5 }));
    assert.equal(exact.more, false);
    assert.equal(exact.kvs.length, 5);
  });

  it('count_only returns the count and no kvs', () => {
    const result = seeded().store.range(rangeReq('a', '\0', { countOnly: true, limit: 1 }));
    assert.deepEqual(result, { kvs: [], more: false, count: 5 });
  });

  it('keys_only empties the values but keeps the revisions', () => {
    const result = seeded().store.range(rangeReq('c', '', { keysOnly: true }));
    assert.equal(result.kvs[0]!.value.length, 0);
    assert.equal(result.kvs[0]!.modRevision, 8);
    assert.equal(result.kvs[0]!.version, 3);
  });

  it('sorts by every target in both directions', () => {
    const h = seeded();
    const sorted = (target: SortTarget, order: SortOrder): string[] =>
      h.store.range(rangeReq('a', '\0', { sortTarget: target, sortOrder: order })).kvs.map((kv) => text(kv.key));
    assert.deepEqual(sorted(SortTarget.key, SortOrder.descend), ['e', 'd', 'c', 'b', 'a']);
    assert.deepEqual(sorted(SortTarget.key, SortOrder.ascend), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(sorted(SortTarget.create, SortOrder.ascend), ['c', 'a', 'e', 'b', 'd']);
    assert.deepEqual(sorted(SortTarget.create, SortOrder.descend), ['d', 'b', 'e', 'a', 'c']);
    assert.deepEqual(sorted(SortTarget.mod, SortOrder.descend), ['a', 'c', 'd', 'b', 'e']);
    assert.deepEqual(sorted(SortTarget.value, SortOrder.ascend), ['e', 'd', 'c', 'b', 'a']);
    // Ties keep key order in both directions.
    assert.deepEqual(sorted(SortTarget.version, SortOrder.ascend), ['b', 'd', 'e', 'a', 'c']);
    assert.deepEqual(sorted(SortTarget.version, SortOrder.descend), ['c', 'a', 'b', 'd', 'e']);
  });

  it('sort order none with a target other than key sorts ascending, as etcd', () => {
    const h = seeded();
    const keys = h.store.range(rangeReq('a', '\0', { sortTarget: SortTarget.mod })).kvs.map((kv) => text(kv.key));
    assert.deepEqual(keys, ['e', 'b', 'd', 'c', 'a']);
  });

  it('sort order none with another target sorts only the first limit + 1 keys, as etcd', () => {
    // etcd fetches limit + 1 keys in key order when the raw sort order is none, then sorts them.
    const h = seeded();
    const result = h.store.range(rangeReq('a', '\0', { sortTarget: SortTarget.mod, limit: 2 }));
    assert.deepEqual(
      result.kvs.map((kv) => text(kv.key)),
      ['b', 'c'],
    );
    assert.equal(result.more, true);
    const sortedFully = h.store.range(
      rangeReq('a', '\0', { sortTarget: SortTarget.mod, sortOrder: SortOrder.ascend, limit: 2 }),
    );
    assert.deepEqual(
      sortedFully.kvs.map((kv) => text(kv.key)),
      ['e', 'b'],
    );
  });

  it('mod and create revision filters prune kvs but not the count', () => {
    const h = seeded();
    const byMod = h.store.range(rangeReq('a', '\0', { minModRevision: 5, maxModRevision: 8 }));
    assert.deepEqual(
      byMod.kvs.map((kv) => text(kv.key)),
      ['b', 'c', 'd'],
    );
    assert.equal(byMod.count, 5);
    const byCreate = h.store.range(rangeReq('a', '\0', { minCreateRevision: 3, maxCreateRevision: 4 }));
    assert.deepEqual(
      byCreate.kvs.map((kv) => text(kv.key)),
      ['a', 'e'],
    );
    const limited = h.store.range(rangeReq('a', '\0', { minModRevision: 6, limit: 1 }));
    assert.deepEqual(
      limited.kvs.map((kv) => text(kv.key)),
      ['a'],
    );
    assert.equal(limited.more, true);
  });

  it('reads at an older revision see the keys and values of that time', () => {
    const h = seeded();
    const old = h.store.range(rangeReq('a', '\0', { revision: 4 }));
    assert.deepEqual(
      old.kvs.map((kv) => `${text(kv.key)}=${text(kv.value)}`),
      ['a=z', 'c=x', 'e=v'],
    );
    assert.equal(old.count, 3);
  });

  it("a future revision fails with etcd's future revision error", () => {
    assert.throws(() => seeded().store.range(rangeReq('a', '', { revision: 10 })), {
      message: 'etcdserver: mvcc: required revision is a future revision',
    });
  });
});
