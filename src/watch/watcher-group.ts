/**
 * A set of watchers indexed by what they watch, as etcd's watcherGroup: single-key watchers in a
 * map by key, range watchers grouped by their exact [key, end) so watchers sharing a range (many
 * clients on one prefix) cost one comparison per event.
 */

import { assert } from '../lib/assert.js';

/** What a watcher watches, with keys as latin1 strings (byte order = string order). */
export interface WatchedSpan {
  readonly key: string;
  /** undefined: the single key; '': every key from `key` up; otherwise the exclusive end. */
  readonly end: string | undefined;
}

interface RangeEntry<W> {
  key: string;
  end: string;
  members: Set<W>;
}

/** True when `key` falls inside `span`. */
export function spanContains(span: WatchedSpan, key: string): boolean {
  if (span.end === undefined) return key === span.key;
  return key >= span.key && (span.end === '' || key < span.end);
}

export class WatcherGroup<W extends WatchedSpan> {
  private readonly byKey = new Map<string, Set<W>>();
  private readonly byRange = new Map<string, RangeEntry<W>>();
  private readonly members = new Set<W>();

  get size(): number {
    return this.members.size;
  }

  has(watcher: W): boolean {
    return this.members.has(watcher);
  }

  /** Members in the order they were added. */
  [Symbol.iterator](): IterableIterator<W> {
    return this.members.values();
  }

  add(watcher: W): void {
    assert(!this.members.has(watcher), 'a watcher is added to a group it is already in');
    this.members.add(watcher);
    if (watcher.end === undefined) {
      let set = this.byKey.get(watcher.key);
      if (set === undefined) this.byKey.set(watcher.key, (set = new Set()));
      set.add(watcher);
      return;
    }
    const id = rangeId(watcher.key, watcher.end);
    let entry = this.byRange.get(id);
    if (entry === undefined) this.byRange.set(id, (entry = { key: watcher.key, end: watcher.end, members: new Set() }));
    entry.members.add(watcher);
  }

  /** Removes `watcher`; false when it was not a member. */
  delete(watcher: W): boolean {
    if (!this.members.delete(watcher)) return false;
    if (watcher.end === undefined) {
      const set = this.byKey.get(watcher.key);
      assert(set?.delete(watcher) === true, 'a single-key watcher is missing from its key set');
      if (set.size === 0) this.byKey.delete(watcher.key);
      return true;
    }
    const id = rangeId(watcher.key, watcher.end);
    const entry = this.byRange.get(id);
    assert(entry?.members.delete(watcher) === true, 'a range watcher is missing from its range set');
    if (entry.members.size === 0) this.byRange.delete(id);
    return true;
  }

  /** Calls `visit` once for every member watching `key`. */
  forEachWatching(key: string, visit: (watcher: W) => void): void {
    const exact = this.byKey.get(key);
    if (exact !== undefined) for (const watcher of exact) visit(watcher);
    if (this.byRange.size === 0) return;
    for (const entry of this.byRange.values()) {
      if (!spanContains(entry, key)) continue;
      for (const watcher of entry.members) visit(watcher);
    }
  }
}

/** A map key for [key, end) that no other pair shares. */
function rangeId(key: string, end: string): string {
  return `${key.length}:${key}${end}`;
}
