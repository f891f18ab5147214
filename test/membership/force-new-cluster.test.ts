import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forceNewClusterLog, memberIdsOf } from '../../src/membership/force-new-cluster.js';
import { ConfChangeType, decodeConfChange, encodeConfChange } from '../../src/raft/conf-change.js';
import { type ConfState, type Entry, EntryType } from '../../src/raft/types.js';

const confState = (voters: bigint[]): ConfState => ({
  voters,
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
});
const change = (index: number, type: ConfChangeType, nodeId: bigint): Entry => ({
  term: 2,
  index,
  type: EntryType.confChange,
  data: encodeConfChange({ type, nodeId }),
});
const normal = (index: number): Entry => ({ term: 2, index, type: EntryType.normal, data: Uint8Array.of(index) });

describe('--force-new-cluster log rewrite', () => {
  it('reads the members from the snapshot and the conf changes after it', () => {
    const entries = [change(11, ConfChangeType.addNode, 4n), change(12, ConfChangeType.removeNode, 2n)];
    assert.deepEqual(memberIdsOf(confState([1n, 2n, 3n]), entries), [1n, 3n, 4n]);
  });

  it('drops uncommitted entries and commits the removal of every other member', () => {
    const entries = [
      change(1, ConfChangeType.addNode, 1n),
      change(2, ConfChangeType.addNode, 2n),
      change(3, ConfChangeType.addNode, 3n),
      normal(4),
      normal(5),
      normal(6),
    ];
    const forced = forceNewClusterLog(confState([]), entries, { term: 2, vote: 1n, commit: 5 }, 0, 2n, Uint8Array.of());
    assert.deepEqual(forced.previousMembers, [1n, 2n, 3n]);
    assert.deepEqual(
      forced.forced.map((entry) => [
        entry.index,
        entry.term,
        decodeConfChange(entry.data).type,
        decodeConfChange(entry.data).nodeId,
      ]),
      [
        [6, 2, ConfChangeType.removeNode, 1n],
        [7, 2, ConfChangeType.removeNode, 3n],
      ],
    );
    assert.deepEqual(forced.hardState, { term: 2, vote: 1n, commit: 7 });
    assert.deepEqual(
      forced.entries.map((entry) => entry.index),
      [1, 2, 3, 4, 5, 6, 7],
    );
    assert.equal(forced.entries[5]?.type, EntryType.confChange, 'the uncommitted entry 6 was replaced');
  });

  it('adds this member when the log does not name it, after a snapshot with no entries behind it', () => {
    const forced = forceNewClusterLog(confState([1n]), [], { term: 3, vote: 0n, commit: 40 }, 40, 9n, Uint8Array.of(7));
    assert.deepEqual(
      forced.forced.map((entry) => [entry.index, decodeConfChange(entry.data)]),
      [
        [41, { type: ConfChangeType.removeNode, nodeId: 1n, id: 0n }],
        [42, { type: ConfChangeType.addNode, nodeId: 9n, id: 0n, context: Uint8Array.of(7) }],
      ],
    );
  });
});
