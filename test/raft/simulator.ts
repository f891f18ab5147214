/**
 * A seeded cluster simulator over N RawNodes with a fake clock, disk and network. Time moves in
 * ticks; within a tick, due messages are delivered in random order, Readies are persisted to a
 * FakeDisk whose fsync takes a random number of ticks, and a member's replies leave only once
 * their Ready is durable (a leader sends first and writes in parallel, as etcd does). Faults:
 * drops, delays, reordering, duplicates, two-way and one-way partitions, crashes that lose
 * unsynced (or tear) writes, compaction, leadership transfer and clock drift. Clients write
 * unique values to a few keys and issue ReadIndex reads; checkers run on every step. After the
 * safety phase, a liveness phase heals everything and requires a fresh write applied everywhere.
 * A seed replays exactly.
 */
import { Prng } from '../../src/lib/prng.js';
import { ProposalDroppedError } from '../../src/raft/errors.js';
import { RawNode } from '../../machines/raw-node.js';
import type { MemoryStorage } from '../../src/raft/storage.js';
import {
  type ConfState,
  type Entry,
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
  parseWrite,
  registersOf,
} from './sim-checkers.js';
import { FakeDisk } from './sim-disk.js';
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
  /** Trace events kept for the failure report (the newest ones). */
  traceLengthMax: number;
  /**
   * Breaks the application on purpose: every member sends its replies before its write is
   * durable. Only the simulator's self-test sets it, to show the checkers catch what follows.
   */
  unsafeRepliesBeforeFsync?: boolean;
  /** Breaks reads on purpose: served from local state at once, skipping ReadIndex (self-test only). */
  unsafeLocalReads?: boolean;
}

export interface SimulationStats extends NetworkCounters, ClientCounters {
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
}

/** A Ready handed to the disk, waiting for its fsync before replies go out and entries apply. */
interface PendingWrite {
  ready: Ready;
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
  pendingWrite: PendingWrite | undefined;
  pendingReads: Map<string, PendingRead>;
}

/** Rounds of deliver/persist/apply within one tick; what is left waits for the next tick. */
const settleRoundsMax = 8;
const keys = ['a', 'b', 'c'];

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

  constructor(private readonly options: SimulationOptions) {
    this.prng = new Prng(options.seed);
    this.faults = drawFaultProfile(this.prng, options.electionTicks);
    this.network = new FakeNetwork(this.prng, this.faults.network);
    this.stats = emptyStats(this.network.counters, this.registers.counters);
    const ids = Array.from({ length: options.members }, (_, i) => BigInt(i + 1));
    for (const id of ids) this.members.push(this.newMember(id, confStateOf(ids)));
  }

  run(): SimulationResult {
    let failure: string | undefined;
    try {
      this.note(`faults ${JSON.stringify(this.faults)}`);
      for (let t = 0; t < this.options.safetyTicks; t += 1) this.safetyTick();
      this.checkLogMatching();
      this.liveness();
      this.checkLogMatching();
      this.registers.checkAckedWritesKept(this.members);
    } catch (error) {
      failure = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.note(`FAILED ${failure}`);
    }
    for (const m of this.members) m.node.stop();
    return { seed: this.options.seed, failure, trace: this.formatTrace(), stats: this.finishStats() };
  }

  // ---- members ------------------------------------------------------------------------------

  private newMember(id: NodeId, confState: ConfState): SimMember {
    const disk = new FakeDisk(confState);
    const storage = disk.recover();
    return {
      id,
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
      pendingWrite: undefined,
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
    for (const m of this.members) if (!m.up) this.restart(m);
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
      const leader = this.members.find((m) => m.role === RaftRole.leader && m.node.status().role === RaftRole.leader);
      if (leader && this.nowTick - proposedTick > retryTicks && this.tryPropose(leader, marker)) {
        proposedTick = this.nowTick;
        this.note(`propose final marker at ${leader.id}`);
      }
      // Done once every member applied the fresh write and every write acknowledged so far.
      const ackedIndexMax = this.registers.ackedIndexMax();
      if (
        this.markerApplied.size === this.members.length &&
        this.members.every((m) => m.appliedIndex >= ackedIndexMax)
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

  private leaderSummary(): string {
    return this.members.map((m) => `${m.id}:${m.node.status().role}/t${m.node.status().term}`).join(' ');
  }

  private tickAll(driftProbability: number): void {
    for (const m of this.members) {
      if (!m.up) {
        if (this.nowTick >= m.restartTick) this.restart(m);
        continue;
      }
      // Clock drift: a member's timer occasionally runs slow (skips) or fast (ticks twice).
      let ticks = 1;
      if (driftProbability > 0 && this.prng.chance(driftProbability)) ticks = this.prng.nextInt(3);
      for (let i = 0; i < ticks; i += 1) m.node.tick();
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
      this.note(msg);
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
      if (m.up && m.pendingWrite === undefined && m.node.hasReady()) {
        this.processReady(m);
        any = true;
      }
    }
    return any;
  }

  private processReady(m: SimMember): void {
    const ready = m.node.ready();
    if (ready.softState) m.role = ready.softState.role;
    if (ready.softState?.role === RaftRole.leader) this.onLeader(m, ready);
    for (const readState of ready.readStates) this.onReadState(m, decode(readState.requestCtx), readState.index);
    if (ready.snapshot) m.disk.write({ kind: 'snapshot', snapshot: ready.snapshot });
    if (ready.entries.length > 0) m.disk.write({ kind: 'entries', entries: ready.entries });
    if (ready.hardState) m.disk.write({ kind: 'hardState', hardState: ready.hardState });
    const needsSync = ready.mustSync || ready.snapshot !== undefined;
    // A leader sends before its own write is durable (Raft thesis 10.2.1, as etcd does); its
    // next Ready, which could reveal a commit, waits for this fsync. Everyone else waits.
    const sendsFirst = m.role === RaftRole.leader || this.options.unsafeRepliesBeforeFsync === true;
    if (sendsFirst) this.send(ready.messages);
    m.pendingWrite = {
      ready,
      needsSync,
      durableTick: this.nowTick + this.fsyncTicks(needsSync),
      held: sendsFirst ? [] : ready.messages,
    };
    if (!needsSync) this.completeWrite(m);
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
      if (m.up && m.pendingWrite && m.pendingWrite.durableTick <= this.nowTick) {
        this.completeWrite(m);
        any = true;
      }
    }
    return any;
  }

  /** The fsync finished: update the storage the core reads, release replies, apply, advance. */
  private completeWrite(m: SimMember): void {
    const pending = m.pendingWrite as PendingWrite;
    m.pendingWrite = undefined;
    const { ready } = pending;
    if (pending.needsSync) m.disk.fsync();
    if (ready.snapshot) this.installSnapshot(m, ready);
    m.storage.append(ready.entries);
    if (ready.hardState) m.storage.setHardState(ready.hardState);
    this.send(pending.held);
    for (const entry of ready.committedEntries) this.apply(m, entry);
    m.node.advance(ready);
    this.serveReads(m);
  }

  private installSnapshot(m: SimMember, ready: Ready): void {
    const snapshot = ready.snapshot as NonNullable<Ready['snapshot']>;
    m.storage.applySnapshot(snapshot);
    m.applied = decodeApplied(snapshot.data);
    m.appliedIndex = snapshot.metadata.index;
    m.registers = registersOf(m.applied);
    m.confState = snapshot.metadata.confState;
    if (m.applied.some((e) => decode(e.data) === this.finalMarker)) this.markerApplied.add(m.id);
    this.stats.snapshotsInstalled += 1;
    this.note(`${m.id} installed snapshot at ${m.appliedIndex}`);
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
    const write = parseWrite(data);
    if (write) m.registers.set(write.key, { value: write.value, index: entry.index });
    this.registers.applied(m.id, entry.index, data);
    if (data === this.finalMarker) this.markerApplied.add(m.id);
    m.applied.push(entry);
    m.appliedIndex = entry.index;
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
  }

  private clientWrite(): void {
    const m = this.prng.pick(this.members);
    if (!m.up) return;
    const key = this.prng.pick(keys);
    const value = `s${this.options.seed}.w${this.writeCount++}`;
    if (this.tryPropose(m, encodeWrite(key, value))) {
      this.registers.writeIssued(key, value, m.id);
      this.note(`write ${m.id} ${key}=${value}`);
    }
  }

  /** Proposes at `m`; false when there is no leader to take it (the client would retry). */
  private tryPropose(m: SimMember, data: string): boolean {
    // Skip the throw when the member knows of no leader: building errors is the costly part.
    if (m.node.status().leaderId === noneId && !this.prng.chance(0.1)) return false;
    try {
      m.node.propose(text(data));
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

  // ---- faults -------------------------------------------------------------------------------

  private injectFaults(): void {
    const f = this.faults;
    if (this.prng.chance(f.partitionProbability)) this.repartition();
    if (this.prng.chance(f.crashProbability)) this.crashOne();
    if (this.prng.chance(f.compactProbability)) this.compactOne();
    if (this.prng.chance(f.transferProbability)) this.transferOne();
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
    // Keep a majority running most of the time so the safety phase also makes progress.
    if (up.length <= Math.floor(this.members.length / 2) + 1 && !this.prng.chance(0.2)) return;
    if (up.length === 0) return;
    // Prefer a member with writes not yet fsynced: that is where a crash can hurt.
    const exposed = up.filter((m) => m.disk.unsyncedCount() > 0);
    this.crash(this.prng.pick(exposed.length > 0 && this.prng.chance(0.7) ? exposed : up));
  }

  /** A power cut while a write is on its way to disk, the moment a crash does most harm. */
  private crashOneMidFsync(): void {
    if (!this.prng.chance(this.faults.crashMidFsyncProbability)) return;
    const exposed = this.members.filter((m) => m.up && m.pendingWrite !== undefined);
    if (exposed.length > 0) this.crash(this.prng.pick(exposed));
  }

  private crash(m: SimMember): void {
    m.node.stop();
    m.up = false;
    const outcome = m.disk.crash(this.prng, this.prng.chance(this.faults.tornProbability));
    m.pendingWrite = undefined;
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
    m.applied = snapshot.metadata.index > 0 ? decodeApplied(snapshot.data) : [];
    m.appliedIndex = snapshot.metadata.index;
    m.registers = registersOf(m.applied);
    m.confState = snapshot.metadata.confState;
    m.restarts += 1;
    m.node = this.newNode(m.id, m.storage, m.appliedIndex, m.restarts);
    m.role = RaftRole.follower;
    m.up = true;
    this.note(
      `restart ${m.id} applied=${m.appliedIndex} last=${m.storage.lastIndex()} hs=${JSON.stringify(m.storage.initialState().hardState, bigintJson)}`,
    );
  }

  private compactOne(): void {
    const m = this.prng.pick(this.members);
    const index = m.appliedIndex;
    if (!m.up || index <= m.storage.snapshot().metadata.index) return;
    const data = encodeApplied(m.applied);
    m.storage.createSnapshot(index, m.confState, data);
    m.storage.compact(index);
    m.disk.saveSnapshot(index, m.confState, data);
    this.stats.compactions += 1;
    this.note(`compact ${m.id} at ${index}`);
  }

  private transferOne(): void {
    const leader = this.members.find((m) => m.up && m.role === RaftRole.leader);
    if (!leader) return;
    const target = this.prng.pick(this.members.filter((m) => m.id !== leader.id));
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
  };
}

function bigintJson(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? Number(value) : value;
}

function describe(m: Message): string {
  const extra = m.entries.length > 0 ? ` n=${m.entries.length}` : '';
  return `${m.from}->${m.to} t${m.type} term=${m.term} i=${m.index}/${m.logTerm} c=${m.commit}${m.reject ? ' reject' : ''}${extra}`;
}

export function simulate(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}
