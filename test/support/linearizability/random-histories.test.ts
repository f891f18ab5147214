/**
 * The checker against histories of a simulated store written independently of its model: clients
 * issue random gets, puts, deletes, CAS and two-key txns; each takes effect at a random point
 * between its call and its return, in that order on a plain map with a revision counter; some
 * responses are lost (the write happened or not, the client cannot tell). Every such history is
 * linearizable and must pass; the same history with one read made stale must not.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../../src/lib/prng.js';
import { checkHistory, type Operation } from './checker.js';
import type { Compare, KeyValueSeen, KvInput, KvOutput, TxnOpResult, TxnRequestOp } from './kv-model.js';

const seedsCount = 40;
const clientsCount = 5;
const opsPerClient = 60;
const keys = ['a', 'b', 'c'];

interface Stored {
  value: string;
  version: number;
  create: number;
  mod: number;
}

/** A plain store: etcd's rules for revisions, versions and compares, without the model's code. */
class SimpleStore {
  revision = 1;
  readonly data = new Map<string, Stored>();

  apply(input: KvInput): KvOutput {
    if (input.type !== 'txn') {
      const [result, wrote] = this.run([input]);
      if (wrote) this.revision += 1;
      const one = result[0] as TxnOpResult;
      if (one.type === 'get') return { type: 'get', revision: this.revision, kv: one.kv };
      if (one.type === 'delete') return { type: 'delete', revision: this.revision, deleted: one.deleted };
      return { type: 'put', revision: this.revision };
    }
    const succeeded = input.compares.every((c) => this.holds(c));
    const [results, wrote] = this.run(succeeded ? input.success : input.failure);
    if (wrote) this.revision += 1;
    return { type: 'txn', revision: this.revision, succeeded, results };
  }

  private run(ops: readonly TxnRequestOp[]): [TxnOpResult[], boolean] {
    const at = this.revision + 1;
    let wrote = false;
    const results = ops.map((op): TxnOpResult => {
      const current = this.data.get(op.key);
      if (op.type === 'get') return { type: 'get', kv: current === undefined ? null : seenOf(current) };
      if (op.type === 'delete') {
        if (current !== undefined) wrote = true;
        this.data.delete(op.key);
        return { type: 'delete', deleted: current === undefined ? 0 : 1 };
      }
      wrote = true;
      this.data.set(op.key, {
        value: op.value,
        version: (current?.version ?? 0) + 1,
        create: current?.create ?? at,
        mod: at,
      });
      return { type: 'put' };
    });
    return [results, wrote];
  }

  private holds(compare: Compare): boolean {
    const current = this.data.get(compare.key);
    if (compare.target === 'value' && current === undefined) return false;
    const actual =
      compare.target === 'value'
        ? (current as Stored).value
        : compare.target === 'version'
          ? (current?.version ?? 0)
          : compare.target === 'create'
            ? (current?.create ?? 0)
            : (current?.mod ?? 0);
    const operand = compare.target === 'value' ? String(compare.operand) : Number(compare.operand);
    if (compare.result === 'equal') return actual === operand;
    if (compare.result === 'not-equal') return actual !== operand;
    if (compare.result === 'less') return actual < operand;
    return actual > operand;
  }
}

function seenOf(stored: Stored): KeyValueSeen {
  return { value: stored.value, version: stored.version, createRevision: stored.create, modRevision: stored.mod };
}

function randomInput(prng: Prng, value: string): KvInput {
  const key = prng.pick(keys);
  const other = prng.pick(keys.filter((k) => k !== key));
  const draw = prng.nextInt(6);
  if (draw === 0) return { type: 'get', key };
  if (draw === 1) return { type: 'put', key, value };
  if (draw === 2) return { type: 'delete', key };
  if (draw === 3 || draw === 4) {
    const target = prng.pick(['version', 'mod', 'create', 'value'] as const);
    const operand = target === 'value' ? `v${prng.nextInt(5)}` : prng.nextInt(4);
    return {
      type: 'txn',
      compares: [{ key, target, result: prng.pick(['equal', 'not-equal', 'less', 'greater'] as const), operand }],
      success: [{ type: 'put', key, value }],
      failure: [{ type: 'get', key }],
    };
  }
  return {
    type: 'txn',
    compares: [],
    success: prng.chance(0.5)
      ? [
          { type: 'put', key, value },
          { type: 'put', key: other, value: `${value}b` },
        ]
      : [
          { type: 'get', key },
          { type: 'get', key: other },
        ],
    failure: [],
  };
}

/** A linearizable history of `seed`: each op takes effect at a random instant inside its span. */
function simulate(seed: number): Operation[] {
  const prng = new Prng(seed);
  const planned: Array<{ op: Omit<Operation, 'output'>; pointMs: number; lost: 'no' | 'applied' | 'dropped' }> = [];
  for (let client = 0; client < clientsCount; client += 1) {
    let atMs = prng.nextInt(20);
    for (let n = 0; n < opsPerClient; n += 1) {
      const callMs = atMs;
      const pointMs = callMs + 1 + prng.nextInt(30);
      const returnMs = pointMs + 1 + prng.nextInt(30);
      const lost = prng.chance(0.06) ? (prng.chance(0.5) ? 'applied' : 'dropped') : 'no';
      const input = randomInput(prng, `c${client}.${n}`);
      planned.push({ op: { id: planned.length, client, input, callMs, returnMs }, pointMs, lost });
      atMs = returnMs + prng.nextInt(10);
    }
  }
  const store = new SimpleStore();
  const outputs = new Map<number, KvOutput | undefined>();
  for (const p of [...planned].sort((x, y) => x.pointMs - y.pointMs || x.op.id - y.op.id)) {
    if (p.lost === 'dropped') continue;
    const output = store.apply(p.op.input);
    outputs.set(p.op.id, p.lost === 'no' ? output : undefined);
  }
  return planned.map(({ op, lost }) =>
    lost === 'no'
      ? { ...op, output: outputs.get(op.id) }
      : { ...op, output: undefined, returnMs: Infinity, error: 'response lost' },
  );
}

/** The history with the last read that saw a value changed by a later write made to return the older value. */
function withStaleRead(ops: readonly Operation[]): Operation[] | undefined {
  const reads = ops.filter((op) => op.input.type === 'get' && op.output?.type === 'get' && op.output.kv !== null);
  for (const read of reads.reverse()) {
    const key = (read.input as { key: string }).key;
    const earlier = ops.find(
      (op) =>
        op.input.type === 'get' &&
        (op.input as { key: string }).key === key &&
        op.output?.type === 'get' &&
        op.returnMs < read.callMs &&
        op.output.kv !== null &&
        read.output?.type === 'get' &&
        read.output.kv !== null &&
        op.output.kv.version < read.output.kv.version,
    );
    if (earlier === undefined || earlier.output?.type !== 'get' || read.output?.type !== 'get') continue;
    const stale: KvOutput = { type: 'get', revision: read.output.revision, kv: earlier.output.kv };
    return ops.map((op) => (op.id === read.id ? { ...op, output: stale } : op));
  }
  return undefined;
}

describe('histories of a simulated linearizable store', () => {
  test(`${seedsCount} seeds of ${clientsCount} clients with lost responses all pass, key by key and whole`, () => {
    for (let seed = 1; seed <= seedsCount; seed += 1) {
      const ops = simulate(seed);
      for (const partition of ['auto', 'never'] as const) {
        const verdict = checkHistory(ops, { partition });
        assert.equal(
          verdict.result,
          'ok',
          `seed ${seed} (${partition}): ${verdict.result === 'illegal' ? verdict.explanation.text : JSON.stringify(verdict)}`,
        );
      }
    }
  });

  test('the same histories with one read made stale are refused', () => {
    let refused = 0;
    for (let seed = 1; seed <= seedsCount; seed += 1) {
      const stale = withStaleRead(simulate(seed));
      if (stale === undefined) continue;
      const verdict = checkHistory(stale);
      assert.equal(verdict.result, 'illegal', `seed ${seed}: ${JSON.stringify(verdict)}`);
      refused += 1;
    }
    assert.ok(refused >= seedsCount / 2, `expected most seeds to have a read to make stale, ${refused} had`);
  });
});
