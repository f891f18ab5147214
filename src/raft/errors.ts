/** Errors the Raft core raises; each is a small named class so callers can match on it. */

/** Why a proposal, read or transfer was dropped: the reason a ProposalDroppedError carries. */
export const droppedReasons = {
  noLeader: 'no leader',
  electionInProgress: 'no leader (election in progress)',
  leaderNotMember: 'leader is not a member of the configuration',
  transferInProgress: 'leadership transfer in progress',
} as const;

/** A proposal, read or transfer could not be accepted (no leader, or the leader is busy). */
export class ProposalDroppedError extends Error {
  constructor(reason: string) {
    super(`raft proposal dropped: ${reason}`);
    this.name = 'ProposalDroppedError';
  }
}

/** The requested index is older than the storage's first index (compacted into a snapshot). */
export class StorageCompactedError extends Error {
  constructor(index: number, firstIndex: number) {
    super(`requested index ${index} is unavailable due to compaction (first index ${firstIndex})`);
    this.name = 'StorageCompactedError';
  }
}

/** The requested index is past the storage's last index. */
export class StorageUnavailableError extends Error {
  constructor(index: number, lastIndex: number) {
    super(`requested entry at index ${index} is unavailable (last index ${lastIndex})`);
    this.name = 'StorageUnavailableError';
  }
}

/** A snapshot older than the one storage already holds. */
export class SnapshotOutOfDateError extends Error {
  constructor(index: number, current: number) {
    super(`requested snapshot index ${index} is older than the existing snapshot ${current}`);
    this.name = 'SnapshotOutOfDateError';
  }
}

/** A local-only message type was passed to step(). */
export class StepLocalMessageError extends Error {
  constructor(type: number) {
    super(`raft: cannot step raft local message type ${type}`);
    this.name = 'StepLocalMessageError';
  }
}
