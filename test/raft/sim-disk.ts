/**
 * The simulator's fake disk for one member. Writes land in a page-cache buffer ("written");
 * fsync moves them, in order, onto the durable state; a crash throws away whatever was not
 * fsynced, except that a torn crash may keep a prefix of it, as a WAL's tail survives a power
 * cut record by record. Restart rebuilds storage from the durable state alone.
 */
import { assert } from '../../src/lib/assert.js';
import type { Prng } from '../../src/lib/prng.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import type { ConfState, Entry, HardState, Snapshot } from '../../src/raft/types.js';

/** One record as a WAL would append it; a Ready writes snapshot, then entries, then hard state. */
export type DiskWrite =
  | { kind: 'snapshot'; snapshot: Snapshot }
  | { kind: 'entries'; entries: Entry[] }
  | { kind: 'hardState'; hardState: HardState };

export interface CrashOutcome {
  lostWrites: number;
  keptWrites: number;
  torn: boolean;
}

export class FakeDisk {
  private durable: MemoryStorage;
  private written: DiskWrite[] = [];
  fsyncCount = 0;

  constructor(confState: ConfState) {
    this.durable = MemoryStorage.withConfState(confState);
  }

  /** Buffers a write; nothing is durable until fsync(). */
  write(record: DiskWrite): void {
    this.written.push(record);
  }

  unsyncedCount(): number {
    return this.written.length;
  }

  /** Makes every buffered write durable, in the order written. */
  fsync(): void {
    for (const record of this.written) applyWrite(this.durable, record);
    this.written = [];
    this.fsyncCount += 1;
  }

  /**
   * Saves the application's snapshot at `index` and drops the log before it. Like etcd's
   * snapshot save, this syncs the WAL first, so every earlier buffered write is durable too.
   */
  saveSnapshot(index: number, confState: ConfState, data: Uint8Array): void {
    this.fsync();
    assert(
      index <= this.durable.lastIndex(),
      () => `snapshot at ${index} past durable last index ${this.durable.lastIndex()}`,
    );
    if (index <= this.durable.snapshot().metadata.index) return;
    this.durable.createSnapshot(index, confState, data);
    this.durable.compact(index);
  }

  /** Loses unsynced writes; when `torn`, a random prefix of them (down to single entries) survives. */
  crash(prng: Prng, torn: boolean): CrashOutcome {
    const pending = this.written;
    this.written = [];
    if (!torn || pending.length === 0) return { lostWrites: pending.length, keptWrites: 0, torn: false };
    const kept = prng.nextInt(pending.length + 1);
    for (const record of pending.slice(0, kept)) applyWrite(this.durable, record);
    const next = pending[kept];
    if (next?.kind === 'entries' && next.entries.length > 1) {
      // The torn record: some of its entries reached the platter, the rest did not.
      applyWrite(this.durable, { kind: 'entries', entries: next.entries.slice(0, prng.nextInt(next.entries.length)) });
    }
    return { lostWrites: pending.length - kept, keptWrites: kept, torn: true };
  }

  /** A fresh storage holding exactly the durable state, as a restart reads it back. */
  recover(): MemoryStorage {
    const snapshot = this.durable.snapshot();
    let storage: MemoryStorage;
    if (snapshot.metadata.index > 0) {
      storage = new MemoryStorage();
      storage.applySnapshot(snapshot);
    } else {
      storage = MemoryStorage.withConfState(snapshot.metadata.confState);
    }
    const first = this.durable.firstIndex();
    const last = this.durable.lastIndex();
    if (last >= first) storage.append(this.durable.entries(first, last + 1));
    const { hardState } = this.durable.initialState();
    // A snapshot only ever holds committed state, so it vouches for a commit index at least its
    // own even when the hard state record written after it was lost.
    storage.setHardState({ ...hardState, commit: Math.max(hardState.commit, snapshot.metadata.index) });
    return storage;
  }

  /** The durable log itself (read only), for checkers that count who holds an entry. */
  durableLog(): MemoryStorage {
    return this.durable;
  }

  /** Durable last index, for the invariant that nothing is applied before it is durable. */
  durableLastIndex(): number {
    return this.durable.lastIndex();
  }
}

function applyWrite(storage: MemoryStorage, record: DiskWrite): void {
  switch (record.kind) {
    case 'snapshot':
      if (record.snapshot.metadata.index > storage.snapshot().metadata.index) storage.applySnapshot(record.snapshot);
      return;
    case 'entries':
      storage.append(record.entries);
      return;
    case 'hardState':
      storage.setHardState(record.hardState);
  }
}
