/** The applier: entries in index order, snapshots forward only, each proposal answered by its own entry. */
import { AuthStore } from '../../src/auth/auth-store.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Applier, type Applied, type ApplierParts } from '../../actors/member/apply.js';
import { errors, EtcdError } from '../../src/api/errors.js';
import { encodeProposal } from '../../src/api/proposal-codec.js';
import type { ProposalBody } from '../../src/api/types.js';
import { ProposalWaiters } from '../../src/server/proposal-waiters.js';
import { type Entry, EntryType, RaftRole } from '../../src/raft/types.js';
import { AlarmAction, AlarmStore, AlarmType } from '../../src/alarm/alarm-store.js';
import { MemoryBackend } from '../../src/mvcc/backend.js';

const self = 1n;
const peer = 2n;

/** The few store calls the applier makes; a put of key "refused" fails as etcd refuses a request. */
class FakeStore {
  consistentIndex = 0;
  currentRevision = 1;
  recordApplied(index: number): void {
    this.consistentIndex = index;
  }
  apply(index: number, _term: number, body: ProposalBody) {
    this.consistentIndex = index;
    if (body.type === 'put' && new TextDecoder().decode(body.put.key) === 'refused') throw errors.emptyKey();
    this.currentRevision++;
    return { type: 'put' as const, put: { prevKv: undefined } };
  }
}

function put(origin: bigint, id: number, index: number, key = 'k'): Entry {
  return entryOf(origin, id, index, putBody(key));
}

function putBody(key: string): ProposalBody {
  return {
    type: 'put',
    put: {
      key: Buffer.from(key),
      value: Buffer.from('v'),
      lease: 0n,
      prevKv: false,
      ignoreValue: false,
      ignoreLease: false,
    },
  };
}

function entryOf(origin: bigint, id: number, index: number, body: ProposalBody): Entry {
  return { term: 2, index, type: EntryType.normal, data: encodeProposal({ origin, id, body }) };
}

function alarmEntry(index: number, action: AlarmAction, alarm: AlarmType, id = 900 + index): Entry {
  return entryOf(self, id, index, { type: 'alarm', alarm: { action, memberId: peer, alarm } });
}

function empty(index: number): Entry {
  return { term: 2, index, type: EntryType.normal, data: new Uint8Array(0) };
}

function applierWith(appliedIndex = 0, overQuota = false) {
  const store = new FakeStore();
  const alarms = new AlarmStore();
  const backend = new MemoryBackend();
  const raised: number[] = [];
  const transitions: string[] = [];
  store.consistentIndex = appliedIndex;
  const proposals = new ProposalWaiters<Applied>();
  const confChanges: number[] = [];
  const parts = {
    memberId: self,
    keySpace: {
      store,
      alarms,
      backend,
      lessor: { isPrimary: false, promote: () => undefined, demote: () => undefined },
      auth: new AuthStore(),
    },
    quota: { exceeded: (costBytes: number) => overQuota && costBytes > 0 },
    raiseNoSpace: () => raised.push(store.consistentIndex),
    onAlarmTransition: (change: { transition?: string }) => transitions.push(change.transition ?? ''),
    proposals,
    membership: {
      applyConfChange: (entry: Entry) => confChanges.push(entry.index),
      applyMemberAttributes: () => undefined,
    },
    raft: { status: () => ({ role: RaftRole.follower, term: 2 }) },
    promoteExtendMs: 0,
  } as unknown as ApplierParts;
  return {
    applier: new Applier(parts, appliedIndex),
    store,
    proposals,
    confChanges,
    alarms,
    backend,
    raised,
    transitions,
  };
}

function waitFor(proposals: ProposalWaiters<Applied>): { id: number; outcome: Promise<Applied> } {
  const id = proposals.issueId();
  const outcome = new Promise<Applied>((resolve, reject) => proposals.add(id, new Uint8Array(0), resolve, reject));
  proposals.takeBatch();
  return { id, outcome };
}

test('entries apply one index at a time, and a gap throws naming both indexes', () => {
  const { applier } = applierWith(4);
  applier.applyEntries([empty(5), empty(6)]);
  assert.equal(applier.index, 6);
  assert.throws(() => applier.applyEntries([empty(8)]), /applying entry 8 right after entry 6/);
  assert.throws(() => applier.applyEntries([empty(6)]), /applying entry 6 right after entry 6/);
  assert.equal(applier.index, 6);
});

test('a snapshot moves the applied index forward only; entries then follow it', () => {
  const { applier } = applierWith(10);
  assert.throws(() => applier.jumpTo(10), /a snapshot at index 10 installed over applied index 10/);
  applier.jumpTo(50);
  assert.equal(applier.index, 50);
  applier.applyEntries([empty(51)]);
  assert.equal(applier.index, 51);
});

test("this member's proposal is answered with the revision its own apply left; another member's entry with that ID is not", async () => {
  const { applier, proposals } = applierWith();
  const { id, outcome } = waitFor(proposals);
  applier.applyEntries([put(peer, id, 1)]);
  assert.equal(proposals.size, 1, "a peer's proposal with the same ID leaves this member's waiter alone");
  applier.applyEntries([put(self, id, 2)]);
  assert.equal((await outcome).revision, 3);
  assert.equal(proposals.size, 0);
});

test("a refused proposal rejects its own waiter with etcd's error, and the applied index still moves", async () => {
  const { applier, proposals, store } = applierWith();
  const { id, outcome } = waitFor(proposals);
  applier.applyEntries([put(self, id, 1, 'refused')]);
  await assert.rejects(
    outcome,
    (error: Error) => error instanceof EtcdError && error.message === 'etcdserver: key is not provided',
  );
  assert.equal(applier.index, 1);
  assert.equal(store.consistentIndex, 1);
});

test('conf changes go to the membership, and entries without data only move the index', () => {
  const { applier, store, confChanges } = applierWith();
  applier.applyEntries([{ term: 1, index: 1, type: EntryType.confChange, data: new Uint8Array(0) }, empty(2)]);
  assert.deepEqual(confChanges, [1]);
  assert.equal(store.consistentIndex, 2);
  assert.equal(store.currentRevision, 1);
});

test('an applied alarm is kept in the backend, and while NOSPACE stands puts are refused and deletes pass', async () => {
  const { applier, store, proposals, backend, transitions } = applierWith();
  applier.applyEntries([alarmEntry(1, AlarmAction.activate, AlarmType.noSpace)]);
  const stored: unknown[] = [];
  backend.scanAlarms((member) => stored.push(member));
  assert.deepEqual(stored, [{ memberId: peer, alarm: AlarmType.noSpace }]);
  assert.deepEqual(transitions, ['raised']);
  const refused = waitFor(proposals);
  const deleted = waitFor(proposals);
  const deleteBody: ProposalBody = {
    type: 'deleteRange',
    deleteRange: { key: Buffer.from('k'), rangeEnd: new Uint8Array(0), prevKv: false },
  };
  applier.applyEntries([put(self, refused.id, 2), entryOf(self, deleted.id, 3, deleteBody)]);
  await assert.rejects(refused.outcome, (error: EtcdError) => error.message === errors.noSpace().message);
  await deleted.outcome;
  assert.equal(store.consistentIndex, 3, 'the refused put still moved the applied index');
  const disarmed = waitFor(proposals);
  applier.applyEntries([alarmEntry(4, AlarmAction.deactivate, AlarmType.noSpace, disarmed.id)]);
  assert.deepEqual((await disarmed.outcome).result, {
    type: 'alarm',
    alarm: { alarms: [{ memberId: peer, alarm: AlarmType.noSpace }] },
  });
  assert.deepEqual(transitions, ['raised', 'disarmed']);
  const passed = waitFor(proposals);
  applier.applyEntries([put(self, passed.id, 5)]);
  await passed.outcome;
});

test("while CORRUPT stands every write is refused with etcd's corrupt cluster error", async () => {
  const { applier, proposals } = applierWith();
  applier.applyEntries([alarmEntry(1, AlarmAction.activate, AlarmType.corrupt)]);
  const refused = waitFor(proposals);
  applier.applyEntries([
    entryOf(self, refused.id, 2, { type: 'compaction', compaction: { revision: 1, physical: false } }),
  ]);
  await assert.rejects(refused.outcome, (error: EtcdError) => error.message === errors.corrupt().message);
});

test('a put applied past the quota is applied, answered with database space exceeded, and raises NOSPACE', async () => {
  const { applier, store, proposals, raised } = applierWith(0, true);
  const over = waitFor(proposals);
  applier.applyEntries([put(self, over.id, 1)]);
  await assert.rejects(over.outcome, (error: EtcdError) => error.message === errors.noSpace().message);
  assert.equal(store.currentRevision, 2, 'the put was applied');
  assert.deepEqual(raised, [1]);
});
