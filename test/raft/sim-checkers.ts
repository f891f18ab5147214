/**
 * The simulator's checkers. SafetyChecker holds Raft's own properties (election safety, log
 * matching, leader completeness, state machine safety); RegisterChecker holds the client's view:
 * an acknowledged write is never lost or replaced, and a ReadIndex read sees every write
 * acknowledged before it began (a register per key, each write a unique value).
 */
import type { MemoryStorage } from '../../src/raft/storage.js';
import { type Entry, EntryType, type NodeId } from '../../src/raft/types.js';
import { decode } from './harness.js';

export class SafetyViolation extends Error {
  override name = 'SafetyViolation';
}

/** Read access to a member's whole log (stable storage plus what it is still persisting). */
export interface LogView {
  firstIndex(): number;
  lastIndex(): number;
  /** Term at `index`, undefined outside [firstIndex, lastIndex]. */
  term(index: number): number | undefined;
}

interface CommittedEntry {
  term: number;
  data: string;
  firstAppliedBy: NodeId;
  /**
   * The highest term any leader had reached when the entry was first applied. The leader that
   * committed it was elected by then, so this bounds the term it was committed in from above.
   */
  committedByTermMax: number;
}

export class SafetyChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** Every entry applied anywhere, by index: what no member may ever contradict. */
  private readonly committed = new Map<number, CommittedEntry>();
  committedIndexMax = 0;

  /** Election safety: at most one leader per term, ever. */
  onLeaderElected(id: NodeId, term: number): void {
    const existing = this.leaderOfTerm.get(term);
    if (existing !== undefined && existing !== id) {
      throw new SafetyViolation(`election safety: two leaders in term ${term}: ${existing} and ${id}`);
    }
    this.leaderOfTerm.set(term, id);
  }

  /** Election safety and leader completeness, checked when a member reports itself leader. */
  onLeader(id: NodeId, term: number, log: LogView): void {
    this.onLeaderElected(id, term);
    const first = log.firstIndex();
    for (const [index, entry] of this.committed) {
      if (index < first) continue; // Compacted into the leader's snapshot, which holds only committed state.
      // Raft promises the entry only to leaders of terms after the one it was committed in. A vote
      // granted in an old term can reach its candidate late, after a newer term committed more, and
      // the stale leader (which can commit nothing) rightly lacks that.
      if (term <= entry.committedByTermMax) continue;
      const held = log.term(index);
      if (held !== entry.term) {
        throw new SafetyViolation(
          `leader completeness: leader ${id} of term ${term} has term ${held ?? 'none'} at ` +
            `${index}, but ${entry.term}/${index} was applied by ${entry.firstAppliedBy}`,
        );
      }
    }
  }

  /** State machine safety: no two members apply different entries at one index. */
  onApply(id: NodeId, entry: Entry, data: string): void {
    const known = this.committed.get(entry.index);
    if (known === undefined) {
      this.committed.set(entry.index, {
        term: entry.term,
        data,
        firstAppliedBy: id,
        committedByTermMax: this.termMax(),
      });
      if (entry.index > this.committedIndexMax) this.committedIndexMax = entry.index;
      return;
    }
    if (known.term !== entry.term || known.data !== data) {
      throw new SafetyViolation(
        `state machine safety: member ${id} applied ${entry.term}/${entry.index} '${data}' ` +
          `but member ${known.firstAppliedBy} applied ${known.term}/${entry.index} '${known.data}'`,
      );
    }
  }

  termMax(): number {
    return Math.max(0, ...this.leaderOfTerm.keys());
  }

  leaderTerms(): number {
    return this.leaderOfTerm.size;
  }

  committedCount(): number {
    return this.committed.size;
  }

  /** Log matching over every pair of members' stable logs. */
  checkLogMatching(logs: readonly { id: NodeId; storage: MemoryStorage }[]): void {
    for (let a = 0; a < logs.length; a += 1) {
      for (let b = a + 1; b < logs.length; b += 1) checkPair(logs[a] as LogOf, logs[b] as LogOf);
    }
  }
}

type LogOf = { id: NodeId; storage: MemoryStorage };

/** Where two logs hold the same term at an index, they hold identical entries up to it. */
function checkPair(a: LogOf, b: LogOf): void {
  const lo = Math.max(a.storage.firstIndex(), b.storage.firstIndex());
  const hi = Math.min(a.storage.lastIndex(), b.storage.lastIndex());
  if (hi < lo) return;
  const entriesA = a.storage.entries(lo, hi + 1);
  const entriesB = b.storage.entries(lo, hi + 1);
  let agreeAt = -1;
  for (let i = entriesA.length - 1; i >= 0; i -= 1) {
    if (entriesA[i]?.term === entriesB[i]?.term) {
      agreeAt = i;
      break;
    }
  }
  for (let i = 0; i <= agreeAt; i += 1) {
    const ea = entriesA[i] as Entry;
    const eb = entriesB[i] as Entry;
    if (ea.term !== eb.term || decode(ea.data) !== decode(eb.data)) {
      throw new SafetyViolation(
        `log matching: members ${a.id} and ${b.id} differ at ${ea.index} ` +
          `(${ea.term} vs ${eb.term}) below their agreeing index ${lo + agreeAt}`,
      );
    }
  }
}

// ---- the client's view: a register per key --------------------------------------------------

/** A key's value in a member's state machine and the index of the write that set it. */
export interface RegisterValue {
  value: string;
  index: number;
}

const writeSeparator = '=';

export function encodeWrite(key: string, value: string): string {
  return `${key}${writeSeparator}${value}`;
}

export function parseWrite(data: string): { key: string; value: string } | undefined {
  const at = data.indexOf(writeSeparator);
  if (at <= 0) return undefined;
  return { key: data.slice(0, at), value: data.slice(at + 1) };
}

/** The first byte of a put, txn, delete or caller-wrapped proposal (src/api/proposal-codec.ts). */
const binaryProposalMarkerMin = 0xf0;

/** Whether entry data is a key-space proposal (sim-kv.ts) rather than the simulator's text writes. */
export function isKvProposal(data: Uint8Array): boolean {
  return data.length > 0 && (data[0] as number) >= binaryProposalMarkerMin;
}

/** Whether an entry is one of the simulator's text writes (or empty): not a conf change or key-space proposal. */
export function isTextEntry(entry: Entry): boolean {
  return entry.type === EntryType.normal && !isKvProposal(entry.data);
}

/** Folds applied entries into the register state a member would rebuild from its snapshot. */
export function registersOf(applied: readonly Entry[]): Map<string, RegisterValue> {
  const registers = new Map<string, RegisterValue>();
  for (const entry of applied) {
    if (!isTextEntry(entry)) continue;
    const write = parseWrite(decode(entry.data));
    if (write) registers.set(write.key, { value: write.value, index: entry.index });
  }
  return registers;
}

interface WriteRecord {
  key: string;
  proposer: NodeId;
  /** Index at which the proposer applied it: the moment the client heard "ok". 0 until then. */
  ackIndex: number;
}

export interface ClientCounters {
  writesIssued: number;
  writesAcked: number;
  readsIssued: number;
  readsServed: number;
}

export class RegisterChecker {
  private readonly writes = new Map<string, WriteRecord>();
  /** Per key, the highest index of an acknowledged write: the floor for any later read. */
  private readonly ackedIndexMaxByKey = new Map<string, number>();
  private readonly ackedValues: { key: string; value: string; index: number }[] = [];
  readonly counters: ClientCounters = { writesIssued: 0, writesAcked: 0, readsIssued: 0, readsServed: 0 };

  writeIssued(key: string, value: string, proposer: NodeId): void {
    this.writes.set(value, { key, proposer, ackIndex: 0 });
    this.counters.writesIssued += 1;
  }

  /** The proposer applying its own write is the acknowledgement its client sees. */
  applied(id: NodeId, index: number, data: string): void {
    const write = parseWrite(data);
    if (!write) return;
    const record = this.writes.get(write.value);
    if (!record || record.proposer !== id || record.ackIndex !== 0) return;
    record.ackIndex = index;
    this.counters.writesAcked += 1;
    this.ackedValues.push({ key: write.key, value: write.value, index });
    if (index > (this.ackedIndexMaxByKey.get(write.key) ?? 0)) this.ackedIndexMaxByKey.set(write.key, index);
  }

  /** The highest index of any acknowledged write. */
  ackedIndexMax(): number {
    return Math.max(0, ...this.ackedIndexMaxByKey.values());
  }

  /** Starts a read of `key`; returns the index the answer must reflect at least. */
  readIssued(key: string): number {
    this.counters.readsIssued += 1;
    return this.ackedIndexMaxByKey.get(key) ?? 0;
  }

  /** Checks a read served at `readIndex` against the writes acknowledged before it began. */
  readServed(
    id: NodeId,
    key: string,
    floorIndex: number,
    readIndex: number,
    observed: RegisterValue | undefined,
  ): void {
    this.counters.readsServed += 1;
    const observedIndex = observed?.index ?? 0;
    if (readIndex < floorIndex || observedIndex < floorIndex) {
      throw new SafetyViolation(
        `linearizable read: member ${id} read ${key} at read index ${readIndex} and saw ` +
          `'${observed?.value ?? '(absent)'}' from index ${observedIndex}, but a write to ${key} at index ` +
          `${floorIndex} was acknowledged before the read began`,
      );
    }
  }

  /** No acknowledged write lost: each is in every member's applied sequence at its index. */
  checkAckedWritesKept(members: readonly { id: NodeId; applied: readonly Entry[] }[]): void {
    for (const acked of this.ackedValues) {
      for (const member of members) {
        const entry = member.applied[acked.index - 1];
        const data = entry ? decode(entry.data) : '(not applied)';
        if (data !== encodeWrite(acked.key, acked.value)) {
          throw new SafetyViolation(
            `acknowledged write lost: '${encodeWrite(acked.key, acked.value)}' was ` +
              `acknowledged at index ${acked.index}, but member ${member.id} has '${data}' there`,
          );
        }
      }
    }
  }
}
