/**
 * The linearizability checker's self-tests: histories that are not linearizable (stale read, lost
 * write, a value never written, revision going back, CAS succeeding twice, a txn seen half
 * applied) must be refused with an explanation, and concurrent histories with unknown outcomes
 * that are linearizable must pass, both key by key and whole.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory, type Operation, type Verdict } from './checker.js';
import type { KeyValueSeen, KvInput, KvOutput, TxnOpResult } from './kv-model.js';

/** Builds histories by hand: times in milliseconds, revisions as etcd would answer them. */
class Builder {
  readonly ops: Operation[] = [];

  add(client: number, callMs: number, returnMs: number | 'unknown', input: KvInput, output?: KvOutput): this {
    this.ops.push({
      id: this.ops.length,
      client,
      input,
      output: returnMs === 'unknown' ? undefined : output,
      callMs,
      returnMs: returnMs === 'unknown' ? Infinity : returnMs,
    });
    return this;
  }

  put(client: number, callMs: number, returnMs: number | 'unknown', key: string, value: string, revision = 0): this {
    return this.add(client, callMs, returnMs, { type: 'put', key, value }, { type: 'put', revision });
  }

  get(client: number, callMs: number, returnMs: number, key: string, revision: number, kv: KeyValueSeen | null): this {
    return this.add(client, callMs, returnMs, { type: 'get', key }, { type: 'get', revision, kv });
  }

  /** CAS: if version(key) = expected then put key=value, answered with `succeeded` at `revision`. */
  cas(
    client: number,
    callMs: number,
    returnMs: number | 'unknown',
    key: string,
    expectedVersion: number,
    value: string,
    answer?: { succeeded: boolean; revision: number },
  ): this {
    const input: KvInput = {
      type: 'txn',
      compares: [{ key, target: 'version', result: 'equal', operand: expectedVersion }],
      success: [{ type: 'put', key, value }],
      failure: [{ type: 'get', key }],
    };
    const output: KvOutput | undefined =
      answer === undefined
        ? undefined
        : {
            type: 'txn',
            revision: answer.revision,
            succeeded: answer.succeeded,
            results: answer.succeeded ? [{ type: 'put' }] : [{ type: 'get', kv: null }],
          };
    return this.add(client, callMs, returnMs, input, output);
  }
}

function kv(value: string, version: number, createRevision: number, modRevision: number): KeyValueSeen {
  return { value, version, createRevision, modRevision };
}

function assertIllegal(verdict: Verdict, mentions: RegExp): void {
  assert.equal(verdict.result, 'illegal', `expected a violation, saw ${JSON.stringify(verdict)}`);
  if (verdict.result !== 'illegal') return;
  assert.match(verdict.explanation.text, mentions, verdict.explanation.text);
}

function assertOk(verdict: Verdict): void {
  assert.equal(verdict.result, 'ok', verdict.result === 'illegal' ? verdict.explanation.text : JSON.stringify(verdict));
}

/** A two-key txn that puts both keys, and a txn reading both; used for atomicity. */
function putBoth(a: string, b: string, revision: number): [KvInput, KvOutput] {
  return [
    {
      type: 'txn',
      compares: [],
      success: [
        { type: 'put', key: 'a', value: a },
        { type: 'put', key: 'b', value: b },
      ],
      failure: [],
    },
    { type: 'txn', revision, succeeded: true, results: [{ type: 'put' }, { type: 'put' }] },
  ];
}

function readBoth(revision: number, a: KeyValueSeen | null, b: KeyValueSeen | null): [KvInput, KvOutput] {
  const results: TxnOpResult[] = [
    { type: 'get', kv: a },
    { type: 'get', kv: b },
  ];
  return [
    {
      type: 'txn',
      compares: [],
      success: [
        { type: 'get', key: 'a' },
        { type: 'get', key: 'b' },
      ],
      failure: [],
    },
    { type: 'txn', revision, succeeded: true, results },
  ];
}

describe('histories that are not linearizable are refused', () => {
  test('a stale read: a get after an acknowledged put returns the value before it', () => {
    const h = new Builder()
      .put(1, 0, 10, 'a', 'v1', 2)
      .put(1, 20, 30, 'a', 'v2', 3)
      .get(2, 40, 50, 'a', 3, kv('v1', 1, 2, 2));
    assertIllegal(checkHistory(h.ops), /get a returned "v1", the model has "v2"/);
  });

  test('a lost write: an acknowledged put is gone for a later read', () => {
    const h = new Builder().put(1, 0, 10, 'a', 'v1', 2).get(2, 20, 30, 'a', 2, null);
    assertIllegal(checkHistory(h.ops), /get a returned nothing/);
  });

  test('a read of a value no one wrote', () => {
    const h = new Builder()
      .put(1, 0, 10, 'a', 'v1', 2)
      .put(2, 5, 'unknown', 'a', 'v2')
      .get(3, 20, 30, 'a', 2, kv('v9', 1, 2, 2));
    assertIllegal(checkHistory(h.ops), /returned "v9"/);
  });

  test('the revision going back: a read after a write answers a lower header revision', () => {
    const h = new Builder()
      .put(1, 0, 10, 'a', 'v1', 2)
      .put(1, 20, 30, 'b', 'w1', 3)
      .get(2, 40, 50, 'b', 2, kv('w1', 1, 3, 3));
    assertIllegal(checkHistory(h.ops), /revision went back/);
  });

  test('two writes answering the same revision', () => {
    const h = new Builder().put(1, 0, 10, 'a', 'v1', 2).put(2, 0, 10, 'b', 'w1', 2);
    assertIllegal(checkHistory(h.ops), /both wrote revision 2/);
  });

  test('a CAS that succeeds twice on the same version', () => {
    const h = new Builder()
      .put(1, 0, 10, 'a', 'v1', 2)
      .cas(2, 20, 40, 'a', 1, 'x', { succeeded: true, revision: 3 })
      .cas(3, 21, 41, 'a', 1, 'y', { succeeded: true, revision: 4 });
    assertIllegal(checkHistory(h.ops), /compares fail in the model, the response says succeeded=true/);
  });

  test('a txn seen half applied: a read of both keys sees the new a and the old b', () => {
    const h = new Builder();
    h.add(1, 0, 10, ...putBoth('a1', 'b1', 2));
    h.add(1, 20, 30, ...putBoth('a2', 'b2', 3));
    h.add(2, 25, 35, ...readBoth(3, kv('a2', 2, 2, 3), kv('b1', 1, 2, 2)));
    assertIllegal(checkHistory(h.ops), /returned "b1", the model has "b2"/);
  });

  test('a write answering a revision that skips one, when the history holds every write', () => {
    const h = new Builder();
    h.add(1, 0, 10, ...putBoth('a1', 'b1', 2));
    h.add(1, 20, 30, ...putBoth('a2', 'b2', 4));
    assertIllegal(checkHistory(h.ops), /the model's revision is 3, the response header says 4/);
  });

  test('the explanation names the longest linearizable prefix and what could not follow it', () => {
    const h = new Builder()
      .put(1, 0, 10, 'a', 'v1', 2)
      .put(1, 20, 30, 'a', 'v2', 3)
      .get(2, 40, 50, 'a', 3, kv('v1', 1, 2, 2));
    const verdict = checkHistory(h.ops);
    assert.equal(verdict.result, 'illegal');
    if (verdict.result !== 'illegal') return;
    assert.deepEqual(verdict.explanation.longestPrefix, [0, 1]);
    assert.deepEqual(
      verdict.explanation.unplaceable.map((u) => u.id),
      [2],
    );
    assert.equal(verdict.explanation.partition, 'a');
  });

  test('a write of unknown outcome the watchers place at a revision is checked as a put that answered it', () => {
    // Open, the put of b may land after the read at revision 3; made at revision 3, it cannot.
    const h = new Builder().put(1, 0, 10, 'a', 'v1', 2).put(2, 15, 'unknown', 'b', 'w1').get(3, 60, 70, 'b', 3, null);
    assertOk(checkHistory(h.ops));
    assertIllegal(checkHistory(h.ops, { unknownFates: new Map([[1, 3]]) }), /not above 3|returned nothing/);
  });

  test('a write of unknown outcome the watchers say did not happen cannot explain a read of its value', () => {
    const h = new Builder()
      .put(1, 0, 10, 'a', 'v1', 2)
      .put(2, 15, 'unknown', 'a', 'v2')
      .get(3, 60, 70, 'a', 3, kv('v2', 2, 2, 3));
    assertOk(checkHistory(h.ops));
    assertIllegal(checkHistory(h.ops, { unknownFates: new Map([[1, 'not applied']]) }), /returned "v2"/);
  });

  test('a search over its budget answers unknown rather than a verdict', () => {
    const h = new Builder();
    for (let i = 0; i < 12; i += 1) h.put(i, 0, 'unknown', 'a', `u${i}`);
    h.get(99, 10, 20, 'a', 2, kv('nobody', 1, 2, 2));
    const verdict = checkHistory(h.ops, { statesMax: 50 });
    assert.equal(verdict.result, 'unknown', JSON.stringify(verdict));
  });
});

describe('linearizable histories with concurrency and unknown outcomes pass', () => {
  test('a read overlapping a put may see the value before or after it', () => {
    const before = new Builder().put(1, 0, 10, 'a', 'v1', 2).put(1, 20, 40, 'a', 'v2', 3);
    const after = new Builder().put(1, 0, 10, 'a', 'v1', 2).put(1, 20, 40, 'a', 'v2', 3);
    before.get(2, 25, 30, 'a', 2, kv('v1', 1, 2, 2));
    after.get(2, 25, 30, 'a', 3, kv('v2', 2, 2, 3));
    assertOk(checkHistory(before.ops));
    assertOk(checkHistory(after.ops));
  });

  test('a put of unknown outcome may have happened (a later read sees it) or not (never seen)', () => {
    const seen = new Builder()
      .put(1, 0, 10, 'a', 'v1', 2)
      .put(2, 20, 'unknown', 'a', 'v2')
      .get(3, 100, 110, 'a', 3, kv('v2', 2, 2, 3))
      .put(3, 120, 130, 'a', 'v3', 4);
    const unseen = new Builder()
      .put(1, 0, 10, 'a', 'v1', 2)
      .put(2, 20, 'unknown', 'a', 'v2')
      .get(3, 100, 110, 'a', 2, kv('v1', 1, 2, 2));
    assertOk(checkHistory(seen.ops));
    assertOk(checkHistory(unseen.ops));
    assertOk(checkHistory(seen.ops, { partition: 'never' }));
  });

  test('an unknown put on another key fills the revision a later write skips, with exact revisions', () => {
    const h = new Builder()
      .put(1, 0, 10, 'a', 'v1', 2)
      .put(2, 15, 'unknown', 'b', 'w1')
      .put(1, 20, 30, 'a', 'v2', 4)
      .get(3, 40, 50, 'b', 4, kv('w1', 1, 3, 3));
    assertOk(checkHistory(h.ops, { partition: 'never' }));
  });

  test('two concurrent CAS on one version: one succeeds and the other fails and reads the winner', () => {
    const h = new Builder()
      .put(1, 0, 10, 'a', 'v1', 2)
      .cas(2, 20, 40, 'a', 1, 'x', { succeeded: true, revision: 3 })
      .add(
        3,
        21,
        41,
        {
          type: 'txn',
          compares: [{ key: 'a', target: 'version', result: 'equal', operand: 1 }],
          success: [{ type: 'put', key: 'a', value: 'y' }],
          failure: [{ type: 'get', key: 'a' }],
        },
        { type: 'txn', revision: 3, succeeded: false, results: [{ type: 'get', kv: kv('x', 2, 2, 3) }] },
      )
      .cas(4, 22, 'unknown', 'a', 2, 'z')
      .get(1, 100, 110, 'a', 4, kv('z', 3, 2, 4));
    assertOk(checkHistory(h.ops));
    assertOk(checkHistory(h.ops, { partition: 'never' }));
  });

  test('atomic two-key txns with concurrent readers and an unknown txn that happened', () => {
    const h = new Builder();
    h.add(1, 0, 10, ...putBoth('a1', 'b1', 2));
    h.add(2, 20, 'unknown', ...putBoth('a2', 'b2', 0));
    h.add(3, 25, 35, ...readBoth(2, kv('a1', 1, 2, 2), kv('b1', 1, 2, 2)));
    h.add(4, 30, 60, ...readBoth(3, kv('a2', 2, 2, 3), kv('b2', 2, 2, 3)));
    h.add(1, 70, 80, ...putBoth('a3', 'b3', 4));
    assertOk(checkHistory(h.ops));
  });

  test('deletes and re-creates: version restarts at 1 and create revision moves', () => {
    const h = new Builder()
      .put(1, 0, 10, 'a', 'v1', 2)
      .add(1, 20, 30, { type: 'delete', key: 'a' }, { type: 'delete', revision: 3, deleted: 1 })
      .add(2, 35, 45, { type: 'delete', key: 'a' }, { type: 'delete', revision: 3, deleted: 0 })
      .put(1, 50, 60, 'a', 'v2', 4)
      .get(2, 70, 80, 'a', 4, kv('v2', 1, 4, 4));
    assertOk(checkHistory(h.ops));
    assertOk(checkHistory(h.ops, { partition: 'never' }));
  });

  test('a few thousand concurrent operations over a few keys check in well under the budget', () => {
    const h = new Builder();
    const clients = 8;
    const values = new Map<string, { value: string; version: number; create: number; mod: number }>();
    let revision = 1;
    // A sequential run of a store, made to overlap: each client's op spans its neighbours'.
    for (let i = 0; i < 3_000; i += 1) {
      const key = `k${i % 5}`;
      const client = i % clients;
      const at = i * 10;
      const current = values.get(key);
      if (i % 3 === 0) {
        h.get(
          client,
          at - 15,
          at + 15,
          key,
          revision,
          current === undefined ? null : kv(current.value, current.version, current.create, current.mod),
        );
      } else if (i % 97 === 0) {
        h.put(client, at - 15, 'unknown', key, `lost-${i}`);
      } else {
        revision += 1;
        values.set(key, {
          value: `v${i}`,
          version: (current?.version ?? 0) + 1,
          create: current?.create ?? revision,
          mod: revision,
        });
        h.put(client, at - 15, at + 15, key, `v${i}`, revision);
      }
    }
    assertOk(checkHistory(h.ops));
    assertOk(checkHistory(h.ops, { partition: 'never' }));
  });
});
