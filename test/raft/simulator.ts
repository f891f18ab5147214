/**
 * A seeded cluster simulator over N RawNodes with a fake clock, disk and network. Time moves in
 * ticks; within a tick, due messages are delivered in random order, Readies are persisted to a
 * FakeDisk whose fsync takes a random number of ticks, and a member's replies leave only once
 * their Ready is durable (a leader sends first and writes in parallel, as etcd does). Faults:
 * drops, delays, reordering, duplicates, two-way and one-way partitions, crashes that lose
 * unsynced (or tear) writes, compaction, leadership transfer and clock drift. Clients write
 * unique values to a few keys and issue ReadIndex reads; checkers run on every step. After the
 * safety phase, a liveness phase heals everything and requires a fresh write applied everywhere.
 * Options add membership changes (sim-membership.ts), a real src/mvcc key space per member
 * (sim-kv.ts) and the member's own Ready order (src/raft/ready-order.ts). A seed replays exactly.
 */
import { Prng } from '../../src/lib/prng.js';
import { errors } from '../../src/api/errors.js';
import { decodeMemberChange } from '../../src/membership/cluster-member.js';
import { learnerInSync } from '../../src/membership/reconfig.js';
import { ProposalDroppedError } from '../../src/raft/errors.js';
import { RawNode } from '../../machines/raw-node.js';
import { type ConfChange, ConfChangeType, decodeConfChange } from '../../src/raft/conf-change.js';
import type { RaftCore } from '../../src/raft/raft.js';
import { advancesOnceApplied, readiesInFlight, sendsBeforeDurable } from '../../src/raft/ready-order.js';
import type { MemoryStorage } from '../../src/raft/storage.js';
import {
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  RaftRole,
  type Ready,
  noneId,
} from '../../src/raft/types.js';
import { confStateOf, decode, decodeApplied, encodeApplied, text } from './harness.js';
import {
  type ClientCounters,
  type LogView,
  RegisterChecker,
  type RegisterValue,
  SafetyChecker,
  SafetyViolation,
  encodeWrite,
  isKvProposal,
  isTextEntry,
  parseWrite,
  registersOf,
} from './sim-checkers.js';
import { FakeDisk } from './sim-disk.js';
import { KvChecker, SimKv, randomKvProposal } from './sim-kv.js';
import {
  MembershipChecker,
  type SimMembership,
  applyMembershipChange,
  contextFor,
  initialMembership,
  memberNamed,
  membershipOf,
  votersOf,
} from './sim-membership.js';
import { FakeNetwork, type NetworkCounters, type NetworkProfile, calmNetwork, shuffle } from './sim-network.js';

export interface SimulationOptions {
  seed: number;
  members: number;
  safetyTicks: number;
  livenessTicksMax: number;
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  driverMode: 'pure' | 'actor';
  /**
   * Members' role machines get an inspector that ignores what it sees: every tick and message
   * batch is then a machine event, where uninspected ones are plain code unless the role changes.
   */
  inspected?: boolean;
  /** Trace events kept for the failure report (the newest ones). */
  traceLengthMax: number;
  /**
   * Breaks the application on purpose: every member sends its replies before its write is
   * durable. Only the simulator's self-test sets it, to show the checkers catch what follows.
   */
  unsafeRepliesBeforeFsync?: boolean;
  /** Breaks reads on purpose: served from local state at once, skipping ReadIndex (self-test only). */
  unsafeLocalReads?: boolean;
  /**
   * Membership changes in the safety phase (add a voter or a learner, promote a learner, remove a
   * member or the leader itself, update peer URLs), applied on commit, and the membership checkers.
   */
  membership?: boolean;
  /** Clients also write puts, deletes, txns and compactions, applied to a real src/mvcc store per member. */
  realApply?: boolean;
  /**
   * Handles Readies in the member's order (actors/member/raft-loop.ts, src/raft/ready-order.ts):
   * advance() as a Ready is handed to the disk, and as many Readies waiting on the disk at once as
   * readiesInFlight() allows, rather than one at a time with advance() once durable.
   */
  memberReadyOrder?: boolean;
  /**
   * Breaks the one-pending-conf-change rule on purpose: the leader forgets its pending conf change
   * before each proposal (self-test only).
   */
  unsafeTwoPendingConfChanges?: boolean;
}

/** What the membership schedule and the real key space did in a run. */
export interface MembershipCounters {
  confChangesProposed: number;
  votersAdded: number;
  learnersAdded: number;
  learnersPromoted: number;
  membersRemoved: number;
  leaderSelfRemovals: number;
  membersUpdated: number;
  /** Conf changes refused when applied (etcd's ValidateConfigurationChange). */
  confChangesRefused: number;
  /** Promotions refused before proposing: the learner was not in sync with the leader. */
  promotionsRefused: number;
  /** Messages of removed members refused by a peer that knew (the sender then stops). */
  removedRefusals: number;
  kvEntriesApplied: number;
  hashChecks: number;
  commitChecks: number;
  electionChecks: number;
}

export interface SimulationStats extends NetworkCounters, ClientCounters, MembershipCounters {
  crashes: number;
  tornCrashes: number;
  unsyncedWritesLost: number;
  partitions: number;
  oneWayPartitions: number;
  heals: number;
  compactions: number;
  snapshotsInstalled: number;
  transfers: number;
  fsyncs: number;
  slowFsyncs: number;
  leaderTerms: number;
  termMax: number;
  committedCount: number;
  livenessTicks: number;
}

export interface SimulationResult {
  seed: number;
  failure: string | undefined;
  trace: string[];
  stats: SimulationStats;
}

/** How hostile this seed's world is, drawn from the seed. */
interface FaultProfile {
  network: NetworkProfile;
  fsyncTicksMax: number;
  slowFsyncProbability: number;
  crashProbability: number;
  /** Per settle round: a crash of a member whose Ready is still being fsynced. */
  crashMidFsyncProbability: number;
  tornProbability: number;
  partitionProbability: number;
  compactProbability: number;
  transferProbability: number;
  clockDriftProbability: number;
  writesPerTickMax: number;
  readProbability: number;
  /** Per safety tick: a conf change proposed at the leader (membership runs only). */
  confChangeProbability: number;
  /** Per safety tick: a key-space write (real-apply runs only). */
  kvWriteProbability: number;
}

/** A Ready handed to the disk, waiting for its fsync before replies go out and entries apply. */
interface PendingWrite {
  ready: Ready;
  /** Handed off in the member's order, but advance() waits for the apply (a conf change commits). */
  advancesOnceApplied: boolean;
  durableTick: number;
  needsSync: boolean;
  held: Message[];
}

interface PendingRead {
  key: string;
  floorIndex: number;
  readIndex: number | undefined;
}

interface SimMember {
  id: NodeId;
  /** Stopped for good: it applied its own removal, or a peer refused it as removed. */
  removed: boolean;
  /** The cluster's members as this member's applied conf changes say. */
  membership: SimMembership;
  /** The real key space (real-apply runs only). */
  kv: SimKv | undefined;
  /** The highest commit index checked against its quorum while this member led, in that term. */
  commitChecked: number;
  commitCheckedTerm: number;
  /** When a member that applied its own removal stops (set once it knows). */
  stopTick: number | undefined;
  node: RawNode;
  storage: MemoryStorage;
  disk: FakeDisk;
  up: boolean;
  restartTick: number;
  restarts: number;
  role: RaftRole;
  applied: Entry[];
  appliedIndex: number;
  registers: Map<string, RegisterValue>;
  confState: ConfState;
  /** Readies handed to the disk, oldest first, waiting for their fsync. */
  pendingWrites: PendingWrite[];
  pendingReads: Map<string, PendingRead>;
}

/** Rounds of deliver/persist/apply within one tick; what is left waits for the next tick. */
const settleRoundsMax = 8;
const keys = ['a', 'b', 'c'];
/** Members a membership run may add beyond the bootstrap ones (IDs are never reused). */
const newMembersMax = 3;

type TraceItem = [tick: number, event: string | Message];

export class Simulation {
  private readonly prng: Prng;
  private readonly faults: FaultProfile;
  private readonly network: FakeNetwork;
  private readonly members: SimMember[] = [];
  private readonly safety = new SafetyChecker();
  private readonly registers = new RegisterChecker();
  private readonly trace: TraceItem[] = [];
  private readonly stats: SimulationStats;
  private nowTick = 0;
  private writeCount = 0;
  private readCount = 0;
  private finalMarker: string | undefined;
  /** Whether the current phase injects faults inside a tick as well as between ticks. */
  private crashMidFsync = true;
  /** Members that have applied the liveness phase's final write. */
  private readonly markerApplied = new Set<NodeId>();
  private readonly membershipChecker = new MembershipChecker();
  private readonly kvChecker = new KvChecker();
  /** The bootstrap members; a member added later starts from their configuration and replays the log. */
  private readonly initialIds: NodeId[];
  private readonly initialConfState: ConfState;
  /** The next ID a member added to the cluster gets; IDs are never reused (etcd refuses removed ones). */
  private nextMemberId: bigint;
  private readonly memberIdMax: bigint;
  private confChangeCount = 0;
  private kvProposalCount = 0;
  private urlGeneration = 0;
  /** Conf change indexes already counted in the stats (each is applied by many members). */
  private readonly confIndexesCounted = new Set<number>();

  constructor(private readonly options: SimulationOptions) {
    this.prng = new Prng(options.seed);
    this.faults = drawFaultProfile(this.prng, options.electionTicks);
    // Drawn only when enabled, so runs without them replay exactly as before these existed.
    if (options.membership === true) this.faults.confChangeProbability = 0.02 + this.prng.nextFloat() * 0.06;
    if (options.realApply === true) this.faults.kvWriteProbability = 0.3 + this.prng.nextFloat() * 0.5;
    this.network = new FakeNetwork(this.prng, this.faults.network);
    this.stats = emptyStats(this.network.counters, this.registers.counters);
    const ids = Array.from({ length: options.members }, (_, i) => BigInt(i + 1));
    this.initialIds = ids;
    this.initialConfState = confStateOf(ids);
    this.nextMemberId = BigInt(options.members + 1);
    this.memberIdMax = BigInt(options.members + newMembersMax);
    for (const id of ids) this.members.push(this.newMember(id, this.initialConfState));
  }

  run(): SimulationResult {
    let failure: string | undefined;
    try {
      this.note(`faults ${JSON.stringify(this.faults)}`);
      for (let t = 0; t < this.options.safetyTicks; t += 1) this.safetyTick();
      this.checkLogMatching();
      this.liveness();
      this.checkLogMatching();
      const finalMembers = this.requiredMembers(this.currentLeader()) ?? [];
      this.registers.checkAckedWritesKept(finalMembers);
      for (const m of finalMembers) if (m.kv) this.kvChecker.check(m.id, m.kv, m.appliedIndex, true);
    } catch (error) {
      failure = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.note(`FAILED ${failure}`);
    }
    for (const m of this.members) m.node.stop();
    this.stats.hashChecks = this.kvChecker.hashChecks;
    this.stats.commitChecks = this.membershipChecker.commitChecks;
    this.stats.electionChecks = this.membershipChecker.electionChecks;
    return { seed: this.options.seed, failure, trace: this.formatTrace(), stats: this.finishStats() };
  }

  // ---- members ------------------------------------------------------------------------------

  private newMember(id: NodeId, confState: ConfState): SimMember {
    const disk = new FakeDisk(confState);
    const storage = disk.recover();
    return {
      id,
      removed: false,
      membership: initialMembership(this.initialIds),
      kv: this.options.realApply === true ? SimKv.empty() : undefined,
      commitChecked: 0,
      commitCheckedTerm: 0,
      stopTick: undefined,
      node: this.newNode(id, storage, 0, 0),
      storage,
      disk,
      up: true,
      restartTick: 0,
      restarts: 0,
      role: RaftRole.follower,
      applied: [],
      appliedIndex: 0,
      registers: new Map(),
      confState,
      pendingWrites: [],
      pendingReads: new Map(),
    };
  }

  private newNode(id: NodeId, storage: MemoryStorage, appliedIndex: number, restarts: number): RawNode {
    const o = this.options;
    return new RawNode({
      id,
      storage,
      appliedIndex,
      electionTicks: o.electionTicks,
      heartbeatTicks: o.heartbeatTicks,
      preVote: o.preVote,
      checkQuorum: o.checkQuorum,
      maxEntriesPerMessage: 4,
      maxInflightMessages: 8,
      seed: o.seed * 31 + Number(id) + restarts * 7919,
      driverMode: o.driverMode,
      ...(o.inspected === true ? { inspect: () => undefined } : {}),
    });
  }

  private upMembers(): SimMember[] {
    return this.members.filter((m) => m.up);
  }

  private member(id: NodeId): SimMember | undefined {
    return this.members.find((m) => m.id === id);
  }

  // ---- the two phases -----------------------------------------------------------------------

  private safetyTick(): void {
    this.nowTick += 1;
    this.injectFaults();
    this.clientOps();
    this.tickAll(this.faults.clockDriftProbability);
    this.settle();
    if (this.nowTick % 16 === 0) this.checkLogMatching();
  }

  /** Heals everything and stops faults; a leader must then commit a fresh write everywhere. */
  private liveness(): void {
    this.network.heal();
    this.network.profile = calmNetwork;
    this.crashMidFsync = false;
    for (const m of this.members) if (!m.up && !m.removed) this.restart(m);
    this.note('liveness phase: healed, faults stopped');
    const startTick = this.nowTick;
    const marker = encodeWrite('final', `s${this.options.seed}`);
    this.finalMarker = marker;
    let proposedTick = -Infinity;
    const retryTicks = 3 * this.options.electionTicks;
    while (this.nowTick - startTick < this.options.livenessTicksMax) {
      this.nowTick += 1;
      this.tickAll(0);
      this.settle();
      const leader = this.members.find(
        (m) => m.up && m.role === RaftRole.leader && m.node.status().role === RaftRole.leader,
      );
      if (leader && this.nowTick - proposedTick > retryTicks && this.tryPropose(leader, text(marker))) {
        proposedTick = this.nowTick;
        this.note(`propose final marker at ${leader.id}`);
      }
      // Done once every member applied the fresh write and every write acknowledged so far.
      const ackedIndexMax = this.registers.ackedIndexMax();
      const required = this.requiredMembers(leader);
      if (
        required !== undefined &&
        required.every((m) => m.up && this.markerApplied.has(m.id) && m.appliedIndex >= ackedIndexMax)
      ) {
        this.stats.livenessTicks = this.nowTick - startTick;
        return;
      }
    }
    throw new Error(
      `liveness: no leader committed a fresh write on every member within ` +
        `${this.options.livenessTicksMax} ticks of healing (leaders: ${this.leaderSummary()})`,
    );
  }

  private currentLeader(): SimMember | undefined {
    return this.members.find((m) => m.up && m.node.status().role === RaftRole.leader);
  }

  /**
   * The members that must hold everything at the end: all of them, or in a membership run the
   * members of the leader's configuration (each must be running); undefined when that cannot hold yet.
   */
  private requiredMembers(leader: SimMember | undefined): SimMember[] | undefined {
    if (this.options.membership !== true) return this.members;
    if (leader === undefined) return undefined;
    const required = this.members.filter((m) => leader.membership.members.has(m.id));
    return required.length === leader.membership.members.size ? required : undefined;
  }

  private leaderSummary(): string {
    return this.members
      .map((m) => {
        const status = m.node.status();
        const state = m.removed ? ' removed' : m.up ? '' : ' down';
        const marker = this.markerApplied.has(m.id) ? ' marker' : '';
        return `${m.id}:${status.role}/t${status.term} applied ${m.appliedIndex}${marker}${state}`;
      })
      .join(', ');
  }

  private tickAll(driftProbability: number): void {
    for (const m of this.members) {
      if (!m.up) {
        if (!m.removed && this.nowTick >= m.restartTick) this.restart(m);
        continue;
      }
      // Clock drift: a member's timer occasionally runs slow (skips) or fast (ticks twice).
      let ticks = 1;
      if (driftProbability > 0 && this.prng.chance(driftProbability)) ticks = this.prng.nextInt(3);
      for (let i = 0; i < ticks; i += 1) m.node.tick();
      this.observe(m);
      this.stopIfRemoved(m);
    }
  }

  /** Runs deliver, persist and apply rounds until the tick goes quiet (bounded). */
  private settle(): void {
    for (let round = 0; round < settleRoundsMax; round += 1) {
      if (this.crashMidFsync) this.crashOneMidFsync();
      const persisted = this.completeDueWrites();
      const readied = this.processAllReady();
      const delivered = this.deliverDue();
      if (!persisted && !readied && !delivered) return;
    }
  }

  // ---- network ------------------------------------------------------------------------------

  private deliverDue(): boolean {
    const due = this.network.takeDue(this.nowTick);
    if (due.length === 0) return false;
    const byTarget = new Map<NodeId, Message[]>();
    for (const msg of due) {
      if (!this.admit(msg)) continue;
      const batch = byTarget.get(msg.to);
      if (batch) batch.push(msg);
      else byTarget.set(msg.to, [msg]);
    }
    for (const [to, batch] of byTarget) this.stepBatch(this.member(to) as SimMember, batch);
    return true;
  }

  /** Whether a due message reaches a live target over an uncut link. */
  private admit(msg: Message): boolean {
    const target = this.member(msg.to);
    if (target?.up && this.network.admits(msg)) {
      if (target.membership.removed.has(msg.from)) {
        this.refuseRemoved(msg.from, target.id);
        return false;
      }
      this.note(msg);
      if (msg.type === MessageType.voteResp && !msg.reject)
        this.membershipChecker.voteGranted(msg.to, msg.term, msg.from);
      return true;
    }
    this.note(`lost ${describe(msg)}`);
    this.reportFailure(msg, true);
    return false;
  }

  private stepBatch(target: SimMember, batch: Message[]): void {
    target.node.stepMany(batch);
    // Election safety between Readies too: a member may win and lose a term before its next Ready.
    const status = target.node.status();
    if (status.role === RaftRole.leader) this.safety.onLeaderElected(target.id, status.term);
    this.observe(target);
    for (const msg of batch) {
      // As etcd's transport does: a snapshot that reached its target is reported delivered.
      if (msg.type === MessageType.snap) this.liveMember(msg.from)?.node.reportSnapshot(msg.to, true);
    }
  }

  private send(messages: readonly Message[]): void {
    for (const msg of messages) {
      if (this.network.send(msg, this.nowTick) === 'dropped') {
        this.note(`drop ${describe(msg)}`);
        this.reportFailure(msg, false);
      }
    }
  }

  /** The transport tells the sender about failed sends: always for snapshots, sometimes for appends. */
  private reportFailure(msg: Message, connectionBroke: boolean): void {
    const sender = this.liveMember(msg.from);
    if (!sender) return;
    if (msg.type === MessageType.snap) sender.node.reportSnapshot(msg.to, false);
    else if (msg.type === MessageType.app && connectionBroke && this.prng.chance(0.5))
      sender.node.reportUnreachable(msg.to);
  }

  private liveMember(id: NodeId): SimMember | undefined {
    const m = this.member(id);
    return m?.up ? m : undefined;
  }

  // ---- persistence: Ready -> disk -> fsync -> send, apply, advance --------------------------

  private processAllReady(): boolean {
    let any = false;
    for (const m of this.members) {
      if (m.up && m.pendingWrites.length < this.readiesInFlight(m) && m.node.hasReady()) {
        this.processReady(m);
        any = true;
      }
    }
    return any;
  }

  private processReady(m: SimMember): void {
    const ready = m.node.ready();
    if (this.options.membership === true) this.checkReady(m, ready);
    if (ready.softState) m.role = ready.softState.role;
    if (ready.softState?.role === RaftRole.leader) this.onLeader(m, ready);
    for (const readState of ready.readStates) this.onReadState(m, decode(readState.requestCtx), readState.index);
    if (ready.snapshot) m.disk.write({ kind: 'snapshot', snapshot: ready.snapshot });
    if (ready.entries.length > 0) m.disk.write({ kind: 'entries', entries: ready.entries });
    if (ready.hardState) m.disk.write({ kind: 'hardState', hardState: ready.hardState });
    const needsSync = ready.mustSync || ready.snapshot !== undefined;
    // A leader sends before its own write is durable (Raft thesis 10.2.1, as etcd does); its
    // next Ready, which could reveal a commit, waits for this fsync. Everyone else waits.
    const sendsFirst = sendsBeforeDurable(m.role) || this.options.unsafeRepliesBeforeFsync === true;
    if (sendsFirst) this.send(ready.messages);
    const handedOff = this.options.memberReadyOrder === true;
    m.pendingWrites.push({
      ready,
      advancesOnceApplied: handedOff && advancesOnceApplied(ready),
      needsSync,
      durableTick: this.nowTick + this.fsyncTicks(needsSync),
      held: sendsFirst ? [] : ready.messages,
    });
    if (handedOff) this.handOff(m, ready);
    // Readies finish in order: one with nothing to sync finishes now only if none waits before it.
    if (!needsSync && m.pendingWrites.length === 1) this.completeWrite(m);
  }

  /** How many Readies may wait on this member's disk at once. */
  private readiesInFlight(m: SimMember): number {
    if (this.options.memberReadyOrder !== true) return 1;
    // No next Ready before the last one is advanced.
    if (m.pendingWrites.some((pending) => pending.advancesOnceApplied)) return 0;
    return readiesInFlight(m.membership.hasPeers(m.id));
  }

  /**
   * As the member's raft loop does when it hands a Ready to the WAL: the storage Raft reads takes
   * the Ready at once, and advance() follows, before the writes are durable.
   */
  private handOff(m: SimMember, ready: Ready): void {
    if (ready.hardState) m.storage.setHardState(ready.hardState);
    if (ready.snapshot) m.storage.applySnapshot(ready.snapshot);
    m.storage.append(ready.entries);
    if (!advancesOnceApplied(ready)) m.node.advance(ready);
  }

  private fsyncTicks(needsSync: boolean): number {
    if (!needsSync || this.faults.fsyncTicksMax === 0) return 0;
    if (this.prng.chance(this.faults.slowFsyncProbability)) {
      this.stats.slowFsyncs += 1;
      return 1 + this.prng.nextInt(this.faults.fsyncTicksMax);
    }
    return 0;
  }

  private completeDueWrites(): boolean {
    let any = false;
    for (const m of this.members) {
      while (m.up && (m.pendingWrites[0]?.durableTick ?? Infinity) <= this.nowTick) {
        this.completeWrite(m);
        any = true;
      }
    }
    return any;
  }

  /**
   * The oldest Ready's fsync finished: update the storage the core reads (unless it took the Ready
   * at hand-off), release replies, apply, advance (unless done at hand-off).
   */
  private completeWrite(m: SimMember): void {
    const pending = m.pendingWrites.shift() as PendingWrite;
    const { ready } = pending;
    const handedOff = this.options.memberReadyOrder === true;
    if (pending.needsSync) m.disk.fsync();
    if (ready.snapshot) this.installSnapshot(m, ready, !handedOff);
    if (!handedOff) {
      m.storage.append(ready.entries);
      if (ready.hardState) m.storage.setHardState(ready.hardState);
    }
    this.send(pending.held);
    for (const entry of ready.committedEntries) this.apply(m, entry);
    if (!handedOff || pending.advancesOnceApplied) m.node.advance(ready);
    this.serveReads(m);
  }

  private installSnapshot(m: SimMember, ready: Ready, toStorage: boolean): void {
    const snapshot = ready.snapshot as NonNullable<Ready['snapshot']>;
    if (toStorage) m.storage.applySnapshot(snapshot);
    this.restoreApplication(m, snapshot.data, snapshot.metadata.index, snapshot.metadata.confState);
    if (m.applied.some((e) => decode(e.data) === this.finalMarker)) this.markerApplied.add(m.id);
    this.stats.snapshotsInstalled += 1;
    this.note(`${m.id} installed snapshot at ${m.appliedIndex}`);
    this.checkRestored(m, 'installing a snapshot');
  }

  private apply(m: SimMember, entry: Entry): void {
    if (entry.index !== m.appliedIndex + 1) {
      throw new SafetyViolation(`member ${m.id} applied index ${entry.index} right after ${m.appliedIndex}`);
    }
    if (entry.index > m.disk.durableLastIndex()) {
      throw new SafetyViolation(
        `member ${m.id} applied ${entry.index} before it was durable (${m.disk.durableLastIndex()})`,
      );
    }
    const data = decode(entry.data);
    this.safety.onApply(m.id, entry, data);
    if (isTextEntry(entry)) {
      const write = parseWrite(data);
      if (write) m.registers.set(write.key, { value: write.value, index: entry.index });
      this.registers.applied(m.id, entry.index, data);
    }
    if (data === this.finalMarker) this.markerApplied.add(m.id);
    m.applied.push(entry);
    m.appliedIndex = entry.index;
    if (entry.type === EntryType.confChange) this.applyConfEntry(m, entry);
    if (m.kv !== undefined) {
      m.kv.apply(entry);
      if (isKvProposal(entry.data)) this.stats.kvEntriesApplied += 1;
      this.kvChecker.check(m.id, m.kv, entry.index, false);
    }
  }

  // ---- checkers -----------------------------------------------------------------------------

  /** Election safety and leader completeness over the log as the new leader holds it. */
  private onLeader(m: SimMember, ready: Ready): void {
    const term = m.node.status().term;
    this.note(`leader ${m.id} term ${term}`);
    this.safety.onLeader(m.id, term, logView(m.storage, ready.entries));
  }

  private checkLogMatching(): void {
    this.safety.checkLogMatching(this.members);
  }

  // ---- clients ------------------------------------------------------------------------------

  private clientOps(): void {
    const writes = this.prng.nextInt(this.faults.writesPerTickMax + 1);
    for (let i = 0; i < writes; i += 1) this.clientWrite();
    if (this.prng.chance(this.faults.readProbability)) this.clientRead();
    if (this.options.realApply === true && this.prng.chance(this.faults.kvWriteProbability)) this.clientKvWrite();
  }

  /** A put, delete, txn or compaction proposed at a random member, applied to every member's real store. */
  private clientKvWrite(): void {
    const m = this.prng.pick(this.members);
    if (!m.up || m.kv === undefined) return;
    this.kvProposalCount += 1;
    const data = randomKvProposal(this.prng, m.id, this.kvProposalCount, m.kv.store.currentRevision);
    if (this.tryPropose(m, data)) this.note(`kv write ${m.id} #${this.kvProposalCount}`);
  }

  private clientWrite(): void {
    const m = this.prng.pick(this.members);
    if (!m.up) return;
    const key = this.prng.pick(keys);
    const value = `s${this.options.seed}.w${this.writeCount++}`;
    if (this.tryPropose(m, text(encodeWrite(key, value)))) {
      this.registers.writeIssued(key, value, m.id);
      this.note(`write ${m.id} ${key}=${value}`);
    }
  }

  /** Proposes at `m`; false when there is no leader to take it (the client would retry). */
  private tryPropose(m: SimMember, data: Uint8Array): boolean {
    // Skip the throw when the member knows of no leader: building errors is the costly part.
    if (m.node.status().leaderId === noneId && !this.prng.chance(0.1)) return false;
    try {
      m.node.propose(data);
      this.observe(m);
      return true;
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      return false;
    }
  }

  private clientRead(): void {
    const m = this.prng.pick(this.members);
    if (!m.up || m.node.status().leaderId === noneId) return;
    const key = this.prng.pick(keys);
    const context = `read${this.readCount++}`;
    const floorIndex = this.registers.readIssued(key);
    if (this.options.unsafeLocalReads === true) {
      this.registers.readServed(m.id, key, floorIndex, m.appliedIndex, m.registers.get(key));
      return;
    }
    try {
      m.node.readIndex(text(context));
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      return;
    }
    m.pendingReads.set(context, { key, floorIndex, readIndex: undefined });
    this.note(`read ${m.id} ${key} ${context} floor ${floorIndex}`);
  }

  private onReadState(m: SimMember, context: string, index: number): void {
    const read = m.pendingReads.get(context);
    if (read && read.readIndex === undefined) read.readIndex = index;
  }

  /** Serves every read whose read index this member has applied. */
  private serveReads(m: SimMember): void {
    for (const [context, read] of m.pendingReads) {
      if (read.readIndex === undefined || read.readIndex > m.appliedIndex) continue;
      m.pendingReads.delete(context);
      const observed = m.registers.get(read.key);
      this.note(`read ${context} at ${m.id} index ${read.readIndex} -> ${observed?.value ?? '(absent)'}`);
      this.registers.readServed(m.id, read.key, read.floorIndex, read.readIndex, observed);
    }
  }

  // ---- membership ---------------------------------------------------------------------------

  /** Proposes a random conf change at the leader, as an operator's member add/promote/remove/update would. */
  private proposeConfChange(): void {
    const leader = this.currentLeader();
    if (!leader) return;
    const change = this.drawConfChange(leader);
    if (change === undefined) return;
    this.confChangeCount += 1;
    change.id = BigInt(this.confChangeCount);
    if (this.options.unsafeTwoPendingConfChanges === true) {
      // The self-test's break: the leader forgets the conf change it has pending.
      (leader.node as unknown as { core: RaftCore }).core.pendingConfIndex = 0;
    }
    try {
      leader.node.proposeConfChange(change);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      return;
    }
    this.stats.confChangesProposed += 1;
    this.note(`propose conf change ${describeChange(change)} at ${leader.id}`);
    this.observe(leader);
  }

  /** A change the leader's view of the members allows proposing; undefined to skip this time. */
  private drawConfChange(leader: SimMember): ConfChange | undefined {
    const members = [...leader.membership.members.values()];
    const voters = members.filter((m) => !m.isLearner);
    const learners = members.filter((m) => m.isLearner);
    const roll = this.prng.nextInt(6);
    if (roll <= 1) {
      if (this.nextMemberId > this.memberIdMax) return undefined;
      const asLearner = roll === 1;
      const id = this.nextMemberId;
      this.nextMemberId += 1n;
      const type = asLearner ? ConfChangeType.addLearnerNode : ConfChangeType.addNode;
      return { type, nodeId: id, context: contextFor(memberNamed(id, asLearner)) };
    }
    if (roll === 2) {
      if (learners.length === 0) return undefined;
      const learner = this.prng.pick(learners);
      // etcd's server refuses to propose promoting a learner that is not in sync with the leader.
      if (!learnerInSync(leader.node.status().progress ?? new Map(), leader.id, learner.id)) {
        this.stats.promotionsRefused += 1;
        this.note(`promote ${learner.id} refused: ${errors.learnerNotReady().message}`);
        return undefined;
      }
      return {
        type: ConfChangeType.addNode,
        nodeId: learner.id,
        context: contextFor({ ...learner, isLearner: false }, true),
      };
    }
    if (roll <= 4) {
      // One removal in four is the leader's own.
      const target =
        roll === 4 && this.prng.chance(0.5) ? leader.membership.members.get(leader.id) : this.prng.pick(members);
      if (target === undefined) return undefined;
      // Keep a voter always, and two most of the time, so the cluster can still make progress.
      const votersLeft = voters.length - (target.isLearner ? 0 : 1);
      if (votersLeft < 1 || (votersLeft < 2 && !this.prng.chance(0.25))) return undefined;
      return { type: ConfChangeType.removeNode, nodeId: target.id };
    }
    const target = this.prng.pick(members);
    this.urlGeneration += 1;
    return {
      type: ConfChangeType.updateNode,
      nodeId: target.id,
      context: contextFor(memberNamed(target.id, target.isLearner, this.urlGeneration)),
    };
  }

  /**
   * Applies a committed conf change as a member does: checked against its members with etcd's
   * rules, then applied to Raft and the members, or refused and consumed without touching either.
   */
  private applyConfEntry(m: SimMember, entry: Entry): void {
    const change = decodeConfChange(entry.data);
    const wasLeader = m.node.status().role === RaftRole.leader;
    const refusal = applyMembershipChange(m.membership, change);
    if (refusal === undefined) m.confState = m.node.applyConfChange(change);
    this.membershipChecker.checkConfState(
      m.id,
      entry.index,
      m.node.confState(),
      m.membership,
      'applying a conf change',
    );
    if (!this.confIndexesCounted.has(entry.index)) {
      this.confIndexesCounted.add(entry.index);
      this.note(`conf change ${describeChange(change)} at ${entry.index}: ${refusal?.message ?? 'applied'}`);
      if (refusal === undefined) this.countConfChange(change);
      else this.stats.confChangesRefused += 1;
    }
    if (refusal !== undefined) return;
    if (wasLeader && change.type === ConfChangeType.removeNode && change.nodeId === m.id)
      this.stats.leaderSelfRemovals += 1;
    const added = change.type === ConfChangeType.addNode || change.type === ConfChangeType.addLearnerNode;
    if (added && this.member(change.nodeId) === undefined) {
      // The operator starts the new member once the change is in; it learns the log from the leader.
      this.members.push(this.newMember(change.nodeId, this.initialConfState));
      this.note(`start new member ${change.nodeId}`);
    }
    this.observe(m);
  }

  private countConfChange(change: ConfChange): void {
    switch (change.type) {
      case ConfChangeType.addNode:
        if (decodeMemberChangeIsPromote(change)) this.stats.learnersPromoted += 1;
        else this.stats.votersAdded += 1;
        return;
      case ConfChangeType.addLearnerNode:
        this.stats.learnersAdded += 1;
        return;
      case ConfChangeType.removeNode:
        this.stats.membersRemoved += 1;
        return;
      case ConfChangeType.updateNode:
        this.stats.membersUpdated += 1;
    }
  }

  /** A peer that applied a member's removal refuses its messages and tells it so (etcd's "member removed"). */
  private refuseRemoved(senderId: NodeId, by: NodeId): void {
    const sender = this.liveMember(senderId);
    this.stats.removedRefusals += 1;
    if (sender) this.stopRemoved(sender, `refused by ${by} as removed`);
  }

  /**
   * A member that applied its own removal stops for good an election timeout later, as a member
   * does (actors/member/member.ts): meanwhile its last messages leave, and a leader's heartbeats
   * tell the rest that its removal committed.
   */
  private stopIfRemoved(m: SimMember): void {
    if (!m.membership.removed.has(m.id)) return;
    m.stopTick ??= this.nowTick + this.options.electionTicks;
    if (this.nowTick >= m.stopTick) this.stopRemoved(m, 'applied its own removal');
  }

  private stopRemoved(m: SimMember, why: string): void {
    if (m.removed) return;
    m.node.stop();
    m.up = false;
    m.removed = true;
    m.pendingWrites = [];
    m.pendingReads.clear();
    for (const msg of this.network.discardTo(m.id)) this.reportFailure(msg, true);
    this.note(`${m.id} stops for good: ${why}`);
  }

  /** The membership checks after anything that may elect a leader or move its commit index. */
  private observe(m: SimMember): void {
    if (this.options.membership !== true || !m.up) return;
    const status = m.node.status();
    if (status.role !== RaftRole.leader) return;
    const voters = votersOf(m.membership);
    this.membershipChecker.checkElection(m.id, status.term, voters);
    // A leader commits only entries of its own term; what it held on election is the baseline.
    if (m.commitCheckedTerm !== status.term) {
      m.commitCheckedTerm = status.term;
      m.commitChecked = status.commit;
      return;
    }
    if (status.commit <= m.commitChecked) return;
    m.commitChecked = status.commit;
    const durableLogs = this.members.map((member) => ({ id: member.id, storage: member.disk.durableLog() }));
    this.membershipChecker.checkCommitQuorum(m.id, status.term, status.commit, voters, durableLogs);
  }

  /** Checks on a Ready: only voters campaign, and a leader appends a conf change only with none pending. */
  private checkReady(m: SimMember, ready: Ready): void {
    for (const msg of ready.messages) {
      if (msg.type === MessageType.vote || msg.type === MessageType.preVote)
        this.membershipChecker.checkCampaigner(m.id, votersOf(m.membership));
    }
    // Entries of a leader's own term in its Ready are the ones it appended.
    const status = m.node.status();
    for (const entry of ready.entries) {
      if (status.role !== RaftRole.leader || entry.type !== EntryType.confChange || entry.term !== status.term)
        continue;
      this.membershipChecker.checkOnePending(m.id, entry.index, m.appliedIndex, this.leaderLog(m, ready, entry.index));
    }
    // As etcd's member does: a snapshot goes out as of the leader's applied state, not its last compaction.
    ready.messages = ready.messages.map((msg) => (msg.type === MessageType.snap ? this.mergedSnapshot(m, msg) : msg));
  }

  /** The leader's entries after its applied index and before `index`: stable ones, then this Ready's. */
  private leaderLog(m: SimMember, ready: Ready, index: number): Entry[] {
    const unstableFirst = ready.entries[0]?.index ?? Infinity;
    const lo = Math.max(m.appliedIndex + 1, m.storage.firstIndex());
    const hi = Math.min(m.storage.lastIndex() + 1, unstableFirst, index);
    const stable = hi > lo ? m.storage.entries(lo, hi) : [];
    return [...stable, ...ready.entries.filter((e) => e.index < index)];
  }

  private mergedSnapshot(m: SimMember, msg: Message): Message {
    const last = m.applied[m.applied.length - 1];
    if (last === undefined || msg.snapshot === undefined || m.appliedIndex <= msg.snapshot.metadata.index) return msg;
    return {
      ...msg,
      snapshot: {
        data: this.snapshotData(m),
        metadata: { index: m.appliedIndex, term: last.term, confState: m.confState },
      },
    };
  }

  // ---- the application's snapshot -------------------------------------------------------------

  /** The applied entries (the registers and membership fold them), with the key space's records in real-apply runs. */
  private snapshotData(m: SimMember): Uint8Array {
    const applied = encodeApplied(m.applied);
    if (m.kv === undefined) return applied;
    return text(JSON.stringify({ applied: decode(applied), kv: m.kv.image() }));
  }

  /** Rebuilds the application from a snapshot's payload (empty at index 0): registers, members, key space. */
  private restoreApplication(m: SimMember, data: Uint8Array, index: number, confState: ConfState): void {
    let kvImage: string | undefined;
    if (index === 0) {
      m.applied = [];
    } else if (m.kv !== undefined) {
      const payload = JSON.parse(decode(data)) as { applied: string; kv: string };
      m.applied = decodeApplied(text(payload.applied));
      kvImage = payload.kv;
    } else {
      m.applied = decodeApplied(data);
    }
    m.appliedIndex = index;
    m.registers = registersOf(m.applied);
    m.confState = confState;
    m.membership = membershipOf(this.initialIds, m.applied);
    if (m.kv !== undefined) m.kv = kvImage === undefined ? SimKv.empty() : SimKv.fromImage(kvImage);
  }

  /** After a restart or a snapshot install: Raft's configuration and the key space match the applied state. */
  private checkRestored(m: SimMember, what: string): void {
    if (this.options.membership === true)
      this.membershipChecker.checkConfState(m.id, m.appliedIndex, m.node.confState(), m.membership, what);
    if (m.kv !== undefined && m.appliedIndex > 0) this.kvChecker.check(m.id, m.kv, m.appliedIndex, true);
  }

  // ---- faults -------------------------------------------------------------------------------

  private injectFaults(): void {
    const f = this.faults;
    if (this.prng.chance(f.partitionProbability)) this.repartition();
    if (this.prng.chance(f.crashProbability)) this.crashOne();
    if (this.prng.chance(f.compactProbability)) this.compactOne();
    if (this.prng.chance(f.transferProbability)) this.transferOne();
    if (this.options.membership === true && this.prng.chance(f.confChangeProbability)) this.proposeConfChange();
  }

  private repartition(): void {
    const roll = this.prng.nextInt(5);
    if (roll === 0 || this.network.cutCount() > 2 * this.members.length) {
      this.network.heal();
      this.stats.heals += 1;
      this.note('heal');
    } else if (roll === 1) {
      this.isolate(this.prng.pick(this.members).id);
    } else if (roll === 2) {
      this.split();
    } else {
      this.cutOneWay();
    }
  }

  private isolate(id: NodeId): void {
    for (const other of this.members) {
      if (other.id === id) continue;
      this.network.cutLink(id, other.id);
      this.network.cutLink(other.id, id);
    }
    this.stats.partitions += 1;
    this.note(`isolate ${id}`);
  }

  /** Splits the members into two sides, minority and majority, cut both ways. */
  private split(): void {
    const ids = this.members.map((m) => m.id);
    shuffle(this.prng, ids);
    const sideSize = 1 + this.prng.nextInt(Math.floor(ids.length / 2));
    const side = new Set(ids.slice(0, sideSize));
    for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.network.cutLink(a, b);
    this.stats.partitions += 1;
    this.note(`split {${[...side].join(',')}} from the rest`);
  }

  /** A one-way cut: a member that can hear but not speak, or speak but not hear, or one link. */
  private cutOneWay(): void {
    const id = this.prng.pick(this.members).id;
    const others = this.members.filter((m) => m.id !== id).map((m) => m.id);
    const shape = this.prng.nextInt(3);
    if (shape === 0) for (const o of others) this.network.cutLink(id, o);
    else if (shape === 1) for (const o of others) this.network.cutLink(o, id);
    else this.network.cutLink(id, this.prng.pick(others));
    this.stats.oneWayPartitions += 1;
    this.note(`one-way cut ${['outbound of', 'inbound to', 'one link from'][shape]} ${id}`);
  }

  private crashOne(): void {
    const up = this.upMembers();
    const live = this.members.filter((m) => !m.removed).length;
    // Keep a majority running most of the time so the safety phase also makes progress.
    if (up.length <= Math.floor(live / 2) + 1 && !this.prng.chance(0.2)) return;
    if (up.length === 0) return;
    // Prefer a member with writes not yet fsynced: that is where a crash can hurt.
    const exposed = up.filter((m) => m.disk.unsyncedCount() > 0);
    this.crash(this.prng.pick(exposed.length > 0 && this.prng.chance(0.7) ? exposed : up));
  }

  /** A power cut while a write is on its way to disk, the moment a crash does most harm. */
  private crashOneMidFsync(): void {
    if (!this.prng.chance(this.faults.crashMidFsyncProbability)) return;
    const exposed = this.members.filter((m) => m.up && m.pendingWrites.length > 0);
    if (exposed.length > 0) this.crash(this.prng.pick(exposed));
  }

  private crash(m: SimMember): void {
    m.node.stop();
    m.up = false;
    const outcome = m.disk.crash(this.prng, this.prng.chance(this.faults.tornProbability));
    m.pendingWrites = [];
    m.pendingReads.clear();
    m.restartTick = this.nowTick + this.prng.nextInt(2 * this.options.electionTicks);
    for (const msg of this.network.discardTo(m.id)) this.reportFailure(msg, true);
    this.stats.crashes += 1;
    if (outcome.torn) this.stats.tornCrashes += 1;
    this.stats.unsyncedWritesLost += outcome.lostWrites;
    this.note(
      `crash ${m.id} lost ${outcome.lostWrites} unsynced writes${outcome.torn ? ` (torn, kept ${outcome.keptWrites})` : ''}`,
    );
  }

  /** Restarts from the durable state alone: storage, then the application from its snapshot. */
  private restart(m: SimMember): void {
    m.storage = m.disk.recover();
    const snapshot = m.storage.snapshot();
    this.restoreApplication(m, snapshot.data, snapshot.metadata.index, snapshot.metadata.confState);
    m.restarts += 1;
    m.node = this.newNode(m.id, m.storage, m.appliedIndex, m.restarts);
    m.role = RaftRole.follower;
    m.up = true;
    m.commitChecked = 0;
    m.commitCheckedTerm = 0;
    m.stopTick = undefined;
    this.note(
      `restart ${m.id} applied=${m.appliedIndex} last=${m.storage.lastIndex()} hs=${JSON.stringify(m.storage.initialState().hardState, bigintJson)}`,
    );
    this.checkRestored(m, 'restarting');
  }

  private compactOne(): void {
    const m = this.prng.pick(this.members);
    const index = m.appliedIndex;
    if (!m.up || index <= m.storage.snapshot().metadata.index) return;
    const data = this.snapshotData(m);
    m.storage.createSnapshot(index, m.confState, data);
    m.storage.compact(index);
    m.disk.saveSnapshot(index, m.confState, data);
    this.stats.compactions += 1;
    this.note(`compact ${m.id} at ${index}`);
  }

  private transferOne(): void {
    const leader = this.members.find((m) => m.up && m.role === RaftRole.leader);
    if (!leader) return;
    const targets = this.members.filter((m) => m.id !== leader.id && !m.removed);
    if (targets.length === 0) return; // Membership changes left the leader alone.
    const target = this.prng.pick(targets);
    leader.node.transferLeader(target.id);
    this.stats.transfers += 1;
    this.note(`transfer ${leader.id} -> ${target.id}`);
  }

  // ---- trace and stats ----------------------------------------------------------------------

  private note(event: string | Message): void {
    this.trace.push([this.nowTick, event]);
    if (this.trace.length > 2 * this.options.traceLengthMax)
      this.trace.splice(0, this.trace.length - this.options.traceLengthMax);
  }

  private formatTrace(): string[] {
    return this.trace
      .slice(-this.options.traceLengthMax)
      .map(([tick, event]) => `${tick} ${typeof event === 'string' ? event : `deliver ${describe(event)}`}`);
  }

  private finishStats(): SimulationStats {
    this.stats.fsyncs = this.members.reduce((sum, m) => sum + m.disk.fsyncCount, 0);
    this.stats.leaderTerms = this.safety.leaderTerms();
    this.stats.termMax = this.safety.termMax();
    this.stats.committedCount = this.safety.committedCount();
    return { ...this.stats, ...this.network.counters, ...this.registers.counters };
  }
}

/** The member's log as the core sees it at ready(): stable storage overlaid with the Ready's entries. */
function logView(storage: MemoryStorage, unstable: readonly Entry[]): LogView {
  const unstableFirst = unstable[0]?.index ?? Infinity;
  return {
    firstIndex: () => storage.firstIndex(),
    lastIndex: () => (unstable.length > 0 ? (unstable[unstable.length - 1] as Entry).index : storage.lastIndex()),
    term: (index) => {
      if (index >= unstableFirst) return unstable[index - unstableFirst]?.term;
      if (index < storage.firstIndex() || index > storage.lastIndex()) return undefined;
      return storage.term(index);
    },
  };
}

function drawFaultProfile(prng: Prng, electionTicks: number): FaultProfile {
  // One seed in five is a storm: every fault three times as likely. One in ten has a stalling disk.
  const storm = prng.chance(0.2) ? 3 : 1;
  const stallingDisk = prng.chance(0.1);
  return {
    network: {
      dropProbability: storm * prng.nextFloat() * 0.1,
      duplicateProbability: storm * prng.nextFloat() * 0.05,
      delayTicksMax: prng.nextInt(3),
      longDelayProbability: storm * prng.nextFloat() * 0.03,
      longDelayTicksMax: 2 * electionTicks,
    },
    fsyncTicksMax: stallingDisk ? electionTicks : prng.nextInt(4),
    slowFsyncProbability: 0.1 + prng.nextFloat() * 0.4,
    crashProbability: storm * (0.005 + prng.nextFloat() * 0.025),
    crashMidFsyncProbability: storm * prng.nextFloat() * 0.03,
    tornProbability: 0.5,
    partitionProbability: storm * (0.01 + prng.nextFloat() * 0.04),
    compactProbability: prng.nextFloat() * 0.05,
    transferProbability: storm * prng.nextFloat() * 0.02,
    clockDriftProbability: storm * prng.nextFloat() * 0.05,
    writesPerTickMax: 1 + prng.nextInt(2),
    readProbability: 0.2 + prng.nextFloat() * 0.4,
    confChangeProbability: 0,
    kvWriteProbability: 0,
  };
}

function emptyStats(network: NetworkCounters, clients: ClientCounters): SimulationStats {
  return {
    ...network,
    ...clients,
    crashes: 0,
    tornCrashes: 0,
    unsyncedWritesLost: 0,
    partitions: 0,
    oneWayPartitions: 0,
    heals: 0,
    compactions: 0,
    snapshotsInstalled: 0,
    transfers: 0,
    fsyncs: 0,
    slowFsyncs: 0,
    leaderTerms: 0,
    termMax: 0,
    committedCount: 0,
    livenessTicks: 0,
    confChangesProposed: 0,
    votersAdded: 0,
    learnersAdded: 0,
    learnersPromoted: 0,
    membersRemoved: 0,
    leaderSelfRemovals: 0,
    membersUpdated: 0,
    confChangesRefused: 0,
    promotionsRefused: 0,
    removedRefusals: 0,
    kvEntriesApplied: 0,
    hashChecks: 0,
    commitChecks: 0,
    electionChecks: 0,
  };
}

function bigintJson(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? Number(value) : value;
}

function describeChange(change: ConfChange): string {
  const names = ['add voter', 'remove', 'update', 'add learner'];
  const promote = decodeMemberChangeIsPromote(change) ? ' (promote)' : '';
  return `${names[change.type] ?? change.type} ${change.nodeId}${promote}`;
}

function decodeMemberChangeIsPromote(change: ConfChange): boolean {
  return change.type === ConfChangeType.addNode && decodeMemberChange(change.context, change.nodeId).isPromote;
}

function describe(m: Message): string {
  const extra = m.entries.length > 0 ? ` n=${m.entries.length}` : '';
  return `${m.from}->${m.to} t${m.type} term=${m.term} i=${m.index}/${m.logTerm} c=${m.commit}${m.reject ? ' reject' : ''}${extra}`;
}

/** Everything about a run follows from its seed, so a failing seed replays exactly. */
export function optionsForSeed(seed: number, traceLengthMax = 60): SimulationOptions {
  const five = seed % 3 === 0;
  return {
    seed,
    members: five ? 5 : 3,
    safetyTicks: five ? 80 : 110,
    livenessTicksMax: 300,
    electionTicks: 8,
    heartbeatTicks: 2,
    preVote: seed % 2 === 0,
    checkQuorum: seed % 5 < 3,
    // Most seeds run the role machine as an actor; every tenth folds xstate's pure transition().
    driverMode: seed % 10 === 7 ? 'pure' : 'actor',
    traceLengthMax,
  };
}

export function simulate(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}
