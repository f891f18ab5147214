/**
 * Watch guarantees against a member process, checked against what the writers themselves saw:
 * concurrent writers (puts, two-key transactions, prefix deletes), watchers from revision 1, live
 * watchers, a watcher cancelled midway and resumed from the next revision, and a compaction
 * midway. Every watcher must get every revision in its range exactly once, in order, each
 * revision's events whole in one response and equal to what was written. Real etcd runs alongside.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import type { WireMessage } from '../../src/api/proto-wire.js';
import { RawWatch, waitUntil } from '../watch/clients.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const writers = 4;
const opsPerWriter = 40;
/** Every wait for watchers to catch up gives up after this long. */
const catchUpWaitMsMax = 15_000;
const prefix = 'g/';

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined
    ? { label: 'tsetcd', skip: sut.skipReason }
    : { label: sut.command.label, command: sut.command },
];

/** One event in a comparable form: "PUT key=value" or "DELETE key". */
type EventText = string;

/** What the writers saw: the events of every revision they created. */
class Truth {
  readonly byRevision = new Map<number, EventText[]>();

  record(revision: number, events: EventText[]): void {
    assert.ok(!this.byRevision.has(revision), `two writes claim revision ${revision}`);
    this.byRevision.set(revision, events);
  }

  /** Revisions first..last; the writers' revisions must be contiguous from 2. */
  range(first: number, last: number): number[] {
    return Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => first + i);
  }

  get lastRevision(): number {
    return Math.max(...this.byRevision.keys());
  }
}

const key = (text: string): Buffer => Buffer.from(text);

/** Writes whose response header named another revision than the one the write made. */
interface HeaderMismatch {
  readonly op: string;
  readonly written: number;
  readonly header: number;
}

type RequestOp = Record<string, unknown>;

/**
 * Runs `ops` in one transaction followed by a read of `probe`, whose mod revision is the
 * revision this transaction made; that does not rely on the response header, which is checked
 * separately.
 */
async function transact(
  client: Etcd3,
  ops: RequestOp[],
  probe: string,
  mismatches: HeaderMismatch[],
): Promise<{ revision: number; responses: any[] }> {
  const response = await client.kv.txn({
    compare: [],
    success: [...ops, { request_range: { key: key(probe) } }],
    failure: [],
  });
  const probed = response.responses[ops.length]?.response_range?.kvs[0];
  assert.ok(probed !== undefined, `expected ${probe} to exist after writing it`);
  const revision = Number(probed.mod_revision);
  const header = Number(response.header.revision);
  if (header !== revision) mismatches.push({ op: `txn ending with ${probe}`, written: revision, header });
  return { revision, responses: response.responses };
}

/** One writer's bounded sequence of puts, two-key transactions and prefix deletes (with a marker put). */
async function write(
  client: Etcd3,
  writer: number,
  truth: Truth,
  progress: { ops: number },
  mismatches: HeaderMismatch[],
): Promise<void> {
  const own = `${prefix}w${writer}/`;
  for (let i = 0; i < opsPerWriter; i += 1) {
    if (i % 10 === 9) {
      const [k1, k2, value] = [`${own}t1`, `${own}t2`, `tx${i}`];
      const done = await transact(
        client,
        [{ request_put: { key: key(k1), value: key(value) } }, { request_put: { key: key(k2), value: key(value) } }],
        k2,
        mismatches,
      );
      truth.record(done.revision, [`PUT ${k1}=${value}`, `PUT ${k2}=${value}`]);
    } else if (i % 10 === 4) {
      const marker = `${own}m`;
      const ops = [
        { request_delete_range: { key: key(`${own}k`), range_end: key(`${own}l`), prev_kv: true } },
        { request_put: { key: key(marker), value: key(`d${i}`) } },
      ];
      const done = await transact(client, ops, marker, mismatches);
      const deleted = (done.responses[0].response_delete_range.prev_kvs as Array<{ key: Buffer }>).map(
        (kv) => `DELETE ${kv.key.toString()}`,
      );
      truth.record(done.revision, [...deleted, `PUT ${marker}=d${i}`]);
    } else {
      const [k, value] = [`${own}k${i % 3}`, `v${writer}-${i}`];
      const done = await transact(client, [{ request_put: { key: key(k), value: key(value) } }], k, mismatches);
      truth.record(done.revision, [`PUT ${k}=${value}`]);
    }
    progress.ops += 1;
  }
}

/** The events of one watch id, response by response, as revision -> events. */
function responsesOf(stream: RawWatch, watchId: string): Array<Map<number, EventText[]>> {
  return stream.responses
    .filter((r) => r.watchId === watchId && Array.isArray(r.events) && (r.events as unknown[]).length > 0)
    .map((response) => {
      const byRevision = new Map<number, EventText[]>();
      for (const event of response.events as Array<{
        type: number;
        kv: { key: Buffer; value: Buffer; modRevision: string };
      }>) {
        const revision = Number(event.kv.modRevision);
        const text =
          event.type === 0
            ? `PUT ${event.kv.key.toString()}=${event.kv.value.toString()}`
            : `DELETE ${event.kv.key.toString()}`;
        byRevision.set(revision, [...(byRevision.get(revision) ?? []), text]);
      }
      return byRevision;
    });
}

/** Checks one watcher's responses against the truth over revisions [first, last]. */
function checkWatcher(
  name: string,
  responses: Array<Map<number, EventText[]>>,
  truth: Truth,
  first: number,
  last: number,
): void {
  const seen: number[] = [];
  for (const response of responses) for (const revision of response.keys()) seen.push(revision);
  const duplicates = seen.filter((revision, index) => seen.indexOf(revision) !== index);
  assert.deepEqual(duplicates, [], `${name}: revisions delivered twice or split across responses`);
  assert.deepEqual(
    seen,
    [...seen].sort((a, b) => a - b),
    `${name}: revisions out of order`,
  );
  assert.deepEqual(seen, truth.range(first, last), `${name}: expected revisions ${first}..${last} exactly`);
  for (const response of responses) {
    for (const [revision, events] of response)
      assert.deepEqual(events, truth.byRevision.get(revision), `${name}: events of revision ${revision}`);
  }
}

function createdId(stream: RawWatch, index: number): string {
  const created = stream.responses.filter((r) => r.created === true)[index];
  assert.ok(created !== undefined, `expected created response #${index}`);
  return created.watchId as string;
}

function headerRevision(response: WireMessage | undefined): number {
  return Number((response?.header as { revision?: string } | undefined)?.revision ?? 0);
}

// etcd's member and tsetcd's run side by side on their own ports: neither needs the other.
describe('watch and lease guarantees on etcd and on tsetcd, side by side', { concurrency: true }, () => {
  for (const target of targets) {
    test(
      `watchers get every revision once, in order and whole, across a compaction and a resume, against ${target.label}`,
      target.skip === undefined ? {} : { skip: target.skip },
      async () => {
        const member = await Member.start({ command: target.command as MemberCommand });
        const endpoint = member.clientUrl.replace(/^http:\/\//, '');
        const client = new Etcd3({ hosts: member.clientUrl });
        const streams = [new RawWatch(endpoint), new RawWatch(endpoint), new RawWatch(endpoint)] as const;
        const [one, two, three] = streams;
        try {
          const range = { key: key(prefix), rangeEnd: key('g0') };
          one.create({ ...range, startRevision: '1' }); // A: history from revision 1
          one.create({ ...range }); // C: live
          two.create({ ...range, startRevision: '1', prevKv: true }); // B: from 1, with previous values
          three.create({ ...range, startRevision: '1' }); // E: will be cancelled and resumed
          await waitUntil(
            () =>
              one.responses.filter((r) => r.created === true).length === 2 &&
              two.responses.length > 0 &&
              three.responses.length > 0,
            'watchers to be created',
          );
          const [idA, idC, idB, idE] = [createdId(one, 0), createdId(one, 1), createdId(two, 0), createdId(three, 0)];
          const liveFrom = headerRevision(one.responses.find((r) => r.created === true && r.watchId === idC)) + 1;

          const truth = new Truth();
          const progress = { ops: 0 };
          const mismatches: HeaderMismatch[] = [];
          const writing = Promise.all(
            Array.from({ length: writers }, (_, w) => write(client, w, truth, progress, mismatches)),
          );
          const total = writers * opsPerWriter;

          // A quarter in: cancel E, note the last revision it got, and resume it from the next one.
          await waitUntil(() => progress.ops >= total / 4, 'a quarter of the writes', catchUpWaitMsMax);
          three.cancel(Number(idE));
          await waitUntil(
            () => three.responses.some((r) => r.canceled === true && r.watchId === idE),
            'E to be cancelled',
          );
          const beforeCancel = responsesOf(three, idE);
          const resumeFrom = Math.max(1, ...beforeCancel.flatMap((r) => [...r.keys()])) + 1;
          three.create({ ...range, startRevision: String(resumeFrom) });
          await waitUntil(() => three.responses.filter((r) => r.created === true).length === 2, 'E to be resumed');
          const idResumed = createdId(three, 1);

          // Halfway: a live watcher joins, then the store is compacted at the current revision.
          await waitUntil(() => progress.ops >= total / 2, 'half of the writes', catchUpWaitMsMax);
          two.create({ ...range });
          await waitUntil(() => two.responses.filter((r) => r.created === true).length === 2, 'D to be created');
          const idD = createdId(two, 1);
          const dFrom = headerRevision(two.responses.find((r) => r.created === true && r.watchId === idD)) + 1;
          // Compacting past a watcher still replaying history would rightly cancel it, so the history
          // watchers catch up to D's start first; the compaction then only hides revisions they have.
          const reached = (stream: RawWatch, id: string): number =>
            Math.max(0, ...responsesOf(stream, id).flatMap((r) => [...r.keys()]));
          await waitUntil(
            () => Math.min(reached(one, idA), reached(two, idB), reached(three, idResumed)) >= dFrom - 1,
            'history watchers to catch up before the compaction',
            catchUpWaitMsMax,
          );
          const compactedAt = truth.lastRevision;
          const compacted = await client.kv.compact({ revision: String(compactedAt) });
          assert.ok(Number(compacted.header.revision) >= compactedAt);

          await writing;
          const last = truth.lastRevision;
          assert.deepEqual(
            [...truth.byRevision.keys()].sort((a, b) => a - b),
            truth.range(2, last),
            "the writers' revisions are contiguous from 2",
          );
          // After the compaction, a watcher from revision 1 is refused with the compaction revision.
          three.create({ ...range, startRevision: '1' });
          const caughtUp = (stream: RawWatch, id: string): boolean => reached(stream, id) >= last;
          await waitUntil(
            () =>
              caughtUp(one, idA) &&
              caughtUp(one, idC) &&
              caughtUp(two, idB) &&
              caughtUp(two, idD) &&
              caughtUp(three, idResumed),
            'every watcher to reach the last revision',
            catchUpWaitMsMax,
          );
          await waitUntil(
            () => three.responses.filter((r) => r.created === true).length === 3,
            'the late watcher to be answered',
          );
          // Anything delivered twice would arrive right behind the last revision; give it a moment.
          await sleep(200);

          checkWatcher('A (from 1)', responsesOf(one, idA), truth, 2, last);
          checkWatcher('B (from 1, prev kv)', responsesOf(two, idB), truth, 2, last);
          checkWatcher('C (live)', responsesOf(one, idC), truth, liveFrom, last);
          checkWatcher('D (live from midway)', responsesOf(two, idD), truth, dFrom, last);
          checkWatcher(
            'E (cancelled then resumed)',
            [...beforeCancel, ...responsesOf(three, idResumed)],
            truth,
            2,
            last,
          );
          checkPreviousValues(two, idB, truth);

          const late = three.responses.filter((r) => r.created === true)[2] as WireMessage;
          const lateCancel =
            late.canceled === true
              ? late
              : three.responses.find((r) => r.watchId === late.watchId && r.canceled === true);
          assert.ok(lateCancel !== undefined, 'a watch from a compacted revision must be cancelled');
          assert.equal(lateCancel.compactRevision, String(compactedAt));
          // etcd answers each write with the revision that write made, which clients (locks, STM) rely on.
          assert.deepEqual(
            mismatches.slice(0, 5),
            [],
            `${mismatches.length} write responses named another revision in their header`,
          );
        } finally {
          for (const stream of streams) stream.close();
          client.close();
          await member.destroy();
        }
      },
    );
  }
});

/** B asked for previous values: each PUT's prev_kv is the key's value before that revision. */
function checkPreviousValues(stream: RawWatch, watchId: string, truth: Truth): void {
  const current = new Map<string, string>();
  const expected: string[] = [];
  for (const revision of [...truth.byRevision.keys()].sort((a, b) => a - b)) {
    for (const event of truth.byRevision.get(revision) ?? []) {
      const [verb, rest = ''] = event.split(' ');
      const [k = '', value = ''] = rest.split('=');
      expected.push(`${k}@${revision} prev=${current.get(k) ?? '-'}`);
      if (verb === 'PUT') current.set(k, value);
      else current.delete(k);
    }
  }
  const seen = stream.responses
    .filter((r) => r.watchId === watchId)
    .flatMap((r) => r.events as Array<{ kv: { key: Buffer; modRevision: string }; prevKv: { value: Buffer } | null }>)
    .map(
      (e) => `${e.kv.key.toString()}@${e.kv.modRevision} prev=${e.prevKv === null ? '-' : e.prevKv.value.toString()}`,
    );
  assert.deepEqual(seen, expected, 'B: previous values');
}
