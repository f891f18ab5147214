/**
 * etcd's treeIndex: every key ever written (until compacted away) in byte order, each with its
 * KeyIndex history. Keys are latin1 strings so a B+tree with plain string comparison orders
 * them exactly as etcd's bytes.Compare does.
 */

import sortedBtree from 'sorted-btree';
import { assert } from '../lib/assert.js';
import { KeyIndex, type KeyAtRevision } from './key-index.js';
import type { Revision } from './revision.js';

const BTree = sortedBtree.default;

/** Node fan-out; larger nodes mean fewer allocations for millions of keys. */
const btreeNodeSizeDefault = 64;

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A live key found by a range: its bytes (as a latin1 string) and state at the read revision. */
export interface RangeHit extends KeyAtRevision {
  key: string;
}

/**
 * The B+tree gives key order for ranges; a hash map beside it answers point lookups, which are
 * most of the traffic (every put looks its key up) and cost a tree descent of string compares.
 * New keys reach the tree lazily, sorted, when something needs key order: inserting sorted
 * keys walks a cache-warm path, so bulk loads and restores take about half the time
 * (measured: 1M random keys 4.0 s one by one, 2.4 s sorted then inserted).
 */
export class TreeIndex {
  private readonly tree = new BTree<string, KeyIndex>(undefined, compareStrings, btreeNodeSizeDefault);
  private readonly byKey = new Map<string, KeyIndex>();
  /** Keys in byKey but not yet in the tree. */
  private unordered: string[] = [];
  /** Keys live now (etcd's etcd_debugging_mvcc_keys_total); put, tombstone and insert keep it. */
  private liveCount = 0;

  /** Number of keys with any history left in the index. */
  get size(): number {
    return this.byKey.size;
  }

  /** Number of keys live at the latest revision. */
  get liveKeys(): number {
    return this.liveCount;
  }

  /** Counts the live keys again, after key histories were changed in place (a restore). */
  recountLive(): void {
    this.liveCount = 0;
    for (const ki of this.byKey.values()) if (ki.revs.length > 0) this.liveCount++;
  }

  /** The key's state at `atRev`, or undefined if absent then. */
  get(key: string, atRev: number): KeyAtRevision | undefined {
    return this.byKey.get(key)?.get(atRev);
  }

  /** Records a put of `key` at `rev`. */
  put(key: string, rev: Revision): void {
    let ki = this.byKey.get(key);
    if (ki === undefined) {
      ki = new KeyIndex(key);
      this.insert(ki);
    }
    if (ki.revs.length === 0) this.liveCount++;
    ki.put(rev);
  }

  /** Records a delete of `key` at `rev`; false when the key is not live. */
  tombstone(key: string, rev: Revision): boolean {
    const ki = this.byKey.get(key);
    const deleted = ki !== undefined && ki.tombstone(rev);
    if (deleted) this.liveCount--;
    return deleted;
  }

  /** The key's full history, for restore. */
  keyIndex(key: string): KeyIndex | undefined {
    return this.byKey.get(key);
  }

  /** Adds a new key history. */
  insert(ki: KeyIndex): void {
    // The size tells a new key from a replaced one without a second hash lookup (a restore inserts
    // a million keys).
    const sizeBefore = this.byKey.size;
    this.byKey.set(ki.key, ki);
    assert(this.byKey.size === sizeBefore + 1, () => `key ${JSON.stringify(ki.key)} is already indexed`);
    this.unordered.push(ki.key);
    if (ki.revs.length > 0) this.liveCount++;
  }

  /** The tree with every key in it. */
  private ordered(): InstanceType<typeof BTree<string, KeyIndex>> {
    if (this.unordered.length > 0) {
      // Default sort compares UTF-16 code units, which for latin1 strings is byte order.
      this.unordered.sort();
      for (const key of this.unordered) this.tree.set(key, this.byKey.get(key)!);
      this.unordered = [];
    }
    return this.tree;
  }

  /**
   * Visits keys live at `atRev` in [key, end) in byte order; `end` undefined means only `key`,
   * `end` empty means no upper bound (etcd's "\0" range end after mkGteRange).
   */
  visitLive(key: string, end: string | undefined, atRev: number, visit: (hit: RangeHit) => void): void {
    if (end === undefined) {
      const state = this.get(key, atRev);
      if (state !== undefined) visit({ key, ...state });
      return;
    }
    const onKey = (k: string, ki: KeyIndex): void => {
      const state = ki.get(atRev);
      if (state !== undefined) visit({ key: k, ...state });
    };
    const tree = this.ordered();
    if (end === '') {
      const max = tree.maxKey();
      if (max !== undefined && max >= key) tree.forRange(key, max, true, onKey);
      return;
    }
    if (end > key) tree.forRange(key, end, false, onKey);
  }

  /** Compacts every key at `atRev`, drops keys left empty, and returns the revisions removed. */
  compact(atRev: number): Revision[] {
    const removed: Revision[] = [];
    this.ordered().editAll((key, ki) => {
      ki.compact(atRev, removed);
      if (!ki.isEmpty()) return undefined;
      this.byKey.delete(key);
      return { delete: true };
    });
    return removed;
  }

  /** The revisions at or below `atRev` that a compaction there would keep, as revisionKey strings. */
  keep(atRev: number): Set<string> {
    const keep = new Set<string>();
    this.ordered().forEachPair((_key, ki) => {
      ki.keep(atRev, keep);
    });
    return keep;
  }
}
