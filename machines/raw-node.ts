/**
 * RawNode: the application's handle on one Raft member, as etcd raft's RawNode. It feeds
 * proposals and commands to the role machine as one event each, and ticks and message batches
 * through the driver, which makes only their role changes events unless the machine is inspected
 * (RaftRoleDriver.tick, stepMessages); it hands back work as a Ready: persist, send, apply, then advance(). The role it reports is the
 * machine's state; a dropped proposal or read throws ProposalDroppedError with the reason the
 * machine's event left in its context.
 */
import { type MachineInspect, RaftRoleDriver, type RaftRoleCommand, type RaftRoleDriverMode } from './raft-role.js';
import { assert } from '../src/lib/assert.js';
import { type ConfChange, encodeConfChange } from '../src/raft/conf-change.js';
import { ProposalDroppedError, StepLocalMessageError } from '../src/raft/errors.js';
import { type RaftCore, isLocalMessage, isResponseMessage, newRaftCore } from '../src/raft/raft.js';
import type { RaftStorage } from '../src/raft/storage.js';
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  type NodeId,
  RaftRole,
  type Ready,
  type SoftState,
} from '../src/raft/types.js';

export { MemoryStorage, type RaftStorage } from '../src/raft/storage.js';
export { ProposalDroppedError } from '../src/raft/errors.js';
export { type ConfChange, ConfChangeType, decodeConfChange, encodeConfChange } from '../src/raft/conf-change.js';

export interface RaftConfig {
  id: NodeId;
  electionTicks: number;
  heartbeatTicks: number;
  storage: RaftStorage;
  /** The last index the application applied before this start (0 for a fresh member). */
  appliedIndex: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxEntriesPerMessage: number;
  maxInflightMessages: number;
  /** Seeds the randomized election timeout. */
  seed: number;
  /** How the role machine runs: `actor` (default) or `pure` for simulators. */
  driverMode?: RaftRoleDriverMode;
  /** Sees the role machine's inspection events (actors/inspect); absent, none are made for it. */
  inspect?: MachineInspect;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  applied: number;
  leaderId: NodeId;
  role: RaftRole;
  progress?: Map<NodeId, { match: number; next: number; state: string }>;
}

/** Committed entries handed out per Ready; bounds the work one Ready asks of the application. */
export const readyCommittedEntriesMax = 4096;

export class RawNode {
  private readonly driver: RaftRoleDriver;
  private readonly core: RaftCore;
  private previousSoftState: SoftState;
  private previousHardState: HardState;

  constructor(config: RaftConfig) {
    this.core = newRaftCore(config);
    this.driver = new RaftRoleDriver(this.core, config.driverMode ?? 'actor', config.inspect);
    this.previousSoftState = this.softState();
    this.previousHardState = this.hardState();
  }

  /** Advances logical time by one tick (heartbeat and election timers count ticks). */
  tick(): void {
    this.driver.tick();
  }

  /** Starts an election now (a pre-vote first when enabled). */
  campaign(): void {
    this.send({ type: 'CAMPAIGN' });
  }

  /** Proposes data to be appended; throws ProposalDroppedError when there is no leader to take it. */
  propose(data: Uint8Array): void {
    this.proposeEntry({ term: 0, index: 0, type: EntryType.normal, data });
  }

  /** Proposes several payloads as one machine event (one MsgProp), all or none. */
  proposeMany(data: readonly Uint8Array[]): void {
    if (data.length === 0) return;
    this.send({ type: 'PROPOSE', entries: data.map((d) => ({ term: 0, index: 0, type: EntryType.normal, data: d })) });
    this.throwIfDropped();
  }

  /** Proposes a single-member configuration change; apply it with applyConfChange once committed. */
  proposeConfChange(change: ConfChange): void {
    this.proposeEntry({ term: 0, index: 0, type: EntryType.confChange, data: encodeConfChange(change) });
  }

  /** Applies a committed configuration change and returns the resulting configuration. */
  applyConfChange(change: ConfChange): ConfState {
    this.send({ type: 'APPLY_CONF_CHANGE', change });
    const confState = this.driver.lastConfState();
    assert(confState !== undefined, 'conf change produced no configuration');
    return confState;
  }

  /** Steps a message received from a peer. */
  step(message: Message): void {
    this.stepMany([message]);
  }

  /** Steps a batch of peer messages as one machine event. */
  stepMany(messages: readonly Message[]): void {
    const accepted = messages.filter((m) => {
      if (isLocalMessage(m.type)) throw new StepLocalMessageError(m.type);
      // Responses from members no longer in the configuration are noise.
      return !isResponseMessage(m.type) || this.core.tracker.progress.has(m.from);
    });
    if (accepted.length > 0) this.driver.stepMessages(accepted);
  }

  /** Requests a linearizable read point; a ReadState tagged `requestCtx` appears in a later Ready. */
  readIndex(requestCtx: Uint8Array): void {
    this.send({ type: 'READ_INDEX', requestCtx });
    this.throwIfDropped();
  }

  /** Asks the leader to hand leadership to `to`; best effort, as in etcd. */
  transferLeader(to: NodeId): void {
    this.send({ type: 'TRANSFER_LEADER', to });
  }

  /** Tells the leader that a message to `id` could not be delivered. */
  reportUnreachable(id: NodeId): void {
    this.send({ type: 'REPORT_UNREACHABLE', id });
  }

  /** Tells the leader whether the snapshot sent to `id` was delivered and applied. */
  reportSnapshot(id: NodeId, succeeded: boolean): void {
    this.send({ type: 'REPORT_SNAPSHOT', id, rejected: !succeeded });
  }

  /** Whether ready() has anything to hand over; asked after every event, so it allocates nothing. */
  hasReady(): boolean {
    const core = this.core;
    const soft = this.previousSoftState;
    const hard = this.previousHardState;
    return (
      core.leaderId !== soft.leaderId ||
      this.driver.role() !== soft.role ||
      core.term !== hard.term ||
      core.vote !== hard.vote ||
      core.log.committed !== hard.commit ||
      core.log.unstable.snapshot !== undefined ||
      core.log.unstable.entries.length > 0 ||
      core.log.hasNextCommittedEntries() ||
      core.outbox.length > 0 ||
      core.readStates.length > 0
    );
  }

  /** Collects pending work. Call advance() with it before the next ready(). */
  ready(): Ready {
    const core = this.core;
    const softState = this.softState();
    const hardState = this.hardState();
    const entries = core.log.unstableEntries();
    const committedEntries = core.log.nextCommittedEntries(readyCommittedEntriesMax);
    const ready: Ready = {
      readStates: core.readStates,
      entries,
      committedEntries,
      messages: core.outbox,
      mustSync:
        entries.length > 0 ||
        hardState.term !== this.previousHardState.term ||
        hardState.vote !== this.previousHardState.vote ||
        committedEntries.some((entry) => entry.type !== EntryType.normal),
    };
    if (!sameSoftState(softState, this.previousSoftState)) ready.softState = softState;
    if (!sameHardState(hardState, this.previousHardState)) ready.hardState = hardState;
    if (core.log.unstable.snapshot) ready.snapshot = core.log.unstable.snapshot;
    core.outbox = [];
    core.readStates = [];
    this.previousSoftState = softState;
    this.previousHardState = hardState;
    return ready;
  }

  /**
   * Marks a Ready's entries and snapshot persisted and its committed entries applied. This is log
   * bookkeeping that never changes a role, so it is plain code rather than a machine event (one
   * event per Ready measured a few percent of a busy member).
   */
  advance(ready: Ready): void {
    const log = this.core.log;
    const lastEntry: Entry | undefined = ready.entries[ready.entries.length - 1];
    const lastCommitted: Entry | undefined = ready.committedEntries[ready.committedEntries.length - 1];
    const snapshotIndex = ready.snapshot?.metadata.index ?? 0;
    if (snapshotIndex > 0) log.stableSnapTo(snapshotIndex);
    if (lastEntry !== undefined) log.stableTo(lastEntry.index, lastEntry.term);
    const applied = Math.max(lastCommitted?.index ?? 0, snapshotIndex);
    if (applied > log.applied) log.appliedTo(applied);
  }

  status(): RaftStatus {
    const core = this.core;
    const status: RaftStatus = {
      id: core.id,
      term: core.term,
      vote: core.vote,
      commit: core.log.committed,
      applied: core.log.applied,
      leaderId: core.leaderId,
      role: this.driver.role(),
    };
    if (status.role === RaftRole.leader) {
      status.progress = new Map();
      for (const [id, p] of core.tracker.progress)
        status.progress.set(id, { match: p.match, next: p.next, state: p.state });
    }
    return status;
  }

  /** The current role, without the rest of status() (a leader's status builds its progress map). */
  role(): RaftRole {
    return this.driver.role();
  }

  /** The named event of the role machine that entered the current role (VOTE_WON, HIGHER_TERM, ...). */
  roleEnteredBy(): string {
    return this.driver.enteredBy();
  }

  /** The current configuration as the core sees it. */
  confState(): ConfState {
    return this.core.tracker.confState();
  }

  /** Stops the underlying actor (a no-op in pure mode). */
  stop(): void {
    this.driver.stop();
  }

  private proposeEntry(entry: Entry): void {
    this.send({ type: 'PROPOSE', entries: [entry] });
    this.throwIfDropped();
  }

  /** Throws for the PROPOSE or READ_INDEX just sent if the machine dropped it. */
  private throwIfDropped(): void {
    const reason = this.driver.lastDroppedReason();
    if (reason !== undefined) throw new ProposalDroppedError(reason);
  }

  private send(event: RaftRoleCommand): void {
    this.driver.send(event);
  }

  private softState(): SoftState {
    return { leaderId: this.core.leaderId, role: this.driver.role() };
  }

  private hardState(): HardState {
    return { term: this.core.term, vote: this.core.vote, commit: this.core.log.committed };
  }
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leaderId === b.leaderId && a.role === b.role;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
