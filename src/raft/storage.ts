/**
 * The storage contract the core reads (never writes) and its in-memory twin. The application
 * writes to storage after it has persisted a Ready; the core only reads stable state from it.
 */
import { assert } from '../lib/assert.js';
import { type ConfState, type Entry, type HardState, type Snapshot, EntryType, emptyHardState } from './types.js';
import { SnapshotOutOfDateError, StorageCompactedError, StorageUnavailableError } from './errors.js';

/** Read-only view of persisted Raft state. Indexes are inclusive unless said otherwise. */
export interface RaftStorage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi); throws StorageCompactedError when lo < firstIndex(). */
  entries(lo: number, hi: number): Entry[];
  /** Term of the entry at index, for index in [firstIndex() - 1, lastIndex()]. */
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

export function emptySnapshot(): Snapshot {
  return { data: new Uint8Array(0), metadata: { confState: emptyConfState(), index: 0, term: 0 } };
}

/** Storage kept entirely in memory: the twin used by tests, the simulator and single-process runs. */
export class MemoryStorage implements RaftStorage {
  private hardState: HardState = { ...emptyHardState };
  private currentSnapshot: Snapshot = emptySnapshot();
  // entries[0] is a dummy holding the snapshot's index and term, so term(firstIndex - 1) works.
  private log: Entry[] = [{ term: 0, index: 0, type: EntryType.normal, data: new Uint8Array(0) }];
  /** Bytes of entry data the log holds (the dummy holds none), kept as entries come and go. */
  private dataBytes = 0;

  /** Seeds a fresh storage with a configuration, as a new cluster's bootstrap does. */
  static withConfState(confState: ConfState): MemoryStorage {
    const storage = new MemoryStorage();
    storage.currentSnapshot = { ...storage.currentSnapshot, metadata: { confState, index: 0, term: 0 } };
    return storage;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: this.currentSnapshot.metadata.confState };
  }

  setHardState(hardState: HardState): void {
    this.hardState = { ...hardState };
  }

  entries(lo: number, hi: number): Entry[] {
    const offset = this.dummy().index;
    if (lo <= offset) throw new StorageCompactedError(lo, offset + 1);
    assert(hi <= this.lastIndex() + 1, () => `entries hi ${hi} past last index ${this.lastIndex()}`);
    return this.log.slice(lo - offset, hi - offset);
  }

  term(index: number): number {
    const offset = this.dummy().index;
    if (index < offset) throw new StorageCompactedError(index, offset + 1);
    if (index - offset >= this.log.length) throw new StorageUnavailableError(index, this.lastIndex());
    return (this.log[index - offset] as Entry).term;
  }

  firstIndex(): number {
    return this.dummy().index + 1;
  }

  lastIndex(): number {
    return this.dummy().index + this.log.length - 1;
  }

  snapshot(): Snapshot {
    return this.currentSnapshot;
  }

  /** Replaces storage contents with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    const current = this.currentSnapshot.metadata.index;
    if (snapshot.metadata.index <= current) throw new SnapshotOutOfDateError(snapshot.metadata.index, current);
    this.currentSnapshot = snapshot;
    const { index, term } = snapshot.metadata;
    this.log = [{ term, index, type: EntryType.normal, data: new Uint8Array(0) }];
    this.dataBytes = 0;
  }

  /** Records a snapshot of the application state at `index` (which must be applied already). */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const current = this.currentSnapshot.metadata.index;
    if (index <= current) throw new SnapshotOutOfDateError(index, current);
    assert(index <= this.lastIndex(), () => `snapshot index ${index} past last index ${this.lastIndex()}`);
    const term = this.term(index);
    this.currentSnapshot = { data, metadata: { confState, index, term } };
    return this.currentSnapshot;
  }

  /** Discards entries before `index`; the entry at `index` becomes the new dummy. */
  compact(index: number): void {
    const offset = this.dummy().index;
    if (index <= offset) throw new StorageCompactedError(index, offset + 1);
    assert(index <= this.lastIndex(), () => `compact ${index} past last index ${this.lastIndex()}`);
    for (let i = 1; i <= index - offset; i++) this.dataBytes -= (this.log[i] as Entry).data.length;
    const kept = this.log.slice(index - offset);
    const head = kept[0] as Entry;
    kept[0] = { term: head.term, index: head.index, type: EntryType.normal, data: new Uint8Array(0) };
    this.log = kept;
  }

  /** Appends persisted entries, truncating any conflicting suffix first. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = (entries[entries.length - 1] as Entry).index;
    if (last < first) return;
    // Skip entries already compacted away.
    const fresh = (entries[0] as Entry).index < first ? entries.slice(first - (entries[0] as Entry).index) : entries;
    const start = (fresh[0] as Entry).index;
    assert(start <= this.lastIndex() + 1, () => `append gap: first new index ${start}, last index ${this.lastIndex()}`);
    const offset = this.dummy().index;
    // Truncate any conflicting suffix in place, then push: appends stay linear in their size.
    for (let i = start - offset; i < this.log.length; i++) this.dataBytes -= (this.log[i] as Entry).data.length;
    this.log.length = start - offset;
    for (const entry of fresh) {
      this.log.push(entry);
      this.dataBytes += entry.data.length;
    }
  }

  /** Bytes of entry data held in memory; what a snapshot and compaction can give back. */
  entryBytes(): number {
    return this.dataBytes;
  }

  /**
   * The lowest index to compact at so that the entries kept after it, up to `index`, hold at most
   * `bytesMax` bytes of data; the dummy's index (firstIndex() - 1) when they all fit. Entries past
   * `index` are not counted.
   */
  compactIndexKeeping(index: number, bytesMax: number): number {
    const offset = this.dummy().index;
    assert(
      index > offset && index <= this.lastIndex(),
      () => `index ${index} outside the log (${offset}, ${this.lastIndex()}]`,
    );
    let keptBytes = 0;
    for (let at = index; at > offset; at--) {
      keptBytes += (this.log[at - offset] as Entry).data.length;
      if (keptBytes > bytesMax) return at;
    }
    // Everything fits: the dummy's index, which compacts nothing.
    return offset;
  }

  private dummy(): Entry {
    return this.log[0] as Entry;
  }
}
