import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng, prngNext } from '../../src/lib/prng.js';
import { Inflights, Progress } from '../../src/raft/progress.js';
import { majorityCommittedIndex, majorityVoteResult } from '../../src/raft/quorum.js';
import { RaftLog } from '../../src/raft/log.js';
import { newRaftCore } from '../../src/raft/raft.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import { StorageCompactedError } from '../../src/raft/errors.js';
import { EntryType, noneId } from '../../src/raft/types.js';
import { confStateOf } from './harness.js';

const entry = (term: number, index: number) => ({ term, index, type: EntryType.normal, data: new Uint8Array(0) });

test('the prng is deterministic for a seed and differs across seeds', () => {
  const a = new Prng(1);
  const b = new Prng(1);
  const c = new Prng(2);
  const seqA = Array.from({ length: 5 }, () => a.nextUint32());
  assert.deepEqual(
    Array.from({ length: 5 }, () => b.nextUint32()),
    seqA,
  );
  assert.notDeepEqual(
    Array.from({ length: 5 }, () => c.nextUint32()),
    seqA,
  );
  assert.equal(prngNext(0).value, prngNext(0).value);
});

test('the committed index is the highest index a majority holds', () => {
  const match = new Map([
    [1n, 5],
    [2n, 3],
    [3n, 9],
  ]);
  assert.equal(
    majorityCommittedIndex(new Set(match.keys()), (id) => match.get(id) ?? 0),
    5,
  );
  const five = new Map([
    [1n, 1],
    [2n, 2],
    [3n, 3],
    [4n, 4],
    [5n, 5],
  ]);
  assert.equal(
    majorityCommittedIndex(new Set(five.keys()), (id) => five.get(id) ?? 0),
    3,
  );
});

test('an election is won by a majority, lost when a majority rejects, else pending', () => {
  const voters = new Set([1n, 2n, 3n]);
  assert.equal(majorityVoteResult(voters, new Map([[1n, true]])), 'pending');
  assert.equal(
    majorityVoteResult(
      voters,
      new Map([
        [1n, true],
        [2n, true],
      ]),
    ),
    'won',
  );
  assert.equal(
    majorityVoteResult(
      voters,
      new Map([
        [1n, true],
        [2n, false],
        [3n, false],
      ]),
    ),
    'lost',
  );
});

test('the inflight window fills, frees up to an index, and reports full', () => {
  const inflights = new Inflights(3);
  inflights.add(2);
  inflights.add(4);
  inflights.add(6);
  assert.equal(inflights.full(), true);
  inflights.freeLE(4);
  assert.equal(inflights.count(), 1);
  inflights.freeFirstOne();
  assert.equal(inflights.count(), 0);
});

test('a probing progress backs off to the follower hint and pauses after one send', () => {
  const progress = new Progress(11, 4, false);
  assert.equal(progress.maybeDecrTo(10, 4), true);
  assert.equal(progress.next, 5);
  assert.equal(progress.maybeDecrTo(9, 4), false, 'a stale rejection is ignored');
  progress.probeSent = true;
  assert.equal(progress.isPaused(), true);
  assert.equal(progress.maybeUpdate(6), true);
  progress.becomeReplicate();
  assert.equal(progress.next, 7);
});

test('the log finds conflicts, truncates an uncommitted suffix and reports compaction', () => {
  const storage = new MemoryStorage();
  storage.append([entry(1, 1), entry(1, 2), entry(2, 3)]);
  const log = new RaftLog(storage);
  assert.equal(log.lastIndex(), 3);
  assert.equal(log.maybeAppend(2, 1, 2, [entry(3, 3), entry(3, 4)]), 4);
  assert.deepEqual(
    log.entriesFrom(1, 10).map((e) => e.term),
    [1, 1, 3, 3],
  );
  assert.equal(log.committed, 2);
  assert.equal(log.findConflictByTerm(4, 2), 2);
  assert.equal(log.maybeAppend(4, 2, 4, []), undefined);
  storage.createSnapshot(
    2,
    { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    new Uint8Array(0),
  );
  storage.compact(2);
  assert.throws(() => log.entriesFrom(1, 10), StorageCompactedError);
  assert.equal(log.term(1), undefined);
});

test('memory storage counts the entry bytes it holds through appends, truncation, compaction and snapshots', () => {
  const sized = (term: number, index: number, bytes: number) => ({
    term,
    index,
    type: EntryType.normal,
    data: new Uint8Array(bytes),
  });
  const storage = new MemoryStorage();
  storage.append([sized(1, 1, 10), sized(1, 2, 20), sized(1, 3, 30), sized(1, 4, 40)]);
  assert.equal(storage.entryBytes(), 100);
  // A conflicting suffix from index 3 is replaced: 30 + 40 leave, 5 + 6 + 7 come.
  storage.append([sized(2, 3, 5), sized(2, 4, 6), sized(2, 5, 7)]);
  assert.equal(storage.entryBytes(), 10 + 20 + 5 + 6 + 7);
  // Entries already compacted away are skipped, not counted twice.
  storage.compact(2);
  assert.equal(storage.entryBytes(), 5 + 6 + 7);
  storage.append([sized(2, 2, 99), sized(2, 3, 5)]);
  assert.equal(storage.entryBytes(), 5);
  storage.applySnapshot({ data: new Uint8Array(0), metadata: { index: 9, term: 3, confState: confStateOf([1n]) } });
  assert.equal(storage.entryBytes(), 0);
});

test('memory storage finds the compaction index that keeps at most a byte budget up to an index', () => {
  const sized = (index: number, bytes: number) => ({
    term: 1,
    index,
    type: EntryType.normal,
    data: new Uint8Array(bytes),
  });
  const storage = new MemoryStorage();
  storage.append([sized(1, 100), sized(2, 100), sized(3, 100), sized(4, 100), sized(5, 1_000)]);
  // Up to index 4: entries 3 and 4 fit in 250 bytes, so compacting at 2 keeps them.
  assert.equal(storage.compactIndexKeeping(4, 250), 2);
  assert.equal(storage.compactIndexKeeping(4, 200), 2);
  assert.equal(storage.compactIndexKeeping(4, 199), 3);
  // Everything up to the index fits: the dummy's index, which compacts nothing.
  assert.equal(storage.compactIndexKeeping(4, 400), 0);
  // An entry larger than the budget is not kept even alone.
  assert.equal(storage.compactIndexKeeping(5, 999), 5);
  storage.compact(2);
  assert.equal(storage.compactIndexKeeping(4, 1_000), 2);
  assert.throws(() => storage.compactIndexKeeping(2, 1_000), /outside the log/);
  assert.throws(() => storage.compactIndexKeeping(6, 1_000), /outside the log/);
});

test('a core whose loaded hard state lags its last entry starts at that entry term without a vote', () => {
  const coreFrom = (hardState: { term: number; vote: bigint; commit: number }) => {
    const storage = MemoryStorage.withConfState(confStateOf([1n, 2n, 3n]));
    storage.append([entry(1, 1), entry(2, 2), entry(4, 3)]);
    storage.setHardState(hardState);
    return newRaftCore({
      id: 2n,
      electionTicks: 10,
      heartbeatTicks: 1,
      storage,
      appliedIndex: 0,
      preVote: true,
      checkQuorum: false,
      maxEntriesPerMessage: 4,
      maxInflightMessages: 8,
      seed: 1,
    });
  };
  const torn = coreFrom({ term: 2, vote: 3n, commit: 2 });
  assert.deepEqual([torn.term, torn.vote, torn.log.committed], [4, noneId, 2]);
  const current = coreFrom({ term: 5, vote: 3n, commit: 2 });
  assert.deepEqual([current.term, current.vote, current.log.committed], [5, 3n, 2]);
  const exact = coreFrom({ term: 4, vote: 1n, commit: 3 });
  assert.deepEqual([exact.term, exact.vote, exact.log.committed], [4, 1n, 3]);
});
