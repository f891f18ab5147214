/**
 * etcd's raft.go: the loop between the Raft node and the world. It ticks the node, hands it the
 * proposals and read requests made since its last pass, and handles each Ready in turn: the WAL
 * appends (and fsyncs) its entries, its messages go to peers (a leader's at once, everyone else's
 * once durable), and once durable its committed entries go to the applier, its read states to
 * the read-index queue, and a snapshot to be installed. One Ready is handled at a time; proposals
 * arriving while the WAL fsyncs pile up in the Raft log and go to disk together in the next Ready
 * (group commit). It is separate so that the order of persist, send and apply is in one place.
 */
import type { AuthInfo } from '../../src/auth/types.js';
import { errors } from '../../src/api/errors.js';
import { proposalTimeoutError } from '../../src/server/proposal-timeout.js';
import { encodeProposal } from '../../src/api/proposal-codec.js';
import type { ProposalBody } from '../../src/api/types.js';
import { assert } from '../../src/lib/assert.js';
import { goDurationString } from '../../src/lib/go-duration.js';
import { initialTickAdvancePollMs, initialTickAdvancePollsMax, readiesInFlightMax } from '../../src/lib/limits.js';
import { advancesOnceApplied, readiesInFlight, sendsBeforeDurable } from '../../src/raft/ready-order.js';
import type { ConfChange } from '../../src/raft/conf-change.js';
import type { MemoryStorage } from '../../src/raft/storage.js';
import { type Entry, type Message, MessageType, type NodeId, RaftRole, type Ready } from '../../src/raft/types.js';
import type { ProposalWaiters } from '../../src/server/proposal-waiters.js';
import type { ReadIndexQueue } from '../../src/server/read-index-queue.js';
import type { Waiter } from '../../src/server/waiters.js';
import { formatId } from '../../src/membership/ids.js';
import type { MemberLifecycle } from '../../machines/member-lifecycle.js';
import type { RawNode } from '../../machines/raw-node.js';
import type { RaftTransport } from '../peer/links.js';
import type { Logger } from '../shared/logger.js';
import { failpoint, failpointAsync, failpointsOn } from '../shared/failpoints.js';
import type { WalClient } from '../wal/client.js';
import type { Applied, Applier } from './apply.js';
import { pause } from './clock.js';
import { CommitNoticeHold } from './commit-notices.js';
import type { Membership } from './membership.js';
import type { RoleTimeline } from './role-timeline.js';
import type { Snapshots } from './snapshots.js';

/** The longest a commit notice to a follower with no client waiting waits for company. */
const commitNoticeHoldMs = 5;

/** What the loop needs from the rest of the member, each given at construction. */
export interface RaftLoopParts {
  memberId: bigint;
  heartbeatIntervalMs: number;
  raft: RawNode;
  storage: MemoryStorage;
  wal: Pick<WalClient, 'append' | 'writeCommit'>;
  transport: Pick<RaftTransport<unknown>, 'send'>;
  lifecycle: MemberLifecycle;
  proposals: ProposalWaiters<Applied>;
  reads: ReadIndexQueue<Waiter<void>>;
  applier: Pick<Applier, 'applyEntries' | 'index' | 'leadershipChanged'>;
  snapshots: Pick<Snapshots, 'saveIncoming' | 'install' | 'takeIfDue' | 'send'>;
  membership: Pick<Membership, 'hasPeers' | 'isSoleVoter' | 'trackPeerActivity' | 'activePeerCount'>;
  /** --initial-election-tick-advance: fast-forward the election ticks once the peers are linked. */
  initialElectionTickAdvance: boolean;
  electionTicks: number;
  /** etcd's request timeout: a proposal not applied by then fails (expireProposals). */
  requestTimeoutMs: number;
  /** Where role transitions and leader changes are kept for the dashboard. */
  timeline: Pick<RoleTimeline, 'record'>;
  logger: Logger;
  fail: (error: Error) => void;
}

/** What the loop counts for metrics: etcd's leader changes and late leader heartbeats. */
export interface RaftLoopCounts {
  leaderChanges: number;
  heartbeatSendFailures: number;
}

export class RaftLoop {
  readonly counts: RaftLoopCounts = { leaderChanges: 0, heartbeatSendFailures: 0 };
  /** The leader the last soft state named (0 for none), to count changes as etcd does. */
  private leaderSeen: NodeId = 0n;
  /** When the last new leader was seen (performance.now()), for the proposal timeouts' message. */
  private leaderElectedMs: number | undefined;
  /** The role the last soft state named; every member starts as a follower. */
  private roleSeen: RaftRole = RaftRole.follower;
  /** When a heartbeat last left for each follower (performance.now() ms). */
  private readonly heartbeatSentAt = new Map<NodeId, number>();
  private drainScheduled = false;
  private draining = false;
  /** The Ready between raft.ready() and raft.advance(); there is never more than one. */
  private readyInHand: Ready | undefined;
  /** Readies handed to the WAL, and Readies finished: they finish in the order they started. */
  private readiesStarted = 0;
  private readiesFinished = 0;
  private applyChain: Promise<void> = Promise.resolve();
  private appendsInFlight = 0;
  /** holdingApplies work not yet settled: while there is some, no Ready finishes outside the chain. */
  private holdsPending = 0;
  /** Commit notices to followers that wait for the next message to them (commit-notices.ts). */
  private readonly commitNotices = new CommitNoticeHold();
  private heldCommitNoticesTimer: NodeJS.Timeout | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private tickAdvancePoller: NodeJS.Timeout | undefined;

  constructor(private readonly parts: RaftLoopParts) {}

  /**
   * Queues a proposal for the next pass; resolves once its entry is applied. `caller` is who made
   * it, given only while auth is enabled (its apply checks the caller's permissions again).
   */
  propose(body: ProposalBody, caller?: AuthInfo): Promise<Applied> {
    const { lifecycle, proposals } = this.parts;
    if (lifecycle.stopRequested) return Promise.reject(errors.stopped());
    if (lifecycle.fatalError !== undefined) return Promise.reject(errors.corrupt());
    const id = proposals.issueId();
    const data = encodeProposal(
      caller === undefined
        ? { origin: this.parts.memberId, id, body }
        : { origin: this.parts.memberId, id, body, caller },
    );
    return new Promise<Applied>((resolve, reject) => {
      proposals.add(id, data, resolve, reject, performance.now() + this.parts.requestTimeoutMs);
      this.wake();
    });
  }

  /** Proposes a conf change at once; throws when Raft drops it (no leader). */
  proposeConfChange(change: ConfChange): void {
    this.parts.raft.proposeConfChange(change);
    this.wake();
  }

  /** Asks Raft to hand leadership to `to`. */
  transferLeader(to: NodeId): void {
    this.parts.raft.transferLeader(to);
    this.wake();
  }

  /** Inbound Raft messages from peers: stepped as one batch, then the loop runs. */
  receive(messages: Message[]): void {
    if (!this.parts.lifecycle.acceptsRaftMessages) return;
    try {
      this.parts.raft.stepMany(messages);
    } catch (error) {
      this.parts.logger.warn({ error: (error as Error).message }, 'dropped Raft messages the core refused');
    }
    this.wake();
  }

  /** Schedules a pass of the loop soon; cheap to call often. */
  wake(): void {
    if (this.drainScheduled || this.parts.lifecycle.stopRequested) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      void this.drain();
    });
  }

  /** Runs the loop until Raft has nothing more to hand over and everything handed over is applied. */
  async catchUp(): Promise<void> {
    await this.drain();
    await this.applyChain;
  }

  /**
   * Starts the heartbeat ticker. As etcd's adjustTicks: a sole voter campaigns at once rather than
   * after an election timeout; with --initial-election-tick-advance, members of a larger cluster
   * fast-forward all but two election ticks once links to more than one peer are up.
   */
  startTicking(): void {
    assert(this.ticker === undefined, 'the Raft loop starts ticking twice');
    const { raft, membership, logger, electionTicks } = this.parts;
    if (membership.isSoleVoter()) {
      raft.campaign();
      this.wake();
    } else if (this.parts.initialElectionTickAdvance) {
      logger.info({ 'election-ticks': electionTicks }, 'starting initial election tick advance');
      this.advanceTicksOncePeersLink();
    } else {
      logger.info({ 'election-ticks': electionTicks }, 'skipping initial election tick advance');
    }
    this.ticker = setInterval(() => {
      raft.tick();
      membership.trackPeerActivity();
      this.expireProposals();
      this.wake();
    }, this.parts.heartbeatIntervalMs);
    this.ticker.unref();
  }

  /** Polls the peer links (etcd: every 50 ms for up to 5 s) and fast-forwards electionTicks - 2 ticks once more than one is up. */
  private advanceTicksOncePeersLink(): void {
    const { raft, membership, logger, electionTicks, heartbeatIntervalMs } = this.parts;
    let polls = 0;
    this.tickAdvancePoller = setInterval(() => {
      polls++;
      const activePeers = membership.activePeerCount();
      if (activePeers <= 1 && polls < initialTickAdvancePollsMax) return;
      clearInterval(this.tickAdvancePoller);
      if (activePeers <= 1) return;
      const ticks = Math.max(0, electionTicks - 2);
      logger.info(
        {
          'local-member-id': formatId(this.parts.memberId),
          'forward-ticks': ticks,
          'forward-duration': goDurationString(ticks * heartbeatIntervalMs * 1e6),
          'election-ticks': electionTicks,
          'election-timeout': goDurationString(electionTicks * heartbeatIntervalMs * 1e6),
          'active-remote-members': activePeers,
        },
        'initialized peer connections; fast-forwarding election ticks',
      );
      for (let tick = 0; tick < ticks; tick++) raft.tick();
      this.wake();
    }, initialTickAdvancePollMs);
    this.tickAdvancePoller.unref();
  }

  /** Stops the ticker and the held commit notices' timer (stop() of the member). */
  stopTicking(): void {
    clearInterval(this.tickAdvancePoller);
    if (this.ticker !== undefined) clearInterval(this.ticker);
    clearTimeout(this.heldCommitNoticesTimer);
  }

  /**
   * Runs `work` once every Ready handed over so far is applied, and holds back the applying of
   * later ones until it settles (etcd's defragmentation holds the backend's write lock the same
   * way). Entries still reach the WAL and peers meanwhile.
   */
  holdingApplies<T>(work: () => Promise<T>): Promise<T> {
    const run = this.applyChain.then(work);
    this.holdsPending++;
    const released = () => {
      this.holdsPending--;
    };
    this.applyChain = run.then(released, released);
    return run;
  }

  /** Resolves once the pass in progress (if any) is over and every Ready handed over is finished. */
  async settle(): Promise<void> {
    while (this.draining) await pause(1);
    await this.applyChain;
  }

  /** Handles Readies one at a time until the node has nothing more to hand over. */
  private async drain(): Promise<void> {
    const { raft, lifecycle } = this.parts;
    if (this.draining || lifecycle.fatalError !== undefined) return;
    this.draining = true;
    try {
      this.flushProposals();
      this.flushReadRequests();
      while (raft.hasReady()) {
        // Bound the pipeline: at most pipelineDepth() Readies wait on the WAL at once.
        if (this.appendsInFlight >= this.pipelineDepth()) await this.applyChain;
        // Proposals that came in while this loop waited join this Ready.
        this.flushProposals();
        const applying = this.handleReady(raft.ready());
        if (applying !== undefined) await applying;
        this.flushProposals();
        this.flushReadRequests();
      }
    } catch (error) {
      this.parts.fail(error as Error);
    } finally {
      this.draining = false;
    }
  }

  /**
   * Hands a Ready over and advances Raft past it: at once, or (a Ready committing a conf change)
   * once it is applied, returning that wait, as etcd's raft loop waits for the apply of a conf
   * change. Advanced earlier, Raft would take the change as applied while its configuration is
   * still the old one, and could campaign or count votes in it.
   */
  private handleReady(ready: Ready): Promise<void> | undefined {
    assert(this.readyInHand === undefined, 'a Ready was taken while another was still being handled');
    this.readyInHand = ready;
    const finished = this.startReady(ready);
    const advance = () => {
      this.parts.raft.advance(ready);
      this.readyInHand = undefined;
    };
    if (advancesOnceApplied(ready)) {
      assert(finished !== undefined, 'a Ready committing a conf change finished before it was applied');
      return finished.then(advance);
    }
    advance();
    return undefined;
  }

  /**
   * Hands every proposal made since the last pass to Raft as one batch: one machine event and one
   * append broadcast for all of them. Without a leader they wait for one, as etcd's proposals wait
   * for raft to take them, until their request timeout (expireProposals); a batch the leader's
   * Raft drops (a leadership transfer) fails at once.
   */
  private flushProposals(): void {
    const { proposals, raft } = this.parts;
    if (!proposals.hasUnproposed || raft.status().leaderId === 0n) return;
    const batch = proposals.takeBatch();
    try {
      raft.proposeMany(batch.map((proposal) => proposal.data));
    } catch {
      proposals.failBatch(batch, errors.proposalDropped);
    }
  }

  /**
   * Fails the proposals whose request timeout passed, as etcd's: one Raft never took (no leader
   * all along) with the context's own "context deadline exceeded", one it took but did not commit
   * in time with "request timed out" (src/server/proposal-timeout.ts says which).
   */
  private expireProposals(): void {
    const { proposals, requestTimeoutMs, electionTicks, heartbeatIntervalMs } = this.parts;
    const electionTimeoutMs = electionTicks * heartbeatIntervalMs;
    const leaderElectedMs = this.leaderElectedMs;
    for (const { waiter, proposed, deadlineMs } of proposals.expire(performance.now()))
      waiter.reject(
        proposed
          ? proposalTimeoutError({ startMs: deadlineMs - requestTimeoutMs, leaderElectedMs, electionTimeoutMs })
          : errors.deadlineExceeded(),
      );
  }

  private flushReadRequests(): void {
    const { reads, raft } = this.parts;
    if (!reads.hasUnsent) return;
    if (raft.status().leaderId === 0n) return; // wait for a leader; the ticker retries
    raft.readIndex(reads.takeRequest() as Uint8Array);
  }

  /** Readies that may wait on the WAL at once: several only for a member alone (src/raft/ready-order.ts). */
  private pipelineDepth(): number {
    return readiesInFlight(this.parts.membership.hasPeers());
  }

  /**
   * Hands a Ready's entries to the WAL thread and queues the rest of its work behind their fsync,
   * so the next Ready can be written while this one syncs: nothing is applied, answered or read
   * until it is durable, and Readies finish in order because the WAL acknowledges in order.
   * A Ready with nothing to persist or apply while nothing is in flight (an idle member's
   * heartbeat and its response) finishes at once; undefined is then returned.
   */
  private startReady(ready: Ready): Promise<void> | undefined {
    const { storage, wal, snapshots } = this.parts;
    // A leader's messages go out at once, in parallel with its own fsync; everyone else's wait
    // for durability (a follower must not acknowledge what it could still lose).
    const sentEarly = sendsBeforeDurable(this.parts.raft.role());
    if (sentEarly && failpointsOn) failpoint('raftBeforeLeaderSend');
    if (sentEarly) this.sendMessages(this.holdCommitNotices(ready.messages, ready.committedEntries));
    const snapshot = ready.snapshot;
    if (snapshot !== undefined) snapshots.saveIncoming(snapshot);
    const marker =
      snapshot === undefined ? undefined : { index: snapshot.metadata.index, term: snapshot.metadata.term };
    // A Ready that only moves the commit index need not wait for the disk (Raft's mustSync is false).
    const mustPersist = ready.mustSync || marker !== undefined;
    if (!mustPersist && ready.hardState !== undefined) wal.writeCommit(ready.hardState);
    if (mustPersist && failpointsOn) failpoint('raftBeforeSave');
    const durable = mustPersist ? wal.append(ready.entries, ready.hardState, marker) : undefined;
    if (ready.hardState !== undefined) storage.setHardState(ready.hardState);
    if (snapshot !== undefined) storage.applySnapshot(snapshot);
    if (ready.entries.length > 0) storage.append(ready.entries);
    this.appendsInFlight++;
    assert(
      this.appendsInFlight <= readiesInFlightMax,
      () => `${this.appendsInFlight} Readies wait on the WAL; at most ${readiesInFlightMax} may`,
    );
    const sequence = ++this.readiesStarted;
    const complete = () => {
      this.appendsInFlight--;
      assert(
        sequence === ++this.readiesFinished,
        () => `Ready ${sequence} finished as number ${this.readiesFinished}; Readies finish in order`,
      );
      if (this.parts.lifecycle.fatalError === undefined) this.finishReady(ready, sentEarly);
    };
    if (this.finishesAtOnce(ready, mustPersist)) {
      complete();
      return undefined;
    }
    let saved = this.applyChain.then(() => durable);
    if (failpointsOn) saved = saved.then(() => failpointAsync('raftAfterSave'));
    this.applyChain = saved
      .then(() => (snapshot === undefined ? complete() : this.installSnapshot(snapshot).then(complete)))
      .catch((error: Error) => this.parts.fail(error));
    return this.applyChain;
  }

  /**
   * Whether a Ready can finish without the chain: nothing of it waits on the disk, no earlier Ready
   * or held apply is unfinished (so it would finish next anyway), and it applies nothing. The
   * failpoints between saving and sending keep the chain, so they fire where they always did.
   */
  private finishesAtOnce(ready: Ready, mustPersist: boolean): boolean {
    return (
      !mustPersist &&
      ready.snapshot === undefined &&
      ready.committedEntries.length === 0 &&
      this.appendsInFlight === 1 &&
      this.holdsPending === 0 &&
      !failpointsOn
    );
  }

  /** Installs a snapshot Raft accepted, between etcd's failpoints around applying it. */
  private async installSnapshot(snapshot: NonNullable<Ready['snapshot']>): Promise<void> {
    if (failpointsOn) await failpointAsync('raftBeforeApplySnap');
    await this.parts.snapshots.install(snapshot);
    if (failpointsOn) await failpointAsync('raftAfterApplySnap');
  }

  private finishReady(ready: Ready, sentEarly: boolean): void {
    const { applier, reads } = this.parts;
    if (ready.softState !== undefined) {
      const { leaderId, role } = ready.softState;
      const term = this.parts.raft.status().term;
      if (leaderId !== 0n && leaderId !== this.leaderSeen) {
        this.counts.leaderChanges++;
        this.leaderElectedMs = performance.now();
        for (const read of reads.takeUnanswered()) read.reject(errors.leaderChanged());
      }
      const [leaderBefore, from] = [this.leaderSeen, this.roleSeen];
      this.leaderSeen = leaderId;
      this.roleSeen = role;
      this.heartbeatSentAt.clear();
      applier.leadershipChanged(role);
      this.parts.logger.info({ role, leader: formatId(leaderId), term }, 'raft role changed');
      const cause = this.parts.raft.roleEnteredBy();
      this.parts.timeline.record({ term, from, to: role, leaderBefore, leaderAfter: leaderId, cause });
    }
    // Non-leaders' messages leave only once this Ready is durable: a follower never acknowledges
    // entries it could still lose, and a candidate never asks for votes before its own is on disk.
    if (!sentEarly && failpointsOn) failpoint('raftBeforeFollowerSend');
    if (!sentEarly) this.sendMessages(ready.messages);
    applier.applyEntries(ready.committedEntries);
    this.parts.snapshots.takeIfDue();
    for (const readState of ready.readStates) reads.confirm(readState.requestCtx, readState.index);
    for (const read of reads.takeDue(applier.index)) read.resolve();
  }

  /** The leader's messages of a Ready, with commit notices no client waits on held back a while. */
  private holdCommitNotices(messages: Message[], committed: readonly Entry[]): Message[] {
    const out = this.commitNotices.route(messages, committed);
    if (this.commitNotices.size > 0)
      this.heldCommitNoticesTimer ??= setTimeout(() => this.sendHeldCommitNotices(), commitNoticeHoldMs);
    return out;
  }

  private sendHeldCommitNotices(): void {
    this.heldCommitNoticesTimer = undefined;
    if (!this.parts.lifecycle.stopRequested) this.sendMessages(this.commitNotices.takeAll());
  }

  /** Sends a finished Ready's messages; a snapshot goes on its own stream with the backend database. */
  private sendMessages(messages: Message[]): void {
    if (messages.length === 0) return;
    const { transport } = this.parts;
    for (const message of messages) if (message.type === MessageType.heartbeat) this.noteHeartbeat(message.to);
    // Nearly every Ready has no snapshot: check before building filtered copies.
    if (!messages.some((message) => message.type === MessageType.snap)) return transport.send(messages);
    for (const message of messages) if (message.type === MessageType.snap) this.sendSnapshot(message);
    transport.send(messages.filter((message) => message.type !== MessageType.snap));
  }

  /**
   * etcd's timeout detector: a heartbeat that leaves for a follower more than two heartbeat
   * intervals after the one before it was late (the leader is likely overloaded), and counts.
   */
  private noteHeartbeat(to: NodeId): void {
    const now = performance.now();
    const previous = this.heartbeatSentAt.get(to);
    this.heartbeatSentAt.set(to, now);
    if (previous !== undefined && now - previous > 2 * this.parts.heartbeatIntervalMs) {
      this.counts.heartbeatSendFailures++;
      this.parts.logger.warn(
        { to: formatId(to), 'heartbeat-interval': `${this.parts.heartbeatIntervalMs}ms` },
        'leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk',
      );
    }
  }

  /** Raft learns how a snapshot send went; a failure also marks the follower unreachable, so it is probed. */
  private sendSnapshot(message: Message): void {
    void this.parts.snapshots.send(message).then((ok) => {
      if (this.parts.lifecycle.stopRequested) return;
      if (!ok) this.parts.raft.reportUnreachable(message.to);
      this.parts.raft.reportSnapshot(message.to, ok);
      this.wake();
    });
  }
}
