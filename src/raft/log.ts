/**
 * The Raft log as the core sees it: stable entries in storage plus an unstable tail (and
 * possibly an unstable snapshot) not yet persisted by the application.
 */
import { assert } from '../lib/assert.js';
import type { Entry, Snapshot } from './types.js';
import type { RaftStorage } from './storage.js';
import { StorageCompactedError, StorageUnavailableError } from './errors.js';

/** Entries and a snapshot accepted by the core but not yet persisted. */
export class UnstableLog {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  /** Index of entries[0]. */
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  maybeTerm(index: number): number | undefined {
    if (index < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || index > last) return undefined;
    return (this.entries[index - this.offset] as Entry).term;
  }

  /** Drops entries up to `index` once the application reports them persisted. */
  stableTo(index: number, term: number): void {
    const known = this.maybeTerm(index);
    // Only when the term matches and the entry is still unstable: a newer leader may have
    // replaced the entry between ready() and advance().
    if (known === term && index >= this.offset) {
      this.entries = this.entries.slice(index + 1 - this.offset);
      this.offset = index + 1;
    }
  }

  stableSnapTo(index: number): void {
    if (this.snapshot && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(entries: Entry[]): void {
    const after = (entries[0] as Entry).index;
    if (after === this.offset + this.entries.length) {
      for (const entry of entries) this.entries.push(entry);
    } else if (after <= this.offset) {
      // The new entries replace the whole unstable tail.
      this.offset = after;
      this.entries = entries.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(entries);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    assert(
      lo >= this.offset && hi <= this.offset + this.entries.length,
      () => `unstable slice [${lo}, ${hi}) out of bounds [${this.offset}, ${this.offset + this.entries.length})`,
    );
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

/** The combined log: committed and applied indexes over storage plus the unstable tail. */
export class RaftLog {
  readonly storage: RaftStorage;
  readonly unstable: UnstableLog;
  committed: number;
  applied: number;

  constructor(storage: RaftStorage) {
    this.storage = storage;
    const firstIndex = storage.firstIndex();
    this.unstable = new UnstableLog(storage.lastIndex() + 1);
    this.committed = firstIndex - 1;
    this.applied = firstIndex - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, () => `last entry ${this.lastIndex()} has no term`);
    return term;
  }

  /** Term at `index`, 0 outside [firstIndex - 1, lastIndex], undefined when compacted. */
  term(index: number): number | undefined {
    const dummyIndex = this.firstIndex() - 1;
    if (index < dummyIndex || index > this.lastIndex()) return index < dummyIndex ? undefined : 0;
    const unstableTerm = this.unstable.maybeTerm(index);
    if (unstableTerm !== undefined) return unstableTerm;
    try {
      return this.storage.term(index);
    } catch (error) {
      if (error instanceof StorageCompactedError || error instanceof StorageUnavailableError) return undefined;
      throw error;
    }
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Whether a candidate's log (lastIndex, lastTerm) is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Appends leader entries after (index, logTerm) if they match; returns the new last index. */
  maybeAppend(index: number, logTerm: number, committed: number, entries: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(
        conflict > this.committed,
        () => `entry ${conflict} conflicts with committed entry (committed ${this.committed})`,
      );
      this.append(entries.slice(conflict - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNewIndex));
    return lastNewIndex;
  }

  append(entries: Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = (entries[0] as Entry).index - 1;
    assert(after >= this.committed, () => `append after ${after} is below committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /** First index whose term differs from ours (0 when all match and none are new). */
  findConflict(entries: Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /** Largest index <= `index` whose term is <= `term`: the fast-backtracking probe point. */
  findConflictByTerm(index: number, term: number): number {
    let probe = Math.min(index, this.lastIndex());
    for (; probe > 0; probe -= 1) {
      const ourTerm = this.term(probe);
      if (ourTerm === undefined || ourTerm <= term) break;
    }
    return probe;
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  /** Committed entries not yet handed to the application. */
  nextCommittedEntries(maxCount: number): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 <= lo) return [];
    return this.slice(lo, this.committed + 1, maxCount);
  }

  hasNextCommittedEntries(): boolean {
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  snapshot(): { snapshot: Snapshot } | undefined {
    if (this.unstable.snapshot) return { snapshot: this.unstable.snapshot };
    try {
      return { snapshot: this.storage.snapshot() };
    } catch {
      // Storage may be producing a snapshot right now; the leader retries on a later heartbeat.
      return undefined;
    }
  }

  /** Up to `maxCount` entries from `index` to the end; throws StorageCompactedError. */
  entriesFrom(index: number, maxCount: number): Entry[] {
    if (index > this.lastIndex()) return [];
    return this.slice(index, this.lastIndex() + 1, maxCount);
  }

  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), () => `commit ${index} is out of range [last index ${this.lastIndex()}]`);
    this.committed = index;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    assert(
      index <= this.committed && index >= this.applied,
      () => `applied ${index} out of range [prev applied ${this.applied}, committed ${this.committed}]`,
    );
    this.applied = index;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  /** Entries in [lo, hi), at most `maxCount` (at least one when any exist). */
  slice(lo: number, hi: number, maxCount: number): Entry[] {
    const first = this.firstIndex();
    if (lo < first) throw new StorageCompactedError(lo, first);
    assert(hi <= this.lastIndex() + 1, () => `slice [${lo}, ${hi}) past last index ${this.lastIndex()}`);
    const end = Math.min(hi, lo + Math.max(1, maxCount));
    if (lo >= end) return [];
    const unstableStart = this.unstable.offset;
    let result: Entry[] = [];
    if (lo < unstableStart) result = this.storage.entries(lo, Math.min(end, unstableStart));
    if (end > unstableStart) result = result.concat(this.unstable.slice(Math.max(lo, unstableStart), end));
    return result;
  }
}
