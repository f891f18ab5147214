/**
 * A seeded network simulator over N RawNodes: it drops, duplicates and reorders messages,
 * partitions members, crashes and restarts them from storage, compacts logs, and checks Raft's
 * safety properties after every step. A seed replays exactly; failures report the seed and the
 * tail of the event trace. After the safety phase, a liveness phase heals the network and
 * requires a leader to commit a final proposal on every member.
 */
import { Prng } from '../../src/lib/prng.js';
import { ProposalDroppedError } from '../../src/raft/errors.js';
import { RawNode } from '../../machines/raw-node.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import { type ConfState, type Entry, EntryType, type Message, MessageType, type NodeId } from '../../src/raft/types.js';
import { confStateOf, decode, decodeApplied, encodeApplied, text } from './harness.js';

export interface SimulationOptions {
  seed: number;
  members: number;
  safetySteps: number;
  livenessStepsMax: number;
  preVote: boolean;
  checkQuorum: boolean;
  driverMode: 'pure' | 'actor';
}

export interface SimulationResult {
  seed: number;
  failure: string | undefined;
  trace: string[];
  committedCount: number;
  termMax: number;
}

interface SimMember {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  appliedIndex: number;
  up: boolean;
  confState: ConfState;
}

const traceLengthMax = 200;

class SafetyViolation extends Error {}

export class Simulation {
  private readonly prng: Prng;
  private readonly members: SimMember[] = [];
  private network: Message[] = [];
  private readonly isolated = new Set<NodeId>();
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** Every committed entry ever applied anywhere, by index: what no member may contradict. */
  private readonly committed = new Map<number, { term: number; data: string }>();
  private readonly trace: string[] = [];
  private proposalCount = 0;
  private dropProbability = 0.1;

  constructor(private readonly options: SimulationOptions) {
    this.prng = new Prng(options.seed);
    const ids = Array.from({ length: options.members }, (_, i) => BigInt(i + 1));
    for (const id of ids) {
      const storage = MemoryStorage.withConfState(confStateOf(ids));
      this.members.push({ id, node: this.newNode(id, storage, 0), storage, applied: [], appliedIndex: 0, up: true, confState: confStateOf(ids) });
    }
  }

  run(): SimulationResult {
    let failure: string | undefined;
    try {
      for (let step = 0; step < this.options.safetySteps; step += 1) this.randomStep(step);
      this.checkLogMatching();
      this.liveness();
      this.checkLogMatching();
    } catch (error) {
      failure = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    for (const m of this.members) m.node.stop();
    return { seed: this.options.seed, failure, trace: this.trace.slice(), committedCount: this.committed.size, termMax: Math.max(0, ...this.leaderOfTerm.keys()) };
  }

  private newNode(id: NodeId, storage: MemoryStorage, appliedIndex: number): RawNode {
    return new RawNode({
      id, storage, appliedIndex, electionTicks: 10, heartbeatTicks: 2, preVote: this.options.preVote,
      checkQuorum: this.options.checkQuorum, maxEntriesPerMessage: 4, maxInflightMessages: 8,
      seed: this.options.seed * 31 + Number(id), driverMode: this.options.driverMode,
    });
  }

  private note(event: string): void {
    this.trace.push(event);
    if (this.trace.length > traceLengthMax) this.trace.shift();
  }

  private randomStep(step: number): void {
    const roll = this.prng.nextFloat();
    if (roll < 0.45) this.deliverOne();
    else if (roll < 0.75) this.tickOne();
    else if (roll < 0.88) this.proposeOne(step);
    else if (roll < 0.91) this.readOne(step);
    else if (roll < 0.94) this.repartition();
    else if (roll < 0.96) this.crashAndRestart();
    else if (roll < 0.98) this.compactOne();
    else this.transferOne();
    this.processAllReady();
  }

  private upMembers(): SimMember[] {
    return this.members.filter((m) => m.up);
  }

  private deliverOne(): void {
    if (this.network.length === 0) return;
    // Reorder: pick from the first few in flight rather than strictly the oldest.
    const position = this.prng.nextInt(Math.min(4, this.network.length));
    const [msg] = this.network.splice(position, 1);
    if (!msg) return;
    if (this.prng.chance(this.dropProbability)) {
      this.note(`drop ${describe(msg)}`);
      this.reportFailure(msg);
      return;
    }
    if (this.prng.chance(0.03)) this.network.push(msg); // A duplicate arrives later.
    this.deliver(msg);
  }

  private deliver(msg: Message): void {
    const target = this.members.find((m) => m.id === msg.to);
    if (!target || !target.up || this.isolated.has(msg.to) || this.isolated.has(msg.from)) {
      this.reportFailure(msg);
      return;
    }
    this.note(`deliver ${describe(msg)}`);
    target.node.step(msg);
    // As etcd's transport does: a snapshot that reached its target is reported delivered.
    if (msg.type === MessageType.snap) this.sender(msg)?.node.reportSnapshot(msg.to, true);
  }

  /** The transport tells the sender about failed sends, as etcd's rafthttp does. */
  private reportFailure(msg: Message): void {
    const sender = this.sender(msg);
    if (!sender) return;
    if (msg.type === MessageType.snap) sender.node.reportSnapshot(msg.to, false);
    else if (msg.type === MessageType.app) sender.node.reportUnreachable(msg.to);
  }

  private sender(msg: Message): SimMember | undefined {
    return this.members.find((m) => m.id === msg.from && m.up);
  }

  private tickOne(): void {
    const member = this.prng.pick(this.upMembers().length > 0 ? this.upMembers() : this.members);
    if (!member.up) return;
    member.node.tick();
  }

  private proposeOne(step: number): void {
    const member = this.prng.pick(this.members);
    if (!member.up) return;
    const value = `s${this.options.seed}-p${this.proposalCount++}-at${step}`;
    try {
      member.node.propose(text(value));
      this.note(`propose ${member.id} ${value}`);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
    }
  }

  private readOne(step: number): void {
    const member = this.prng.pick(this.members);
    if (!member.up) return;
    try {
      member.node.readIndex(text(`r${step}`));
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
    }
  }

  private repartition(): void {
    if (this.isolated.size > 0 && this.prng.chance(0.6)) {
      this.isolated.clear();
      this.note('heal');
      return;
    }
    const member = this.prng.pick(this.members);
    // Keep a majority connected most of the time so the safety phase also makes progress.
    if (this.isolated.size + 1 < Math.ceil(this.members.length / 2)) {
      this.isolated.add(member.id);
      this.note(`isolate ${member.id}`);
    }
  }

  private crashAndRestart(): void {
    const member = this.prng.pick(this.members);
    member.node.stop();
    // Everything in storage survived (each Ready is persisted before the next event); the
    // application state comes back from the snapshot and the log is re-applied from there.
    const snapshot = member.storage.snapshot();
    member.applied = snapshot.metadata.index > 0 ? decodeApplied(snapshot.data) : [];
    member.appliedIndex = snapshot.metadata.index;
    member.node = this.newNode(member.id, member.storage, snapshot.metadata.index);
    const lost = this.network.filter((m) => m.to === member.id);
    this.network = this.network.filter((m) => m.to !== member.id);
    for (const msg of lost) this.reportFailure(msg);
    this.note(`restart ${member.id} applied=${member.appliedIndex}`);
  }

  private compactOne(): void {
    const member = this.prng.pick(this.members);
    const index = member.appliedIndex;
    if (index <= member.storage.snapshot().metadata.index) return;
    member.storage.createSnapshot(index, member.confState, encodeApplied(member.applied));
    member.storage.compact(index);
    this.note(`compact ${member.id} at ${index}`);
  }

  private transferOne(): void {
    const leader = this.members.find((m) => m.up && m.node.status().role === 'leader');
    if (!leader) return;
    const target = this.prng.pick(this.members.filter((m) => m.id !== leader.id));
    leader.node.transferLeader(target.id);
    this.note(`transfer ${leader.id} -> ${target.id}`);
  }

  private processAllReady(): void {
    for (let round = 0; round < 4; round += 1) {
      let any = false;
      for (const member of this.members) {
        if (member.up && member.node.hasReady()) {
          this.processReady(member);
          any = true;
        }
      }
      if (!any) return;
    }
  }

  private processReady(member: SimMember): void {
    const ready = member.node.ready();
    if (ready.hardState) member.storage.setHardState(ready.hardState);
    if (ready.snapshot) {
      member.storage.applySnapshot(ready.snapshot);
      member.applied = decodeApplied(ready.snapshot.data);
      member.appliedIndex = ready.snapshot.metadata.index;
      member.confState = ready.snapshot.metadata.confState;
      this.note(`${member.id} restored snapshot at ${member.appliedIndex}`);
    }
    member.storage.append(ready.entries);
    this.network.push(...ready.messages);
    for (const entry of ready.committedEntries) this.apply(member, entry);
    if (ready.softState?.role === 'leader') this.onLeader(member);
    member.node.advance(ready);
  }

  private apply(member: SimMember, entry: Entry): void {
    if (entry.index !== member.appliedIndex + 1) {
      throw new SafetyViolation(`member ${member.id} applied index ${entry.index} after ${member.appliedIndex}`);
    }
    const data = decode(entry.data);
    const known = this.committed.get(entry.index);
    if (known && (known.term !== entry.term || known.data !== data)) {
      throw new SafetyViolation(`member ${member.id} applied ${entry.term}/${entry.index} '${data}' but ` +
        `${known.term}/${entry.index} '${known.data}' was committed`);
    }
    if (!known) this.committed.set(entry.index, { term: entry.term, data });
    member.applied.push(entry);
    member.appliedIndex = entry.index;
    if (entry.type !== EntryType.normal) throw new SafetyViolation('the simulator proposes no conf changes');
  }

  private onLeader(member: SimMember): void {
    const term = member.node.status().term;
    const existing = this.leaderOfTerm.get(term);
    if (existing !== undefined && existing !== member.id) {
      throw new SafetyViolation(`two leaders in term ${term}: ${existing} and ${member.id}`);
    }
    this.leaderOfTerm.set(term, member.id);
    this.note(`leader ${member.id} term ${term}`);
    // Leader completeness: every entry committed so far is in the new leader's log.
    const first = member.storage.firstIndex();
    for (const [index, entry] of this.committed) {
      if (index < first) continue;
      if (index > member.storage.lastIndex() || member.storage.term(index) !== entry.term) {
        throw new SafetyViolation(`leader ${member.id} of term ${term} lacks committed entry ${entry.term}/${index}`);
      }
    }
  }

  /** Log matching: where two logs agree on an index's term, they agree on everything before it. */
  private checkLogMatching(): void {
    for (let a = 0; a < this.members.length; a += 1) {
      for (let b = a + 1; b < this.members.length; b += 1) {
        checkPair(this.members[a] as SimMember, this.members[b] as SimMember);
      }
    }
  }

  private liveness(): void {
    this.isolated.clear();
    this.dropProbability = 0;
    for (const member of this.members) member.up = true;
    this.note('liveness phase');
    const marker = `s${this.options.seed}-final`;
    // The step of the last attempt; an attempt can be lost with a deposed leader, so retry.
    let proposedAt = -1;
    const retryAfterSteps = 50;
    for (let step = 0; step < this.options.livenessStepsMax; step += 1) {
      while (this.network.length > 0) {
        this.deliver(this.network.shift() as Message);
        this.processAllReady();
      }
      for (const member of this.members) member.node.tick();
      this.processAllReady();
      const leader = this.members.find((m) => m.node.status().role === 'leader');
      if (leader && (proposedAt < 0 || step - proposedAt > retryAfterSteps)) {
        try {
          leader.node.propose(text(marker));
          proposedAt = step;
        } catch (error) {
          if (!(error instanceof ProposalDroppedError)) throw error;
        }
      }
      if (proposedAt >= 0 && this.members.every((m) => m.applied.some((e) => decode(e.data) === marker))) return;
    }
    throw new Error(`liveness: no commit of the final proposal within ${this.options.livenessStepsMax} steps`);
  }
}

function checkPair(a: SimMember, b: SimMember): void {
  const lo = Math.max(a.storage.firstIndex(), b.storage.firstIndex());
  const hi = Math.min(a.storage.lastIndex(), b.storage.lastIndex());
  if (hi < lo) return;
  const entriesA = a.storage.entries(lo, hi + 1);
  const entriesB = b.storage.entries(lo, hi + 1);
  let agreeFrom = -1;
  for (let i = entriesA.length - 1; i >= 0; i -= 1) {
    if (entriesA[i]?.term === entriesB[i]?.term) {
      agreeFrom = i;
      break;
    }
  }
  for (let i = 0; i <= agreeFrom; i += 1) {
    const ea = entriesA[i] as Entry;
    const eb = entriesB[i] as Entry;
    if (ea.term !== eb.term || decode(ea.data) !== decode(eb.data)) {
      throw new SafetyViolation(`log matching: members ${a.id} and ${b.id} differ at ${ea.index} ` +
        `(${ea.term} vs ${eb.term}) below agreeing index ${lo + agreeFrom}`);
    }
  }
}

function describe(m: Message): string {
  const extra = m.entries.length > 0 ? ` n=${m.entries.length}` : '';
  return `${m.from}->${m.to} t${m.type} term=${m.term} i=${m.index}/${m.logTerm} c=${m.commit}${m.reject ? ' reject' : ''}${extra}`;
}

export function simulate(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}
