/**
 * Raft's data types, shared by the core, the WAL and the transport.
 * Terms and indexes are plain numbers (they stay far below 2^53); member IDs are etcd's uint64
 * values held as bigint, with 0n meaning "none".
 */

export type NodeId = bigint;
export const noneId: NodeId = 0n;

export const enum EntryType {
  normal = 0,
  confChange = 1,
  confChangeV2 = 2,
}

/** One replicated log entry; `data` is the application's opaque payload. */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must survive a crash for Raft to stay safe: the current term, the vote cast in it, the commit index. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export const emptyHardState: HardState = Object.freeze({ term: 0, vote: noneId, commit: 0 });

/** Voters, learners and the outgoing set of a joint configuration, as etcd's ConfState. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  votersOutgoing: NodeId[];
  learnersNext: NodeId[];
  autoLeave: boolean;
}

export interface SnapshotMetadata {
  confState: ConfState;
  index: number;
  term: number;
}

export interface Snapshot {
  data: Uint8Array;
  metadata: SnapshotMetadata;
}

/** Message types with etcd raft's numbering, so traces read the same. */
export const enum MessageType {
  hup = 0,
  beat = 1,
  prop = 2,
  app = 3,
  appResp = 4,
  vote = 5,
  voteResp = 6,
  snap = 7,
  heartbeat = 8,
  heartbeatResp = 9,
  unreachable = 10,
  snapStatus = 11,
  checkQuorum = 12,
  transferLeader = 13,
  timeoutNow = 14,
  readIndex = 15,
  readIndexResp = 16,
  preVote = 17,
  preVoteResp = 18,
}

/** etcd raft's names of the message types (raftpb's MessageType), for traces and inspection. */
export const messageTypeNames: readonly string[] = [
  'MsgHup',
  'MsgBeat',
  'MsgProp',
  'MsgApp',
  'MsgAppResp',
  'MsgVote',
  'MsgVoteResp',
  'MsgSnap',
  'MsgHeartbeat',
  'MsgHeartbeatResp',
  'MsgUnreachable',
  'MsgSnapStatus',
  'MsgCheckQuorum',
  'MsgTransferLeader',
  'MsgTimeoutNow',
  'MsgReadIndex',
  'MsgReadIndexResp',
  'MsgPreVote',
  'MsgPreVoteResp',
];

export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  snapshot?: Snapshot;
  reject: boolean;
  rejectHint: number;
  context?: Uint8Array;
}

/** A linearizable read point: once `index` is applied, the read tagged `requestCtx` may be served. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

export const enum RaftRole {
  follower = 'follower',
  preCandidate = 'preCandidate',
  candidate = 'candidate',
  leader = 'leader',
}

export interface SoftState {
  leaderId: NodeId;
  role: RaftRole;
}

/**
 * What the core hands the application after a batch of steps, as etcd raft's Ready: persist
 * `hardState`, `snapshot` and `entries` (fsync when `mustSync`), then send `messages`, then apply
 * `committedEntries`, then call advance().
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  readStates: ReadState[];
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  /**
   * Whether the writes must be fsynced before messages that depend on them leave and before
   * anything is applied: new entries, a new term or vote (as etcd), and also a commit index that
   * reaches a conf change. A member that forgot, after a power cut, that a change committed would
   * restart in the configuration before it, and could wait forever for the vote of a member the
   * change removed (which stopped once it applied its removal).
   */
  mustSync: boolean;
}
