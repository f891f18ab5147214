/**
 * Every failpoint in the member, by the name GOFAIL_FAILPOINTS and the control endpoint use.
 * Names etcd's gofail points carry are kept (raftBeforeSave, beforeCommit, defragBeforeCopy, ...).
 */
export const failpointNames = [
  // The Raft loop (actors/member/raft-loop.ts): around the persisting of a Ready.
  'raftBeforeSave',
  'raftAfterSave',
  'raftBeforeLeaderSend',
  'raftBeforeFollowerSend',
  'raftBeforeApplySnap',
  'raftAfterApplySnap',
  // The WAL thread (actors/wal/thread.ts): the write and the fdatasync of a batch.
  'walBeforeWrite',
  'walBeforeSync',
  'walAfterSync',
  // Apply (actors/member/apply.ts): before each committed proposal is applied.
  'beforeApplyEntry',
  // The backend's LMDB commit (a hook given to src/mvcc/lmdb-backend.ts by actors/member/key-space.ts).
  'beforeCommit',
  'afterCommit',
  // Compaction (apply of a Compact) and defragmentation.
  'compactBeforeCommitScheduledCompact',
  'compactAfterCommitScheduledCompact',
  'defragBeforeCopy',
  'defragBeforeRename',
  // Snapshots: the leader sending its database, the follower storing it, and its install.
  'snapshotBeforeSend',
  'snapshotBeforeReceive',
  'snapshotBeforeInstall',
] as const;

export type FailpointName = (typeof failpointNames)[number];

/** True when `name` is a failpoint of the member. */
export function isFailpointName(name: string): name is FailpointName {
  return (failpointNames as readonly string[]).includes(name);
}
