/**
 * The watch guarantees under random load, against a model: interleaved writes, catch-up passes,
 * consumers that stall, cancels with resumption and compactions. For every watcher, what it
 * received (plus what its resumed successors received) must be exactly the model's events for
 * its range from its start revision: no gap, no duplicate, in order, whole revisions per
 * response; a compaction may cut it short only when it really was behind the compaction.
 * One etcd rule shows here: a watcher may start at the compaction revision itself (clientv3 tells
 * clients to resume there), and compaction has already removed the tombstones of that revision,
 * so deletes at exactly a compaction revision may be absent, as in etcd. That excuses only a
 * watcher that had been handed nothing from that revision on when the compaction ran (it may read
 * the revision from history afterwards), and then all of that revision's deletes are absent together.
 * Likewise a prev_kv may be missing only when the revision before the event was already compacted
 * when the response was made; every other event on a key that had a value carries it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prng } from '../../src/lib/prng.js';
import { spanContains } from '../../src/watch/watcher-group.js';
import { WatchFilter, type Watcher } from '../../src/watch/watchable-store.js';
import { op, putReq, deleteReq, txnReq } from '../mvcc/helpers.js';
import { type HistoryEvent, Recorder, WatchHarness, bytes, text } from './helpers.js';

const keys = ['a', 'b', 'p/1', 'p/2', 'p/3', 'q'];
const spans: Array<[string, string]> = [
  ['a', ''],
  ['p/', 'p0'],
  ['p/2', '\0'],
  ['', '\0'],
  ['b', 'q'],
];
const seeds = 12;
const stepsPerSeed = 400;

/** One client-level watch: a chain of watchers, each resuming where the previous was canceled. */
interface Subscription {
  span: [string, string];
  startRevision: number;
  filters: WatchFilter[];
  prevKv: boolean;
  recorder: Recorder;
  watcher: Watcher;
  /** Responses of earlier links of the chain. */
  earlier: Recorder[];
}

function received(sub: Subscription): Recorder['responses'] {
  return [...sub.earlier, sub.recorder].flatMap((recorder) => recorder.responses);
}

type Response = Recorder['responses'][number];

/** The store's compaction revision when `response` was first offered to the subscription. */
function compactedWhenOffered(sub: Subscription, response: Response): number {
  for (const recorder of [...sub.earlier, sub.recorder]) {
    const at = recorder.firstOfferedAt.get(response);
    if (at !== undefined) return at;
  }
  throw new Error('a response the subscription took was never offered to it');
}

/**
 * True when the deletes at compaction revision `revision` may be missing for this subscription:
 * nothing it was offered before that compaction held an event from `revision` on, so it may have
 * read `revision` from history after compaction removed the revision's tombstones.
 */
function deletesMayBeCompacted(sub: Subscription, responses: readonly Response[], revision: number): boolean {
  return (
    compactions.has(revision) &&
    responses.every(
      (response) =>
        compactedWhenOffered(sub, response) >= revision ||
        response.events.every((event) => event.kv.modRevision < revision),
    )
  );
}

function expectedEvents(h: WatchHarness, sub: Subscription): HistoryEvent[] {
  const [key, end] = sub.span;
  const span = { key: key === '' ? '\0' : key, end: end === '' ? undefined : end === '\0' ? '' : end };
  return h.history.filter(
    (event) =>
      event.revision >= sub.startRevision &&
      spanContains(span, event.key) &&
      !(sub.filters.includes(WatchFilter.noPut) && event.type === 'put') &&
      !(sub.filters.includes(WatchFilter.noDelete) && event.type === 'delete'),
  );
}

function subscribe(h: WatchHarness, prng: Prng): Subscription {
  const span = prng.pick(spans);
  const current = h.store.currentRevision;
  const startRevision = prng.chance(0.4) ? current + 1 : 1 + prng.nextInt(current + 1);
  const filters = prng.chance(0.2) ? [prng.pick([WatchFilter.noPut, WatchFilter.noDelete])] : [];
  const recorder = new Recorder(() => h.store.compactRevision);
  const prevKv = prng.chance(0.3);
  const watcher = h.watchable.watch(
    {
      watchId: 0,
      key: bytes(span[0]),
      rangeEnd: bytes(span[1]),
      startRevision: startRevision > current ? 0 : startRevision,
      filters,
      prevKv,
    },
    recorder.sink,
  );
  return { span, startRevision, filters, prevKv, recorder, watcher, earlier: [] };
}

/** A client's resume: cancel, then watch again from the revision after the last event it saw. */
function resume(h: WatchHarness, sub: Subscription): void {
  h.watchable.cancel(sub.watcher);
  const last = received(sub)
    .flatMap((response) => response.events)
    .at(-1);
  const from = last === undefined ? sub.startRevision : last.kv.modRevision + 1;
  sub.earlier.push(sub.recorder);
  sub.recorder = new Recorder(() => h.store.compactRevision);
  sub.watcher = h.watchable.watch(
    {
      watchId: 0,
      key: bytes(sub.span[0]),
      rangeEnd: bytes(sub.span[1]),
      startRevision: from,
      filters: sub.filters,
      prevKv: sub.prevKv,
    },
    sub.recorder.sink,
  );
}

/** Revisions compacted at in the current run. */
const compactions = new Set<number>();

function write(h: WatchHarness, prng: Prng): void {
  const roll = prng.nextInt(10);
  if (roll < 5) h.put(prng.pick(keys), `v${prng.nextUint32() % 1000}`);
  else if (roll < 7) h.del(prng.pick(keys));
  else if (roll < 9) {
    const chosen = [...new Set([prng.pick(keys), prng.pick(keys), prng.pick(keys)])];
    h.txn(
      txnReq(
        [],
        chosen.map((key) => (prng.chance(0.7) ? op.put(putReq(key, `t${prng.nextInt(100)}`)) : op.del(deleteReq(key)))),
      ),
    );
  } else if (h.store.currentRevision > h.store.compactRevision + 1) {
    const low = Math.max(h.store.compactRevision + 1, 1);
    const revision = low + prng.nextInt(h.store.currentRevision - low + 1);
    h.compact(revision);
    compactions.add(revision);
  }
}

function step(h: WatchHarness, prng: Prng, subs: Subscription[]): void {
  const roll = prng.nextInt(20);
  if (roll < 9) write(h, prng);
  else if (roll < 11) subs.push(subscribe(h, prng));
  else if (roll < 13 && subs.length > 0) {
    const sub = prng.pick(subs);
    sub.recorder.full = !sub.recorder.full;
  } else if (roll < 14 && subs.length > 0) {
    const sub = prng.pick(subs);
    if (sub.watcher.state !== 'compacted') resume(h, sub);
  } else if (roll < 17) h.watchable.syncUnsynced(1 + prng.nextInt(6));
  else h.watchable.retryVictims();
}

function check(h: WatchHarness, sub: Subscription, seed: number): void {
  const responses = received(sub);
  const got = responses.flatMap((response) => response.events);
  const deliveredDeletes = new Set(got.filter((event) => event.type === 'delete').map((event) => event.kv.modRevision));
  // A compaction revision's deletes are left out only when they may be gone and none of them came.
  const expected = expectedEvents(h, sub).filter(
    (event) =>
      !(
        event.type === 'delete' &&
        !deliveredDeletes.has(event.revision) &&
        deletesMayBeCompacted(sub, responses, event.revision)
      ),
  );
  const label = `seed ${seed}, span ${JSON.stringify(sub.span)} from ${sub.startRevision}`;
  const compacted = responses.find((response) => response.compactRevision !== 0);
  const shown = got.map(
    (event) => `${event.type} ${text(event.kv.key)}=${text(event.kv.value)}@${event.kv.modRevision}`,
  );
  const want = expected.map(
    (event) => `${event.type} ${event.key}=${event.type === 'put' ? event.value : ''}@${event.revision}`,
  );
  if (compacted === undefined) {
    assert.deepEqual(shown, want, label);
  } else {
    assert.deepEqual(shown, want.slice(0, shown.length), `${label}: events before the compaction notice`);
    const next = got.length === 0 ? sub.startRevision : got.at(-1)!.kv.modRevision + 1;
    assert.ok(
      next < compacted.compactRevision,
      `${label}: canceled at ${compacted.compactRevision} while needing ${next}`,
    );
    assert.equal(compacted, responses.at(-1), `${label}: nothing follows the compaction notice`);
  }
  for (let i = 1; i < responses.length; i++) {
    const before = responses[i - 1]!.events.at(-1);
    const after = responses[i]!.events[0];
    if (before !== undefined && after !== undefined)
      assert.ok(before.kv.modRevision < after.kv.modRevision, `${label}: a revision split across responses`);
  }
  if (sub.prevKv) checkPrevious(h, sub, responses, label);
}

/**
 * A previous value is the key's value just before the event, and it is there whenever the key had
 * one, unless the revision before the event was compacted when the response was made.
 */
function checkPrevious(h: WatchHarness, sub: Subscription, responses: readonly Response[], label: string): void {
  for (const response of responses) {
    for (const event of response.events) {
      const key = text(event.kv.key);
      const revision = event.kv.modRevision;
      const before = h.history.filter((item) => item.key === key && item.revision < revision).at(-1);
      if (event.prevKv !== undefined) {
        assert.equal(before?.type, 'put', `${label}: prev_kv for ${key}@${revision}, a key that was absent`);
        assert.equal(text(event.prevKv.value), before.value, `${label}: prev_kv value of ${key}@${revision}`);
      } else if (before?.type === 'put') {
        const compacted = compactedWhenOffered(sub, response);
        assert.ok(
          revision <= compacted,
          `${label}: ${event.type} ${key}@${revision} came without prev_kv although the key had a value and revision ${revision - 1} was not compacted (compaction at ${compacted})`,
        );
      }
    }
  }
}

test('random writes, stalls, resumes and compactions never make a watcher miss, repeat or reorder an event', () => {
  for (let seed = 1; seed <= seeds; seed++) {
    const prng = new Prng(seed);
    compactions.clear();
    const h = new WatchHarness();
    const subs: Subscription[] = [];
    for (let i = 0; i < stepsPerSeed; i++) step(h, prng, subs);
    for (const sub of subs) sub.recorder.full = false;
    h.settle(7);
    assert.equal(h.watchable.hasPendingWork, false, `seed ${seed}: work left after settling`);
    for (const sub of subs) check(h, sub, seed);
  }
});
