import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from '../../src/mvcc/key-index.js';
import type { Revision } from '../../src/mvcc/revision.js';

const r = (main: number, sub = 0): Revision => ({ main, sub });

/** foo: put 2, put 4, tombstone 6 | put 8, put 10, tombstone 12 | put 14, put 14.1, put 16 (live). */
function threeLives(): KeyIndex {
  const ki = new KeyIndex('foo');
  ki.put(r(2));
  ki.put(r(4));
  ki.tombstone(r(6));
  ki.put(r(8));
  ki.put(r(10));
  ki.tombstone(r(12));
  ki.put(r(14));
  ki.put(r(14, 1));
  ki.put(r(16));
  return ki;
}

function shape(ki: KeyIndex): string[] {
  return ki.generations.map((g) => g.revs.map((rev) => (rev.sub ? `${rev.main}.${rev.sub}` : `${rev.main}`)).join(','));
}

describe('key index', () => {
  it("splits a key's history into generations at each tombstone", () => {
    assert.deepEqual(shape(threeLives()), ['2,4,6', '8,10,12', '14,14.1,16']);
  });

  it('answers a read at any revision with the modification, creation and version of that time', () => {
    const ki = threeLives();
    assert.equal(ki.get(1), undefined);
    assert.deepEqual(ki.get(5), { modified: r(4), created: r(2), version: 2 });
    assert.equal(ki.get(6), undefined, 'deleted at 6');
    assert.equal(ki.get(7), undefined);
    assert.deepEqual(ki.get(11), { modified: r(10), created: r(8), version: 2 });
    assert.deepEqual(ki.get(14), { modified: r(14, 1), created: r(14), version: 2 });
    assert.deepEqual(ki.get(100), { modified: r(16), created: r(14), version: 3 });
  });

  it('refuses a put that is not newer than the last modification', () => {
    const ki = threeLives();
    assert.throws(() => ki.put(r(16)), /not after the last modification/);
  });

  it('a tombstone on a deleted key reports nothing deleted', () => {
    const ki = new KeyIndex('k');
    ki.put(r(2));
    assert.equal(ki.tombstone(r(3)), true);
    assert.equal(ki.tombstone(r(4)), false);
  });

  it('compaction keeps the newest revision at or below it and reports what it dropped', () => {
    const cases: [number, string[], string[]][] = [
      [1, ['2,4,6', '8,10,12', '14,14.1,16'], []],
      [3, ['2,4,6', '8,10,12', '14,14.1,16'], []],
      [4, ['4,6', '8,10,12', '14,14.1,16'], ['2']],
      [5, ['4,6', '8,10,12', '14,14.1,16'], ['2']],
      [6, ['8,10,12', '14,14.1,16'], ['2', '4', '6']],
      [9, ['8,10,12', '14,14.1,16'], ['2', '4', '6']],
      [12, ['14,14.1,16'], ['2', '4', '6', '8', '10', '12']],
      [15, ['14.1,16'], ['2', '4', '6', '8', '10', '12', '14']],
      [16, ['16'], ['2', '4', '6', '8', '10', '12', '14', '14.1']],
    ];
    for (const [atRev, left, dropped] of cases) {
      const ki = threeLives();
      const removed: Revision[] = [];
      ki.compact(atRev, removed);
      assert.deepEqual(shape(ki), left, `compact at ${atRev}`);
      assert.deepEqual(
        removed.map((rev) => (rev.sub ? `${rev.main}.${rev.sub}` : `${rev.main}`)),
        dropped,
        `dropped at ${atRev}`,
      );
    }
  });

  it('a key whose last life ended at or before the compaction becomes empty', () => {
    const ki = new KeyIndex('k');
    ki.put(r(2));
    ki.tombstone(r(3));
    ki.compact(3, []);
    assert.equal(ki.isEmpty(), true);
  });

  it('a key compacted down to its live life can be deleted and live again', () => {
    const ki = threeLives();
    ki.compact(12, []);
    assert.deepEqual(shape(ki), ['14,14.1,16']);
    assert.equal(ki.tombstone(r(18)), true);
    ki.put(r(20));
    assert.deepEqual(shape(ki), ['14,14.1,16,18', '20']);
    assert.equal(ki.get(19), undefined, 'deleted at 18');
    assert.deepEqual(ki.get(17), { modified: r(16), created: r(14), version: 3 });
    assert.deepEqual(ki.get(20), { modified: r(20), created: r(20), version: 1 });
    ki.compact(20, []);
    assert.deepEqual(shape(ki), ['20']);
  });

  it('keep names the revision compaction would keep, never a tombstone', () => {
    const ki = threeLives();
    const keepAt = (atRev: number): string[] => {
      const keep = new Set<string>();
      ki.keep(atRev, keep);
      return [...keep];
    };
    assert.deepEqual(keepAt(5), ['4_0']);
    assert.deepEqual(keepAt(6), []);
    assert.deepEqual(keepAt(12), []);
    assert.deepEqual(keepAt(14), ['14_1']);
    assert.deepEqual(shape(ki), ['2,4,6', '8,10,12', '14,14.1,16'], 'keep changes nothing');
  });
});
