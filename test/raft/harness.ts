/** A small in-memory cluster of RawNodes for unit and transcript tests: synchronous, no network. */
import { RawNode, type RaftConfig } from '../../machines/raw-node.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import { ConfChangeType, decodeConfChange } from '../../src/raft/conf-change.js';
import {
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  type NodeId,
  type ReadState,
  type Ready,
} from '../../src/raft/types.js';

export interface MemberOptions {
  preVote?: boolean;
  checkQuorum?: boolean;
  electionTicks?: number;
  heartbeatTicks?: number;
  maxEntriesPerMessage?: number;
  maxInflightMessages?: number;
  driverMode?: RaftConfig['driverMode'];
}

export interface Member {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
  confState: ConfState;
  options: MemberOptions;
}

export function confStateOf(voters: NodeId[], learners: NodeId[] = []): ConfState {
  return { voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false };
}

export function newMember(id: NodeId, storage: MemoryStorage, options: MemberOptions, appliedIndex = 0): Member {
  const node = new RawNode({
    id,
    storage,
    appliedIndex,
    seed: Number(id),
    electionTicks: options.electionTicks ?? 10,
    heartbeatTicks: options.heartbeatTicks ?? 1,
    preVote: options.preVote ?? false,
    checkQuorum: options.checkQuorum ?? false,
    maxEntriesPerMessage: options.maxEntriesPerMessage ?? 64,
    maxInflightMessages: options.maxInflightMessages ?? 256,
    driverMode: options.driverMode ?? 'pure',
  });
  return { id, node, storage, applied: [], readStates: [], confState: storage.initialState().confState, options };
}

export const text = (value: string): Uint8Array => new TextEncoder().encode(value);
export const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

export class Cluster {
  readonly members = new Map<NodeId, Member>();
  /** Messages in flight, in send order. */
  queue: Message[] = [];
  /** Members whose traffic (both ways) is dropped. */
  readonly isolated = new Set<NodeId>();
  readonly log: string[] = [];
  /** Observes each Ready before it is handled (transcripts print them). */
  onReady: ((id: NodeId, ready: Ready) => void) | undefined;

  constructor(ids: NodeId[], options: MemberOptions = {}) {
    for (const id of ids) this.members.set(id, newMember(id, MemoryStorage.withConfState(confStateOf(ids)), options));
  }

  member(id: NodeId): Member {
    const member = this.members.get(id);
    if (!member) throw new Error(`no member ${id}`);
    return member;
  }

  /** Handles one member's Ready the way the application must: persist, send, apply, advance. */
  processReady(id: NodeId): boolean {
    const m = this.member(id);
    if (!m.node.hasReady()) return false;
    const ready = m.node.ready();
    this.onReady?.(id, ready);
    if (ready.hardState) m.storage.setHardState(ready.hardState);
    if (ready.snapshot) {
      m.storage.applySnapshot(ready.snapshot);
      m.applied = decodeApplied(ready.snapshot.data);
      m.confState = ready.snapshot.metadata.confState;
    }
    m.storage.append(ready.entries);
    for (const msg of ready.messages) this.queue.push(msg);
    m.readStates.push(...ready.readStates);
    for (const entry of ready.committedEntries) this.apply(m, entry);
    m.node.advance(ready);
    return true;
  }

  private apply(m: Member, entry: Entry): void {
    m.applied.push(entry);
    if (entry.type === EntryType.confChange) {
      const change = decodeConfChange(entry.data);
      m.confState = m.node.applyConfChange(change);
      if (change.type === ConfChangeType.removeNode && change.nodeId === m.id) this.log.push(`${m.id} removed`);
    }
  }

  /** Delivers queued messages (and the ones they cause) until nothing is left; bounded. */
  stabilize(roundsMax = 1000): void {
    for (let round = 0; round < roundsMax; round += 1) {
      let progressed = false;
      for (const id of this.members.keys()) progressed = this.processReady(id) || progressed;
      if (this.queue.length > 0) {
        this.deliverAll();
        progressed = true;
      }
      if (!progressed) return;
    }
    throw new Error(`cluster did not stabilize within ${roundsMax} rounds`);
  }

  deliverAll(): void {
    const batch = this.queue;
    this.queue = [];
    for (const msg of batch) this.deliver(msg);
  }

  deliver(msg: Message): void {
    if (this.isolated.has(msg.from) || this.isolated.has(msg.to)) return;
    const target = this.members.get(msg.to);
    if (!target) return;
    target.node.step(msg);
  }

  tick(id: NodeId, count = 1): void {
    for (let i = 0; i < count; i += 1) this.member(id).node.tick();
  }

  tickAll(count = 1): void {
    for (let i = 0; i < count; i += 1) for (const id of this.members.keys()) this.member(id).node.tick();
  }

  leaders(): NodeId[] {
    return [...this.members.values()].filter((m) => m.node.status().role === 'leader').map((m) => m.id);
  }

  appliedData(id: NodeId): string[] {
    return this.member(id)
      .applied.filter((e) => e.type === EntryType.normal && e.data.length > 0)
      .map((e) => decode(e.data));
  }

  /** Snapshot of member `id`'s applied state at its applied index, compacting its storage. */
  snapshotAndCompact(id: NodeId): void {
    const m = this.member(id);
    const applied = m.node.status().applied;
    m.storage.createSnapshot(applied, m.confState, encodeApplied(m.applied));
    m.storage.compact(applied);
  }
}

// Snapshot payload for tests: the applied entries as JSON, so a restored member can compare logs.
export function encodeApplied(entries: Entry[]): Uint8Array {
  return text(JSON.stringify(entries.map((e) => [e.term, e.index, e.type, Buffer.from(e.data).toString('base64')])));
}

export function decodeApplied(bytes: Uint8Array): Entry[] {
  const rows = JSON.parse(decode(bytes)) as [number, number, number, string][];
  return rows.map(([term, index, type, data]) => ({
    term,
    index,
    type: type as EntryType,
    data: new Uint8Array(Buffer.from(data, 'base64')),
  }));
}
