/**
 * The Raft core as plain functions over one mutable `RaftCore` record, after etcd raft. The role
 * machine (machines/raft-role.ts) owns the record and the role: its state nodes call these
 * functions from their actions, the entry work of each role included (becomeFollower, ...), and
 * bind their own step function (stepFollower, stepPreCandidate, stepCandidate, stepLeader).
 *
 * A function here never changes the role. When it detects a role change (a tally reaching
 * quorum, a message of a higher term, an election timeout) it returns a `RoleChange`, which the
 * machine takes as the event of the same name. A step's other results are return values too
 * (a dropped proposal's reason). Nothing here performs I/O: messages and read states go to
 * `core.outbox` and `core.readStates`, which the next Ready hands out.
 */
import { assert } from '../lib/assert.js';
import { type ConfChange, ConfChangeType } from './conf-change.js';
import { droppedReasons } from './errors.js';
import { prngNext, prngSeedState } from '../lib/prng.js';
import { RaftLog } from './log.js';
import { ReadOnly } from './read-only.js';
import type { RaftStorage } from './storage.js';
import { majorityCommittedIndex } from './quorum.js';
import { ProgressTracker } from './tracker.js';
import {
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
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
}

/**
 * A role change a function detected and returned; the role machine takes it as the event of the
 * same name, so the machine alone chooses the next role.
 */
export type RoleChange =
  | { type: 'ELECTION_TIMEOUT' }
  | { type: 'TIMEOUT_NOW' }
  | { type: 'PRE_VOTE_WON' }
  | { type: 'PRE_VOTE_LOST' }
  | { type: 'VOTE_WON' }
  | { type: 'VOTE_LOST' }
  | { type: 'HIGHER_TERM'; term: number; leaderId: NodeId }
  | { type: 'LEADER_SEEN'; leaderId: NodeId }
  | { type: 'QUORUM_LOST' }
  | { type: 'DEMOTED' };

/**
 * Whether the message that caused `change` is left for the new role to step: news of a higher
 * term or of our term's leader changes the role first, and the follower then handles the message.
 */
export function leavesMessageToNewRole(change: RoleChange): boolean {
  return change.type === 'HIGHER_TERM' || change.type === 'LEADER_SEEN';
}

/** A role's handler for the messages the shared term and vote rules pass on. */
export type RoleStep = (core: RaftCore, m: Message) => RoleChange | undefined;

export function newRaftCore(config: RaftCoreConfig): RaftCore {
  assert(config.id !== noneId, 'raft id must not be zero');
  assert(config.heartbeatTicks > 0, () => `heartbeatTicks must be positive, got ${config.heartbeatTicks}`);
  assert(
    config.electionTicks > config.heartbeatTicks,
    () => `electionTicks ${config.electionTicks} must exceed heartbeatTicks ${config.heartbeatTicks}`,
  );
  const { hardState, confState } = config.storage.initialState();
  const log = new RaftLog(config.storage);
  const tracker = new ProgressTracker(config.maxInflightMessages);
  tracker.resetFromConfState(confState, log.lastIndex() + 1);
  const core: RaftCore = {
    id: config.id,
    term: 0,
    vote: noneId,
    leaderId: noneId,
    log,
    tracker,
    readOnly: new ReadOnly(),
    electionTicks: config.electionTicks,
    heartbeatTicks: config.heartbeatTicks,
    randomizedElectionTicks: config.electionTicks,
    electionElapsedTicks: 0,
    heartbeatElapsedTicks: 0,
    prngState: prngSeedState(config.seed),
    preVote: config.preVote,
    checkQuorum: config.checkQuorum,
    maxEntriesPerMessage: Math.max(1, config.maxEntriesPerMessage),
    leadTransferee: noneId,
    pendingConfIndex: 0,
    pendingReadIndexMessages: [],
    outbox: [],
    readStates: [],
  };
  if (hardState.term !== 0 || hardState.commit !== 0) {
    assert(
      hardState.commit >= log.committed && hardState.commit <= log.lastIndex(),
      () => `hard state commit ${hardState.commit} out of range [${log.committed}, ${log.lastIndex()}]`,
    );
    log.committed = hardState.commit;
    core.term = hardState.term;
    core.vote = hardState.vote;
  }
  adoptLastLogTerm(core);
  if (config.appliedIndex > 0) log.appliedTo(config.appliedIndex);
  // No role yet: the role machine starts in follower, whose entry runs becomeFollower.
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
    to: noneId,
    from: noneId,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

function send(core: RaftCore, fields: Partial<Message> & Pick<Message, 'type' | 'to'>): void {
  const m = message({ from: core.id, ...fields });
  const isVoteTraffic =
    m.type === MessageType.vote ||
    m.type === MessageType.voteResp ||
    m.type === MessageType.preVote ||
    m.type === MessageType.preVoteResp;
  if (isVoteTraffic) {
    assert(m.term !== 0, () => `vote traffic ${m.type} must carry a term`);
  } else if (m.type !== MessageType.prop && m.type !== MessageType.readIndex) {
    // Forwarded proposals and reads travel as local messages (term 0); all else carries our term.
    m.term = core.term;
  }
  core.outbox.push(m);
}

// ---- the work of entering a role (the role machine's entry actions call these) --------------

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

/** HIGHER_TERM's own work, before the follower's entry: the newer term, with no vote cast in it. */
export function adoptTerm(core: RaftCore, term: number): void {
  assert(term > core.term, () => `a higher term must exceed ours: got ${term}, have ${core.term}`);
  core.term = term;
  core.vote = noneId;
}

/** Entering follower: a fresh election timer in the current term, following `leaderId` if known. */
export function becomeFollower(core: RaftCore, leaderId: NodeId): void {
  reset(core, core.term);
  core.leaderId = leaderId;
}

/**
 * Entering pre-candidate: asks for votes in the next term without taking it, so a failed
 * pre-vote leaves no trace (term and vote unchanged). Never entered by a lone voter.
 */
export function becomePreCandidate(core: RaftCore): void {
  core.tracker.resetVotes();
  core.leaderId = noneId;
  const result = poll(core, core.id, true);
  assert(result === 'pending', () => `a pre-vote with other voters cannot be decided by our own vote, got ${result}`);
  requestVotes(core, MessageType.preVote, core.term + 1, undefined);
}

/**
 * Entering candidate: a new term voting for ourselves. Returns VOTE_WON when our own vote is a
 * quorum (a lone voter); a transfer's MsgVote is marked so that voters waive the leader lease.
 */
export function becomeCandidate(core: RaftCore, isTransfer: boolean): RoleChange | undefined {
  reset(core, core.term + 1);
  core.vote = core.id;
  if (poll(core, core.id, true) === 'won') return { type: 'VOTE_WON' };
  requestVotes(core, MessageType.vote, core.term, isTransfer ? campaignTransferContext : undefined);
  return undefined;
}

/** Entering leader: replicate from our last index and append an empty entry of our term. */
export function becomeLeader(core: RaftCore): void {
  // Voters that answered learn of us at once; a lone voter elected by its own vote has told no
  // one, and (as in etcd) its learners hear from it at the next heartbeat response.
  const votedWithOthers = core.tracker.votes.size > 1;
  reset(core, core.term);
  core.leaderId = core.id;
  const self = core.tracker.progress.get(core.id);
  if (self) self.becomeReplicate();
  // Conservatively treat any uncommitted tail as possibly holding a conf change.
  core.pendingConfIndex = core.log.lastIndex();
  appendEntries(core, [{ term: 0, index: 0, type: EntryType.normal, data: new Uint8Array(0) }]);
  if (votedWithOthers) broadcastAppend(core);
}

export function promotable(core: RaftCore): boolean {
  const self = core.tracker.progress.get(core.id);
  return self !== undefined && !self.isLearner;
}

// ---- elections -------------------------------------------------------------------------------

/** Whether a campaign may start now (etcd's MsgHup checks): a voter with no unapplied conf change. */
export function mayCampaign(core: RaftCore): boolean {
  // Campaigning with a committed but unapplied conf change could use a stale configuration.
  return promotable(core) && !hasUnappliedConfChange(core);
}

/** Whether a campaign starts with a pre-vote: when enabled, unless our own vote is a quorum. */
export function startsWithPreVote(core: RaftCore): boolean {
  return core.preVote && !core.tracker.isSingleton();
}

function hasUnappliedConfChange(core: RaftCore): boolean {
  if (core.log.committed <= core.log.applied) return false;
  const lo = Math.max(core.log.applied + 1, core.log.firstIndex());
  const entries = core.log.slice(lo, core.log.committed + 1, Number.MAX_SAFE_INTEGER);
  return entries.some((entry) => entry.type !== EntryType.normal);
}

function requestVotes(core: RaftCore, voteType: MessageType, term: number, context: Uint8Array | undefined): void {
  for (const id of core.tracker.voters) {
    if (id === core.id) continue;
    send(core, {
      type: voteType,
      to: id,
      term,
      index: core.log.lastIndex(),
      logTerm: core.log.lastTerm(),
      ...(context ? { context } : {}),
    });
  }
}

function poll(core: RaftCore, id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
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
  send(core, { type: MessageType.app, to, index: prevIndex, logTerm: prevTerm, entries, commit: commitToTell(core) });
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

/**
 * The commit index a leader may tell followers: what a majority of voters holds durably, the
 * leader counting only its stable log. The leader counts its unstable entries toward commit (it
 * writes in parallel with replicating, as etcd does), so a lone voter commits an entry as it
 * appends it, and the Ready that persists the entry also sends it to the learners. Told it is
 * committed, a learner could apply an entry the leader then loses in a crash before its write is
 * durable, and a later leader would commit another at that index.
 */
function commitToTell(core: RaftCore): number {
  const stableLastIndex = core.log.unstable.offset - 1;
  if (core.log.committed <= stableLastIndex) return core.log.committed;
  const durable = majorityCommittedIndex(core.tracker.voters, (id) =>
    id === core.id ? stableLastIndex : (core.tracker.progress.get(id)?.match ?? 0),
  );
  return Math.min(core.log.committed, durable);
}

export function broadcastAppend(core: RaftCore): void {
  for (const id of core.tracker.progress.keys()) if (id !== core.id) sendAppend(core, id);
}

export function broadcastHeartbeat(core: RaftCore, context?: Uint8Array): void {
  for (const [id, progress] of core.tracker.progress) {
    if (id === core.id) continue;
    // Never tell a follower to commit past what it is known to hold.
    const commit = Math.min(progress.match, commitToTell(core));
    send(core, { type: MessageType.heartbeat, to: id, commit, ...(context ? { context } : {}) });
  }
}

function sendTimeoutNow(core: RaftCore, to: NodeId): void {
  send(core, { type: MessageType.timeoutNow, to });
}

// ---- ticks -----------------------------------------------------------------------------------

/** Follower and candidate tick: ELECTION_TIMEOUT once the randomized timeout passes, if we may campaign. */
export function tickElection(core: RaftCore): RoleChange | undefined {
  core.electionElapsedTicks += 1;
  if (!promotable(core) || core.electionElapsedTicks < core.randomizedElectionTicks) return undefined;
  core.electionElapsedTicks = 0;
  return mayCampaign(core) ? { type: 'ELECTION_TIMEOUT' } : undefined;
}

/** Leader tick: heartbeats, giving up a stalled leadership transfer, and QUORUM_LOST under check-quorum. */
export function tickHeartbeat(core: RaftCore): RoleChange | undefined {
  core.heartbeatElapsedTicks += 1;
  core.electionElapsedTicks += 1;
  if (core.electionElapsedTicks >= core.electionTicks) {
    core.electionElapsedTicks = 0;
    if (core.checkQuorum && !checkQuorumActive(core)) return { type: 'QUORUM_LOST' };
    core.leadTransferee = noneId; // A transfer must finish within one election timeout.
  }
  if (core.heartbeatElapsedTicks >= core.heartbeatTicks) {
    core.heartbeatElapsedTicks = 0;
    broadcastHeartbeat(core, core.readOnly.lastPendingContext());
  }
  return undefined;
}

/** Whether a majority was active this election timeout; if so, starts the next round of checks. */
function checkQuorumActive(core: RaftCore): boolean {
  if (!core.tracker.quorumActive(core.id)) return false;
  for (const [id, progress] of core.tracker.progress) if (id !== core.id) progress.recentActive = false;
  return true;
}

// ---- stepping messages -----------------------------------------------------------------------

// Messages that only ever pass between the application and its own Raft node: RawNode refuses to
// step one, and the peer codec refuses one on the wire (a bug at the sender or a forged frame).
const localMessageTypes: ReadonlySet<number> = new Set<MessageType>([
  MessageType.hup,
  MessageType.beat,
  MessageType.unreachable,
  MessageType.snapStatus,
  MessageType.checkQuorum,
]);

export function isLocalMessage(type: MessageType): boolean {
  return localMessageTypes.has(type);
}

export function isResponseMessage(type: MessageType): boolean {
  return (
    type === MessageType.appResp ||
    type === MessageType.voteResp ||
    type === MessageType.heartbeatResp ||
    type === MessageType.unreachable ||
    type === MessageType.preVoteResp
  );
}

/**
 * Steps one peer message: the term rules and vote requests shared by every role, then `roleStep`,
 * the handler the role machine's current state binds. Local messages (MsgHup, MsgBeat,
 * MsgCheckQuorum) never come here: RawNode refuses them, and ticks and CAMPAIGN are events.
 */
export function stepMessage(core: RaftCore, m: Message, roleStep: RoleStep): RoleChange | undefined {
  const verdict = stepTerm(core, m);
  if (verdict === 'ignore') return undefined;
  if (verdict !== 'step') return verdict;
  if (m.type === MessageType.vote || m.type === MessageType.preVote) {
    handleVoteRequest(core, m);
    return undefined;
  }
  return roleStep(core, m);
}

/** Applies the term rules: 'step' on, 'ignore' the message, or a HIGHER_TERM to take first. */
function stepTerm(core: RaftCore, m: Message): 'step' | 'ignore' | RoleChange {
  if (m.term === 0 || m.term === core.term) return 'step';
  if (m.term > core.term) return stepHigherTerm(core, m);
  // A lower term. With check-quorum or pre-vote, a partitioned node with a high term would never
  // learn of the leader without an answer; the response carries our term and unsticks it.
  if ((core.checkQuorum || core.preVote) && (m.type === MessageType.heartbeat || m.type === MessageType.app)) {
    send(core, { type: MessageType.appResp, to: m.from });
  } else if (m.type === MessageType.preVote) {
    send(core, { type: MessageType.preVoteResp, to: m.from, term: core.term, reject: true });
  }
  return 'ignore';
}

function stepHigherTerm(core: RaftCore, m: Message): 'step' | 'ignore' | RoleChange {
  if (m.type === MessageType.vote || m.type === MessageType.preVote) {
    const force = m.context !== undefined && sameBytes(m.context, campaignTransferContext);
    const inLease = core.checkQuorum && core.leaderId !== noneId && core.electionElapsedTicks < core.electionTicks;
    if (!force && inLease) return 'ignore'; // A live leader is known: refuse to be disrupted.
  }
  if (m.type === MessageType.preVote) return 'step'; // Never change term for a pre-vote.
  if (m.type === MessageType.preVoteResp && !m.reject) return 'step'; // Term moves once we win.
  const knowsLeader = m.type === MessageType.app || m.type === MessageType.heartbeat || m.type === MessageType.snap;
  return { type: 'HIGHER_TERM', term: m.term, leaderId: knowsLeader ? m.from : noneId };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}

function handleVoteRequest(core: RaftCore, m: Message): void {
  const canVote =
    core.vote === m.from ||
    (core.vote === noneId && core.leaderId === noneId) ||
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

/** The follower's handler (etcd's stepFollower): forward client requests, obey the leader. */
export function stepFollower(core: RaftCore, m: Message): RoleChange | undefined {
  switch (m.type) {
    case MessageType.prop:
    case MessageType.transferLeader:
    case MessageType.readIndex:
      forwardToLeader(core, m); // A peer's request we cannot forward is dropped, as in etcd.
      return undefined;
    case MessageType.app:
    case MessageType.heartbeat:
    case MessageType.snap:
      core.electionElapsedTicks = 0;
      core.leaderId = m.from;
      handleFromLeader(core, m);
      return undefined;
    case MessageType.timeoutNow:
      // A transfer skips pre-vote: the old leader asked for this election explicitly.
      return mayCampaign(core) ? { type: 'TIMEOUT_NOW' } : undefined;
    case MessageType.readIndexResp:
      if (m.entries.length === 1) core.readStates.push({ index: m.index, requestCtx: (m.entries[0] as Entry).data });
      return undefined;
    default:
      return undefined;
  }
}

/** Sends a proposal, read or transfer request on to the leader; returns why not when there is none. */
export function forwardToLeader(core: RaftCore, m: Message): string | undefined {
  if (core.leaderId === noneId) return droppedReasons.noLeader;
  if (m.type === MessageType.transferLeader) {
    // The transferee travels in `from`, so the message goes on with it untouched.
    core.outbox.push({ ...m, to: core.leaderId, term: core.term });
    return undefined;
  }
  core.outbox.push({ ...m, to: core.leaderId, from: core.id, term: 0 });
  return undefined;
}

/** The pre-candidate's handler: count pre-votes, and step down for a leader of our term. */
export function stepPreCandidate(core: RaftCore, m: Message): RoleChange | undefined {
  return stepCampaigner(core, m, MessageType.preVoteResp);
}

/** The candidate's handler (etcd's stepCandidate): count votes, and step down for a leader of our term. */
export function stepCandidate(core: RaftCore, m: Message): RoleChange | undefined {
  return stepCampaigner(core, m, MessageType.voteResp);
}

function stepCampaigner(core: RaftCore, m: Message, responseType: MessageType): RoleChange | undefined {
  switch (m.type) {
    case MessageType.app:
    case MessageType.heartbeat:
    case MessageType.snap:
      assert(
        m.term === core.term,
        () => `a leader's message past the term rules must be of our term ${core.term}, got ${m.term}`,
      );
      return { type: 'LEADER_SEEN', leaderId: m.from }; // The follower we become handles it.
    case responseType:
      return tallyVoteResponse(core, m, responseType === MessageType.preVoteResp);
    default:
      return undefined; // Peers' proposals and reads are dropped: there is no leader to take them.
  }
}

function tallyVoteResponse(core: RaftCore, m: Message, isPreVote: boolean): RoleChange | undefined {
  const result = poll(core, m.from, !m.reject);
  if (result === 'won') return { type: isPreVote ? 'PRE_VOTE_WON' : 'VOTE_WON' };
  // A rejection from a newer term was already taken as HIGHER_TERM before we got here.
  if (result === 'lost') return { type: isPreVote ? 'PRE_VOTE_LOST' : 'VOTE_LOST' };
  return undefined;
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
  send(core, {
    type: MessageType.appResp,
    to: m.from,
    index: m.index,
    reject: true,
    rejectHint: hintIndex,
    logTerm: hintTerm,
  });
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

/**
 * The leader's handler (etcd's stepLeader): proposals, reads, and its followers' answers. It
 * never changes the role: a message of a higher term is taken by the term rules first.
 */
export function stepLeader(core: RaftCore, m: Message): undefined {
  switch (m.type) {
    case MessageType.prop:
      leaderPropose(core, m); // A forwarded proposal the leader drops is lost, as in etcd.
      return undefined;
    case MessageType.readIndex:
      leaderReadIndex(core, m);
      return undefined;
    default:
      stepLeaderFromPeer(core, m);
      return undefined;
  }
}

/** Appends a proposal at the leader; returns why not when it cannot take one. */
export function leaderPropose(core: RaftCore, m: Message): string | undefined {
  assert(m.entries.length > 0, 'empty proposal');
  if (!core.tracker.progress.has(core.id)) return droppedReasons.leaderNotMember;
  if (core.leadTransferee !== noneId) return droppedReasons.transferInProgress;
  const entries = m.entries.map((entry, offset) => {
    if (entry.type === EntryType.normal) return entry;
    // Only one configuration change may be in flight; later ones become no-ops.
    if (core.pendingConfIndex > core.log.applied) return { ...entry, type: EntryType.normal, data: new Uint8Array(0) };
    core.pendingConfIndex = core.log.lastIndex() + offset + 1;
    return entry;
  });
  appendEntries(core, entries);
  broadcastAppend(core);
  return undefined;
}

/**
 * ReadIndex at the leader: confirm leadership by a heartbeat round, or answer at once if alone.
 * Returns why not when it cannot serve one: a leader that removed itself leads on only to pass on
 * its commit index, and the voters left may already have elected a leader it does not know of.
 */
export function leaderReadIndex(core: RaftCore, m: Message): string | undefined {
  if (!core.tracker.progress.has(core.id)) return droppedReasons.leaderNotMember;
  if (core.tracker.isSingleton()) {
    respondToReadIndex(core, m, core.log.committed);
    return undefined;
  }
  // Until an entry of this term commits, our commit index may be behind the true one.
  if (core.log.term(core.log.committed) !== core.term) {
    core.pendingReadIndexMessages.push(m);
    return undefined;
  }
  const context = (m.entries[0] as Entry).data;
  core.readOnly.addRequest(core.log.committed, m, context);
  // The leader acknowledges itself, then asks the others.
  const acks = core.readOnly.recvAck(core.id, context);
  if (acks) maybeReleaseReads(core, acks, context);
  broadcastHeartbeat(core, context);
  return undefined;
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
  return tracker.confState();
}

/**
 * The leader's follow-up to an applied conf change: DEMOTED when it became a learner (the rest
 * elect a new leader after their timeout), else commit and replicate under the new quorum.
 *
 * A leader that removed itself keeps leading, as etcd raft 3.4 does, until its member stops: its
 * heartbeats carry the commit index that holds the removal to the voters left, which apply it
 * only once they learn it is committed. Stepping down at once could leave them waiting forever:
 * the last voter of a two-voter cluster would still count the removed member and need its vote.
 * It takes no proposals or reads meanwhile (it is not a member).
 */
export function leaderAfterConfChange(core: RaftCore): RoleChange | undefined {
  const self = core.tracker.progress.get(core.id);
  if (self?.isLearner === true) return { type: 'DEMOTED' };
  if (core.leadTransferee !== noneId && !core.tracker.voters.has(core.leadTransferee)) core.leadTransferee = noneId;
  // The quorum changed: the commit index may move, and new members need entries.
  if (maybeCommit(core)) broadcastAppend(core);
  else for (const id of core.tracker.progress.keys()) if (id !== core.id) maybeSendAppend(core, id, false);
  return undefined;
}
