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
  const body: ProposalBody = {
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
  return { term: 2, index, type: EntryType.normal, data: encodeProposal({ origin, id, body }) };
}

function empty(index: number): Entry {
  return { term: 2, index, type: EntryType.normal, data: new Uint8Array(0) };
}

function applierWith(appliedIndex = 0) {
  const store = new FakeStore();
  store.consistentIndex = appliedIndex;
  const proposals = new ProposalWaiters<Applied>();
  const confChanges: number[] = [];
  const parts = {
    memberId: self,
    keySpace: {
      store,
      lessor: { isPrimary: false, promote: () => undefined, demote: () => undefined },
      auth: new AuthStore(),
    },
    proposals,
    membership: {
      applyConfChange: (entry: Entry) => confChanges.push(entry.index),
      applyMemberAttributes: () => undefined,
    },
    raft: { status: () => ({ role: RaftRole.follower, term: 2 }) },
    promoteExtendMs: 0,
  } as unknown as ApplierParts;
  return { applier: new Applier(parts, appliedIndex), store, proposals, confChanges };
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
