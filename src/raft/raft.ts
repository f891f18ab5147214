/**
 * The Raft core as plain functions over one mutable `RaftCore` record, after etcd raft. The role
 * machine (machines/raft-role.ts) owns the record and calls these functions from its actions;
 * nothing here performs I/O: outputs go to `core.outbox` and `core.readStates`.
 */
import { assert } from '../lib/assert.js';
import { type ConfChange, ConfChangeType } from './conf-change.js';
import { prngNext, prngSeedState } from '../lib/prng.js';
import { RaftLog } from './log.js';
import { ReadOnly } from './read-only.js';
import type { RaftStorage } from './storage.js';
import { ProgressTracker } from './tracker.js';
import {
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  RaftRole,
  type ReadState,
  noneId,
} from './types.js';

/** Marks a MsgVote sent because of a leadership transfer, which must bypass the leader lease. */
export const campaignTransferContext = new TextEncoder().encode('CampaignTransfer');

export interface RaftCoreConfig {
  id: NodeId;
  electionTicks: number;
  heartbeatTicks: number;
  storage: RaftStorage;
  appliedIndex: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxEntriesPerMessage: number;
  maxInflightMessages: number;
  seed: number;
}

export interface RaftCore {
  readonly id: NodeId;
  role: RaftRole;
  term: number;
  vote: NodeId;
  leaderId: NodeId;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  readOnly: ReadOnly;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  randomizedElectionTicks: number;
  electionElapsedTicks: number;
  heartbeatElapsedTicks: number;
  prngState: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxEntriesPerMessage: number;
  leadTransferee: NodeId;
  /** Index of the latest conf change the leader has proposed; only one may be in flight. */
  pendingConfIndex: number;
  /** ReadIndex requests that arrived before the leader committed an entry of its term. */
  pendingReadIndexMessages: Message[];
  outbox: Message[];
  readStates: ReadState[];
  /** Set when the most recent proposal, read or transfer request was dropped, with why. */
  droppedReason: string | undefined;
}

type CampaignKind = 'preElection' | 'election' | 'transfer';

export function newRaftCore(config: RaftCoreConfig): RaftCore {
  assert(config.id !== noneId, 'raft id must not be zero');
  assert(config.heartbeatTicks > 0, () => `heartbeatTicks must be positive, got ${config.heartbeatTicks}`);
  assert(config.electionTicks > config.heartbeatTicks, () =>
    `electionTicks ${config.electionTicks} must exceed heartbeatTicks ${config.heartbeatTicks}`);
  const { hardState, confState } = config.storage.initialState();
  const log = new RaftLog(config.storage);
  const tracker = new ProgressTracker(config.maxInflightMessages);
  tracker.resetFromConfState(confState, log.lastIndex() + 1);
  const core: RaftCore = {
    id: config.id, role: RaftRole.follower, term: 0, vote: noneId, leaderId: noneId,
    log, tracker, readOnly: new ReadOnly(),
    electionTicks: config.electionTicks, heartbeatTicks: config.heartbeatTicks,
    randomizedElectionTicks: config.electionTicks, electionElapsedTicks: 0, heartbeatElapsedTicks: 0,
    prngState: prngSeedState(config.seed), preVote: config.preVote, checkQuorum: config.checkQuorum,
    maxEntriesPerMessage: Math.max(1, config.maxEntriesPerMessage), leadTransferee: noneId, pendingConfIndex: 0,
    pendingReadIndexMessages: [], outbox: [], readStates: [], droppedReason: undefined,
  };
  if (hardState.term !== 0 || hardState.commit !== 0) {
    assert(hardState.commit >= log.committed && hardState.commit <= log.lastIndex(), () =>
      `hard state commit ${hardState.commit} out of range [${log.committed}, ${log.lastIndex()}]`);
    log.committed = hardState.commit;
    core.term = hardState.term;
    core.vote = hardState.vote;
  }
  adoptLastLogTerm(core);
  if (config.appliedIndex > 0) log.appliedTo(config.appliedIndex);
  becomeFollower(core, core.term, noneId);
  return core;
}

/**
 * Restores term >= last log term after a torn write kept a Ready's entries (or snapshot) but lost
 * the hard state written after them. The lost record would have said term T (the last entry's
 * term) with no vote ever sent: a non-leader sends its vote only after the hard state holding it
 * is durable, and hard state terms only grow, so a loaded term below T proves no vote of term T
 * left this member. Voting later in T is harmless anyway: a candidate of term T campaigned from
 * T - 1, so its last term is below ours and we refuse it. The commit index is kept as loaded.
 */
function adoptLastLogTerm(core: RaftCore): void {
  const lastTerm = core.log.lastTerm();
  if (lastTerm <= core.term) return;
  core.term = lastTerm;
  core.vote = noneId;
}

// ---- outputs ---------------------------------------------------------------------------------

/** A message with every field defaulted, so callers only name what matters. */
export function message(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    to: noneId, from: noneId, term: 0, logTerm: 0, index: 0, entries: [], commit: 0,
    reject: false, rejectHint: 0, ...fields,
  };
}

function send(core: RaftCore, fields: Partial<Message> & Pick<Message, 'type' | 'to'>): void {
  const m = message({ from: core.id, ...fields });
  const isVoteTraffic = m.type === MessageType.vote || m.type === MessageType.voteResp ||
    m.type === MessageType.preVote || m.type === MessageType.preVoteResp;
  if (isVoteTraffic) {
    assert(m.term !== 0, () => `vote traffic ${m.type} must carry a term`);
  } else if (m.type !== MessageType.prop && m.type !== MessageType.readIndex) {
    // Forwarded proposals and reads travel as local messages (term 0); all else carries our term.
    m.term = core.term;
  }
  core.outbox.push(m);
}

// ---- role changes ----------------------------------------------------------------------------

function resetRandomizedElectionTicks(core: RaftCore): void {
  const step = prngNext(core.prngState);
  core.prngState = step.state;
  core.randomizedElectionTicks = core.electionTicks + (step.value % core.electionTicks);
}

function reset(core: RaftCore, term: number): void {
  if (core.term !== term) {
    core.term = term;
    core.vote = noneId;
  }
  core.leaderId = noneId;
  core.electionElapsedTicks = 0;
  core.heartbeatElapsedTicks = 0;
  resetRandomizedElectionTicks(core);
  core.leadTransferee = noneId;
  core.tracker.resetVotes();
  const lastIndex = core.log.lastIndex();
  for (const [id, progress] of core.tracker.progress) {
    progress.becomeProbe();
    progress.match = id === core.id ? lastIndex : 0;
    progress.next = lastIndex + 1;
    progress.recentActive = id === core.id;
  }
  core.pendingConfIndex = 0;
  core.readOnly = new ReadOnly();
  core.pendingReadIndexMessages = [];
}

export function becomeFollower(core: RaftCore, term: number, leaderId: NodeId): void {
  reset(core, term);
  core.leaderId = leaderId;
  core.role = RaftRole.follower;
}

function becomeCandidate(core: RaftCore): void {
  assert(core.role !== RaftRole.leader, 'invalid transition [leader -> candidate]');
  reset(core, core.term + 1);
  core.vote = core.id;
  core.role = RaftRole.candidate;
}

function becomePreCandidate(core: RaftCore): void {
  assert(core.role !== RaftRole.leader, 'invalid transition [leader -> preCandidate]');
  // A pre-candidate changes neither term nor vote: a failed pre-vote must leave no trace.
  core.tracker.resetVotes();
  core.leaderId = noneId;
  core.role = RaftRole.preCandidate;
}

function becomeLeader(core: RaftCore): void {
  assert(core.role !== RaftRole.follower, 'invalid transition [follower -> leader]');
  reset(core, core.term);
  core.leaderId = core.id;
  core.role = RaftRole.leader;
  const self = core.tracker.progress.get(core.id);
  if (self) self.becomeReplicate();
  // Conservatively treat any uncommitted tail as possibly holding a conf change.
  core.pendingConfIndex = core.log.lastIndex();
  appendEntries(core, [{ term: 0, index: 0, type: EntryType.normal, data: new Uint8Array(0) }]);
}

export function promotable(core: RaftCore): boolean {
  const self = core.tracker.progress.get(core.id);
  return self !== undefined && !self.isLearner;
}

// ---- elections -------------------------------------------------------------------------------

/** MsgHup: start an election (or pre-election) unless we are leader or cannot be one. */
export function hup(core: RaftCore, kind: CampaignKind): void {
  if (core.role === RaftRole.leader || !promotable(core)) return;
  if (hasUnappliedConfChange(core)) return; // Campaigning now could use a stale configuration.
  campaign(core, kind);
}

function hasUnappliedConfChange(core: RaftCore): boolean {
  if (core.log.committed <= core.log.applied) return false;
  const lo = Math.max(core.log.applied + 1, core.log.firstIndex());
  const entries = core.log.slice(lo, core.log.committed + 1, Number.MAX_SAFE_INTEGER);
  return entries.some((entry) => entry.type !== EntryType.normal);
}

function campaign(core: RaftCore, kind: CampaignKind): void {
  let voteType: MessageType;
  let term: number;
  if (kind === 'preElection') {
    becomePreCandidate(core);
    voteType = MessageType.preVote;
    term = core.term + 1; // Pre-votes ask for the next term without taking it.
  } else {
    becomeCandidate(core);
    voteType = MessageType.vote;
    term = core.term;
  }
  if (poll(core, core.id, voteResponseType(voteType), true) === 'won') {
    if (kind === 'preElection') campaign(core, 'election');
    else becomeLeader(core);
    return;
  }
  for (const id of core.tracker.voters) {
    if (id === core.id) continue;
    send(core, {
      type: voteType, to: id, term, index: core.log.lastIndex(), logTerm: core.log.lastTerm(),
      ...(kind === 'transfer' ? { context: campaignTransferContext } : {}),
    });
  }
}

function poll(core: RaftCore, id: NodeId, _type: MessageType, granted: boolean): 'won' | 'lost' | 'pending' {
  core.tracker.recordVote(id, granted);
  return core.tracker.tallyVotes().result;
}

function voteResponseType(type: MessageType): MessageType {
  if (type === MessageType.vote) return MessageType.voteResp;
  if (type === MessageType.preVote) return MessageType.preVoteResp;
  throw new Error(`not a vote message: ${type}`);
}

// ---- log appends and replication -------------------------------------------------------------

/** Leader-side append: stamps term and index, then commits if this alone forms a quorum. */
export function appendEntries(core: RaftCore, entries: Entry[]): void {
  let index = core.log.lastIndex();
  const stamped = entries.map((entry) => {
    index += 1;
    return { term: core.term, index, type: entry.type, data: entry.data };
  });
  const lastIndex = core.log.append(stamped);
  core.tracker.progress.get(core.id)?.maybeUpdate(lastIndex);
  maybeCommit(core);
}

function maybeCommit(core: RaftCore): boolean {
  const committed = core.log.maybeCommit(core.tracker.committed(), core.term);
  if (committed) releasePendingReadIndexMessages(core);
  return committed;
}

export function sendAppend(core: RaftCore, to: NodeId): void {
  maybeSendAppend(core, to, true);
}

/** Sends entries (or a snapshot) to `to` if flow control allows; true when a message went out. */
function maybeSendAppend(core: RaftCore, to: NodeId, sendIfEmpty: boolean): boolean {
  const progress = core.tracker.progress.get(to);
  if (!progress || progress.isPaused()) return false;
  const prevIndex = progress.next - 1;
  const prevTerm = core.log.term(prevIndex);
  let entries: Entry[] | undefined;
  try {
    entries = prevTerm === undefined ? undefined : core.log.entriesFrom(progress.next, core.maxEntriesPerMessage);
  } catch {
    entries = undefined; // Compacted: the follower needs a snapshot.
  }
  if (entries !== undefined && entries.length === 0 && !sendIfEmpty) return false;
  if (prevTerm === undefined || entries === undefined) return sendSnapshot(core, to);
  send(core, { type: MessageType.app, to, index: prevIndex, logTerm: prevTerm, entries, commit: core.log.committed });
  const last = entries[entries.length - 1];
  if (last) {
    if (progress.state === 'replicate') {
      progress.optimisticUpdate(last.index);
      progress.inflights.add(last.index);
    } else if (progress.state === 'probe') {
      progress.probeSent = true;
    }
  }
  return true;
}

function sendSnapshot(core: RaftCore, to: NodeId): boolean {
  const progress = core.tracker.progress.get(to);
  if (!progress || !progress.recentActive) return false; // Do not ship snapshots to the unreachable.
  const found = core.log.snapshot();
  if (!found || found.snapshot.metadata.index === 0) return false;
  progress.becomeSnapshot(found.snapshot.metadata.index);
  send(core, { type: MessageType.snap, to, snapshot: found.snapshot });
  return true;
}

export function broadcastAppend(core: RaftCore): void {
  for (const id of core.tracker.progress.keys()) if (id !== core.id) sendAppend(core, id);
}

export function broadcastHeartbeat(core: RaftCore, context?: Uint8Array): void {
  for (const [id, progress] of core.tracker.progress) {
    if (id === core.id) continue;
    // Never tell a follower to commit past what it is known to hold.
    const commit = Math.min(progress.match, core.log.committed);
    send(core, { type: MessageType.heartbeat, to: id, commit, ...(context ? { context } : {}) });
  }
}

function sendTimeoutNow(core: RaftCore, to: NodeId): void {
  send(core, { type: MessageType.timeoutNow, to });
}

// ---- ticks -----------------------------------------------------------------------------------

/** Follower and candidate tick: campaign once the randomized election timeout passes. */
export function tickElection(core: RaftCore): void {
  core.electionElapsedTicks += 1;
  if (promotable(core) && core.electionElapsedTicks >= core.randomizedElectionTicks) {
    core.electionElapsedTicks = 0;
    hup(core, core.preVote ? 'preElection' : 'election');
  }
}

/** Leader tick: heartbeats, check-quorum, and giving up a stalled leadership transfer. */
export function tickHeartbeat(core: RaftCore): void {
  core.heartbeatElapsedTicks += 1;
  core.electionElapsedTicks += 1;
  if (core.electionElapsedTicks >= core.electionTicks) {
    core.electionElapsedTicks = 0;
    if (core.checkQuorum) checkQuorumActive(core);
    if (core.role === RaftRole.leader && core.leadTransferee !== noneId) core.leadTransferee = noneId;
  }
  if (core.role !== RaftRole.leader) return;
  if (core.heartbeatElapsedTicks >= core.heartbeatTicks) {
    core.heartbeatElapsedTicks = 0;
    broadcastHeartbeat(core, core.readOnly.lastPendingContext());
  }
}

function checkQuorumActive(core: RaftCore): void {
  if (!core.tracker.quorumActive(core.id)) {
    becomeFollower(core, core.term, noneId);
    return;
  }
  for (const [id, progress] of core.tracker.progress) if (id !== core.id) progress.recentActive = false;
}

// ---- stepping messages -----------------------------------------------------------------------

const localMessageTypes = new Set<MessageType>([
  MessageType.hup, MessageType.beat, MessageType.unreachable, MessageType.snapStatus, MessageType.checkQuorum,
]);

export function isLocalMessage(type: MessageType): boolean {
  return localMessageTypes.has(type);
}

export function isResponseMessage(type: MessageType): boolean {
  return type === MessageType.appResp || type === MessageType.voteResp || type === MessageType.heartbeatResp ||
    type === MessageType.unreachable || type === MessageType.preVoteResp;
}

/** Steps one message: term bookkeeping shared by every role, then the role's own handler. */
export function stepMessage(core: RaftCore, m: Message): void {
  if (!stepTerm(core, m)) return;
  switch (m.type) {
    case MessageType.hup:
      hup(core, core.preVote ? 'preElection' : 'election');
      return;
    case MessageType.vote:
    case MessageType.preVote:
      handleVoteRequest(core, m);
      return;
    default:
      roleSteps[core.role](core, m);
  }
}

/** Applies the term rules; false when the message must be ignored. */
function stepTerm(core: RaftCore, m: Message): boolean {
  if (m.term === 0 || m.term === core.term) return true;
  if (m.term > core.term) return stepHigherTerm(core, m);
  // A lower term. With check-quorum or pre-vote, a partitioned node with a high term would never
  // learn of the leader without an answer; the response carries our term and unsticks it.
  if ((core.checkQuorum || core.preVote) && (m.type === MessageType.heartbeat || m.type === MessageType.app)) {
    send(core, { type: MessageType.appResp, to: m.from });
  } else if (m.type === MessageType.preVote) {
    send(core, { type: MessageType.preVoteResp, to: m.from, term: core.term, reject: true });
  }
  return false;
}

function stepHigherTerm(core: RaftCore, m: Message): boolean {
  if (m.type === MessageType.vote || m.type === MessageType.preVote) {
    const force = m.context !== undefined && sameBytes(m.context, campaignTransferContext);
    const inLease = core.checkQuorum && core.leaderId !== noneId && core.electionElapsedTicks < core.electionTicks;
    if (!force && inLease) return false; // A live leader is known: refuse to be disrupted.
  }
  if (m.type === MessageType.preVote) return true; // Never change term for a pre-vote.
  if (m.type === MessageType.preVoteResp && !m.reject) return true; // Term moves once we win.
  const knowsLeader = m.type === MessageType.app || m.type === MessageType.heartbeat || m.type === MessageType.snap;
  becomeFollower(core, m.term, knowsLeader ? m.from : noneId);
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}

function handleVoteRequest(core: RaftCore, m: Message): void {
  const canVote = core.vote === m.from || (core.vote === noneId && core.leaderId === noneId) ||
    (m.type === MessageType.preVote && m.term > core.term);
  const responseType = voteResponseType(m.type);
  if (canVote && core.log.isUpToDate(m.index, m.logTerm)) {
    // Answer in the request's term: a pre-vote grant is for a term we have not entered.
    send(core, { type: responseType, to: m.from, term: m.term });
    if (m.type === MessageType.vote) {
      core.electionElapsedTicks = 0;
      core.vote = m.from;
    }
    return;
  }
  send(core, { type: responseType, to: m.from, term: core.term, reject: true });
}

const roleSteps: Record<RaftRole, (core: RaftCore, m: Message) => void> = {
  [RaftRole.follower]: stepFollower,
  [RaftRole.preCandidate]: stepCandidate,
  [RaftRole.candidate]: stepCandidate,
  [RaftRole.leader]: stepLeader,
};

function stepFollower(core: RaftCore, m: Message): void {
  switch (m.type) {
    case MessageType.prop:
    case MessageType.transferLeader:
    case MessageType.readIndex:
      forwardToLeader(core, m);
      return;
    case MessageType.app:
    case MessageType.heartbeat:
    case MessageType.snap:
      core.electionElapsedTicks = 0;
      core.leaderId = m.from;
      handleFromLeader(core, m);
      return;
    case MessageType.timeoutNow:
      // A transfer skips pre-vote: the old leader asked for this election explicitly.
      if (promotable(core)) hup(core, 'transfer');
      return;
    case MessageType.readIndexResp:
      if (m.entries.length === 1) core.readStates.push({ index: m.index, requestCtx: (m.entries[0] as Entry).data });
      return;
    default:
  }
}

function forwardToLeader(core: RaftCore, m: Message): void {
  if (core.leaderId === noneId) {
    core.droppedReason = 'no leader';
    return;
  }
  if (m.type === MessageType.transferLeader) {
    // The transferee travels in `from`, so the message goes on with it untouched.
    core.outbox.push({ ...m, to: core.leaderId, term: core.term });
    return;
  }
  core.outbox.push({ ...m, to: core.leaderId, from: core.id, term: 0 });
}

function stepCandidate(core: RaftCore, m: Message): void {
  const myResponseType = core.role === RaftRole.preCandidate ? MessageType.preVoteResp : MessageType.voteResp;
  switch (m.type) {
    case MessageType.prop:
    case MessageType.readIndex:
      core.droppedReason = 'no leader (election in progress)';
      return;
    case MessageType.app:
    case MessageType.heartbeat:
    case MessageType.snap:
      becomeFollower(core, m.term, m.from); // A leader of our term exists.
      handleFromLeader(core, m);
      return;
    case myResponseType:
      handleVoteResponse(core, m);
      return;
    default:
  }
}

function handleVoteResponse(core: RaftCore, m: Message): void {
  const result = poll(core, m.from, m.type, !m.reject);
  if (result === 'won') {
    if (core.role === RaftRole.preCandidate) {
      campaign(core, 'election');
    } else {
      becomeLeader(core);
      broadcastAppend(core);
    }
  } else if (result === 'lost') {
    // A rejection from a newer term was already adopted by the term rules before we got here.
    becomeFollower(core, core.term, noneId);
  }
}

function handleFromLeader(core: RaftCore, m: Message): void {
  if (m.type === MessageType.app) handleAppend(core, m);
  else if (m.type === MessageType.heartbeat) handleHeartbeat(core, m);
  else handleSnapshot(core, m);
}

function handleAppend(core: RaftCore, m: Message): void {
  const log = core.log;
  if (m.index < log.committed) {
    send(core, { type: MessageType.appResp, to: m.from, index: log.committed });
    return;
  }
  const lastNewIndex = log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (lastNewIndex !== undefined) {
    send(core, { type: MessageType.appResp, to: m.from, index: lastNewIndex });
    return;
  }
  // Reject with a hint: the largest index whose term is <= the leader's, so it can skip a whole
  // term of divergent entries in one round trip.
  const hintIndex = log.findConflictByTerm(Math.min(m.index, log.lastIndex()), m.logTerm);
  const hintTerm = log.term(hintIndex) ?? 0;
  send(core, { type: MessageType.appResp, to: m.from, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm });
}

function handleHeartbeat(core: RaftCore, m: Message): void {
  core.log.commitTo(Math.min(m.commit, core.log.lastIndex()));
  send(core, { type: MessageType.heartbeatResp, to: m.from, ...(m.context ? { context: m.context } : {}) });
}

function handleSnapshot(core: RaftCore, m: Message): void {
  const snapshot = m.snapshot;
  assert(snapshot !== undefined, 'MsgSnap without a snapshot');
  if (restore(core, snapshot)) {
    send(core, { type: MessageType.appResp, to: m.from, index: core.log.lastIndex() });
  } else {
    send(core, { type: MessageType.appResp, to: m.from, index: core.log.committed });
  }
}

/** Installs a leader's snapshot; false when it is stale or we already have its entries. */
function restore(core: RaftCore, snapshot: NonNullable<Message['snapshot']>): boolean {
  const { index, term, confState } = snapshot.metadata;
  if (index <= core.log.committed) return false;
  const inConfig = confState.voters.includes(core.id) || confState.learners.includes(core.id);
  if (!inConfig) return false; // A snapshot that removed us is not ours to install.
  if (core.log.matchTerm(index, term)) {
    core.log.commitTo(index); // Fast-forward: we already hold the snapshot's entries.
    return false;
  }
  core.log.restore(snapshot);
  core.tracker.resetFromConfState(confState, core.log.lastIndex() + 1);
  const self = core.tracker.progress.get(core.id);
  if (self) self.match = core.log.lastIndex();
  return true;
}

function stepLeader(core: RaftCore, m: Message): void {
  switch (m.type) {
    case MessageType.beat:
      broadcastHeartbeat(core, core.readOnly.lastPendingContext());
      return;
    case MessageType.checkQuorum:
      checkQuorumActive(core);
      return;
    case MessageType.prop:
      leaderPropose(core, m);
      return;
    case MessageType.readIndex:
      leaderReadIndex(core, m);
      return;
    default:
      stepLeaderFromPeer(core, m);
  }
}

/** Appends a proposal at the leader; sets `droppedReason` instead when it cannot. */
export function leaderPropose(core: RaftCore, m: Message): void {
  assert(m.entries.length > 0, 'empty proposal');
  if (!core.tracker.progress.has(core.id)) {
    core.droppedReason = 'leader is not a member of the configuration';
    return;
  }
  if (core.leadTransferee !== noneId) {
    core.droppedReason = 'leadership transfer in progress';
    return;
  }
  const entries = m.entries.map((entry, offset) => {
    if (entry.type === EntryType.normal) return entry;
    // Only one configuration change may be in flight; later ones become no-ops.
    if (core.pendingConfIndex > core.log.applied) return { ...entry, type: EntryType.normal, data: new Uint8Array(0) };
    core.pendingConfIndex = core.log.lastIndex() + offset + 1;
    return entry;
  });
  appendEntries(core, entries);
  broadcastAppend(core);
}

/** ReadIndex at the leader: confirm leadership by a heartbeat round, or answer at once if alone. */
export function leaderReadIndex(core: RaftCore, m: Message): void {
  if (core.tracker.isSingleton()) {
    respondToReadIndex(core, m, core.log.committed);
    return;
  }
  // Until an entry of this term commits, our commit index may be behind the true one.
  if (core.log.term(core.log.committed) !== core.term) {
    core.pendingReadIndexMessages.push(m);
    return;
  }
  const context = (m.entries[0] as Entry).data;
  core.readOnly.addRequest(core.log.committed, m, context);
  // The leader acknowledges itself, then asks the others.
  const acks = core.readOnly.recvAck(core.id, context);
  if (acks) maybeReleaseReads(core, acks, context);
  broadcastHeartbeat(core, context);
}

function respondToReadIndex(core: RaftCore, request: Message, index: number): void {
  const context = (request.entries[0] as Entry).data;
  if (request.from === noneId || request.from === core.id) {
    core.readStates.push({ index, requestCtx: context });
    return;
  }
  send(core, { type: MessageType.readIndexResp, to: request.from, index, entries: request.entries });
}

function releasePendingReadIndexMessages(core: RaftCore): void {
  if (core.pendingReadIndexMessages.length === 0 || core.log.term(core.log.committed) !== core.term) return;
  const pending = core.pendingReadIndexMessages;
  core.pendingReadIndexMessages = [];
  for (const m of pending) leaderReadIndex(core, m);
}

function maybeReleaseReads(core: RaftCore, acks: Set<NodeId>, context: Uint8Array): void {
  let voterAcks = 0;
  for (const id of acks) if (core.tracker.voters.has(id)) voterAcks += 1;
  if (voterAcks < Math.floor(core.tracker.voters.size / 2) + 1) return;
  for (const status of core.readOnly.advance(context)) respondToReadIndex(core, status.request, status.index);
}

function stepLeaderFromPeer(core: RaftCore, m: Message): void {
  const progress = core.tracker.progress.get(m.from);
  if (!progress) return;
  switch (m.type) {
    case MessageType.appResp:
      progress.recentActive = true;
      if (m.reject) handleAppendRejection(core, m);
      else handleAppendSuccess(core, m);
      return;
    case MessageType.heartbeatResp:
      handleHeartbeatResponse(core, m);
      return;
    case MessageType.snapStatus:
      if (progress.state !== 'snapshot') return;
      if (m.reject) progress.pendingSnapshot = 0;
      progress.becomeProbe();
      progress.probeSent = true; // Wait for the next heartbeat response before probing.
      return;
    case MessageType.unreachable:
      if (progress.state === 'replicate') progress.becomeProbe();
      return;
    case MessageType.transferLeader:
      handleTransferLeader(core, m);
      return;
    default:
  }
}

function handleAppendRejection(core: RaftCore, m: Message): void {
  const progress = core.tracker.progress.get(m.from);
  if (!progress) return;
  let probe = m.rejectHint;
  if (m.logTerm > 0) probe = core.log.findConflictByTerm(m.rejectHint, m.logTerm);
  if (progress.maybeDecrTo(m.index, probe)) {
    if (progress.state === 'replicate') progress.becomeProbe();
    sendAppend(core, m.from);
  }
}

function handleAppendSuccess(core: RaftCore, m: Message): void {
  const progress = core.tracker.progress.get(m.from);
  if (!progress) return;
  const wasPaused = progress.isPaused();
  if (!progress.maybeUpdate(m.index)) return;
  if (progress.state === 'probe') {
    progress.becomeReplicate();
  } else if (progress.state === 'snapshot' && progress.match + 1 >= core.log.firstIndex()) {
    // The follower caught up past the snapshot; resume normal replication.
    progress.becomeProbe();
    progress.becomeReplicate();
  } else if (progress.state === 'replicate') {
    progress.inflights.freeLE(m.index);
  }
  if (maybeCommit(core)) broadcastAppend(core);
  else if (wasPaused) sendAppend(core, m.from);
  // Fill the window while there is more to send.
  for (let sent = 0; sent < progress.inflights.sizeMax && maybeSendAppend(core, m.from, false); sent += 1);
  if (m.from === core.leadTransferee && progress.match === core.log.lastIndex()) sendTimeoutNow(core, m.from);
}

function handleHeartbeatResponse(core: RaftCore, m: Message): void {
  const progress = core.tracker.progress.get(m.from);
  if (!progress) return;
  progress.recentActive = true;
  progress.probeSent = false;
  if (progress.state === 'replicate' && progress.inflights.full()) progress.inflights.freeFirstOne();
  if (progress.match < core.log.lastIndex()) sendAppend(core, m.from);
  if (!m.context || m.context.length === 0) return;
  const acks = core.readOnly.recvAck(m.from, m.context);
  if (acks) maybeReleaseReads(core, acks, m.context);
}

function handleTransferLeader(core: RaftCore, m: Message): void {
  const transferee = m.from;
  const progress = core.tracker.progress.get(transferee);
  if (!progress || progress.isLearner || transferee === core.id) return;
  if (core.leadTransferee === transferee) return; // Already transferring to it.
  core.electionElapsedTicks = 0; // The transfer must finish within one election timeout.
  core.leadTransferee = transferee;
  if (progress.match === core.log.lastIndex()) sendTimeoutNow(core, transferee);
  else sendAppend(core, transferee);
}

// ---- configuration changes -------------------------------------------------------------------

/** Applies a committed single-member change to the tracker and returns the new ConfState. */
export function applyConfChange(core: RaftCore, change: ConfChange): ConfState {
  const tracker = core.tracker;
  const next = core.log.lastIndex() + 1;
  switch (change.type) {
    case ConfChangeType.addNode:
      tracker.addMember(change.nodeId, false, next); // Promotes the member when it is a learner.
      break;
    case ConfChangeType.addLearnerNode:
      tracker.addMember(change.nodeId, true, next);
      break;
    case ConfChangeType.removeNode:
      tracker.removeMember(change.nodeId);
      break;
    case ConfChangeType.updateNode:
      break;
  }
  afterConfigChange(core);
  return tracker.confState();
}

function afterConfigChange(core: RaftCore): void {
  const self = core.tracker.progress.get(core.id);
  if (core.role === RaftRole.leader && (!self || self.isLearner)) {
    // A leader removed or demoted steps down; the rest elect a new one after their timeout.
    becomeFollower(core, core.term, noneId);
    return;
  }
  if (core.role !== RaftRole.leader) return;
  if (core.leadTransferee !== noneId && !core.tracker.voters.has(core.leadTransferee)) core.leadTransferee = noneId;
  // The quorum changed: the commit index may move, and new members need entries.
  if (maybeCommit(core)) broadcastAppend(core);
  else for (const id of core.tracker.progress.keys()) if (id !== core.id) maybeSendAppend(core, id, false);
}
