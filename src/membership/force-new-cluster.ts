/**
 * --force-new-cluster, as etcd's restartAsStandaloneNode rewrites a member's log: entries past the
 * commit index are dropped, and committed conf changes are appended that remove every other member
 * (and add this one if the log lacks it), so the restarted member is a one-member cluster holding
 * all committed data. Pure: the caller persists the entries and the new hard state.
 */
import { ConfChangeType, decodeConfChange, encodeConfChange } from '../raft/conf-change.js';
import { type ConfState, type Entry, EntryType, type HardState, type NodeId } from '../raft/types.js';

export interface ForcedLog {
  /** The committed entries kept, then the forced conf changes. */
  entries: Entry[];
  /** The forced conf changes alone (to append to the WAL after the commit index). */
  forced: Entry[];
  hardState: HardState;
  /** Members the log named before, this one included. */
  previousMembers: NodeId[];
}

/** The member IDs a snapshot's ConfState and the conf changes after it leave in the cluster (etcd's getIDs). */
export function memberIdsOf(confState: ConfState, entries: readonly Entry[]): NodeId[] {
  const ids = new Set<NodeId>([...confState.voters, ...confState.learners]);
  for (const entry of entries) {
    if (entry.type !== EntryType.confChange) continue;
    const change = decodeConfChange(entry.data);
    if (change.type === ConfChangeType.addNode || change.type === ConfChangeType.addLearnerNode) ids.add(change.nodeId);
    if (change.type === ConfChangeType.removeNode) ids.delete(change.nodeId);
  }
  return [...ids].sort((first, second) => (first < second ? -1 : first > second ? 1 : 0));
}

/**
 * Rewrites the log for a standalone restart. `lastIndexBefore` is the index before `entries[0]`
 * (the snapshot's); `selfContext` is this member's context for the AddNode used when the log does
 * not name it.
 */
export function forceNewClusterLog(
  confState: ConfState,
  entries: readonly Entry[],
  hardState: HardState,
  lastIndexBefore: number,
  selfId: NodeId,
  selfContext: Uint8Array,
): ForcedLog {
  const committed = entries.filter((entry) => entry.index <= hardState.commit);
  const previousMembers = memberIdsOf(confState, committed);
  const changes = previousMembers
    .filter((id) => id !== selfId)
    .map((nodeId) => encodeConfChange({ type: ConfChangeType.removeNode, nodeId }));
  if (!previousMembers.includes(selfId)) {
    changes.push(encodeConfChange({ type: ConfChangeType.addNode, nodeId: selfId, context: selfContext }));
  }
  const firstIndex = Math.max(hardState.commit, lastIndexBefore) + 1;
  const forced = changes.map((data, position) => ({
    term: hardState.term,
    index: firstIndex + position,
    type: EntryType.confChange,
    data,
  }));
  const commit = forced.at(-1)?.index ?? firstIndex - 1;
  return {
    entries: [...committed, ...forced],
    forced,
    hardState: { ...hardState, commit },
    previousMembers,
  };
}
