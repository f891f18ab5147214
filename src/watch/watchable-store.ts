/**
 * etcd's watchable store, without threads or timers: watchers that are caught up ("synced")
 * receive each write's events as the store applies it through notify(); watchers that start
 * behind ("unsynced") are caught up from the stored history in bounded passes of syncUnsynced(),
 * which the host runs between writes; a watcher whose consumer refuses a response (a full
 * stream) becomes a "victim" holding that one response until retryVictims() hands it over, then
 * catches up from history like an unsynced watcher. So a slow or historical watcher never delays
 * writes or other watchers, and nothing is dropped or reordered: a watcher's next response always
 * starts at the revision after its last one (its minRevision).
 *
 * The host supplies the history and reads through a WatchSource, and `wake` to learn that
 * unsynced or victim work is waiting.
 */

import type { KeyValue } from '../api/types.js';
import { assert } from '../lib/assert.js';
import { keyToString } from '../lib/bytes.js';
import type { MvccEvent } from '../mvcc/kv-store.js';
import { syncBytesMaxDefault, syncEventsMaxDefault, watchersPerSyncMax } from '../lib/limits.js';
import { type WatchedSpan, WatcherGroup } from './watcher-group.js';

/** Shared by every watcher without filters, so each needs no array of its own. */
const noFilters: readonly WatchFilter[] = Object.freeze([]);

/** etcd's WatchCreateRequest.FilterType values. */
export const WatchFilter = { noPut: 0, noDelete: 1 } as const;
export type WatchFilter = (typeof WatchFilter)[keyof typeof WatchFilter];

/** What the store needs from the MVCC layer. Revisions are main revisions. */
export interface WatchSource {
  currentRevision(): number;
  /** The last compaction's revision, -1 when none. */
  compactRevision(): number;
  /** Visits stored changes from `fromRevision` on in revision order until `visit` returns false. */
  scanEvents(fromRevision: number, visit: (event: MvccEvent, revision: number) => boolean | void): void;
  /** The key's value as of `revision`; undefined when absent then or compacted away. */
  previousKv(key: Uint8Array, revision: number): KeyValue | undefined;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
  prevKv?: KeyValue;
}

/** One response for one watcher: events of whole revisions, a progress mark, or a compaction cancel. */
export interface WatchResponse {
  watchId: number;
  /** The revision the response's header carries. */
  revision: number;
  events: WatchEvent[];
  /** Non-zero only when the watcher is canceled because its start revision was compacted. */
  compactRevision: number;
}

/** Takes a response for delivery; false means "full, offer it again later" and must not keep it. */
export type WatchSink = (response: WatchResponse) => boolean;

export interface WatchSpec {
  /** Reported back in every response; the store does not interpret it. */
  watchId: number;
  /** Keys as etcd's Range takes them: an empty key means "\0", the smallest. */
  key: Uint8Array;
  /** Empty: the key alone; a single zero byte: every key from `key` up; otherwise the exclusive end. */
  rangeEnd: Uint8Array;
  /** 0: from the next write on. */
  startRevision: number;
  filters?: readonly WatchFilter[];
  prevKv?: boolean;
}

export type WatcherState = 'synced' | 'unsynced' | 'victim' | 'compacted' | 'canceled';

/** A registered watcher. Callers read its fields; only the store changes them. */
export class Watcher implements WatchedSpan {
  state: WatcherState = 'unsynced';
  /** The lowest revision this watcher has not yet been sent (or filtered) events of. */
  minRevision = 0;

  constructor(
    readonly watchId: number,
    readonly key: string,
    readonly end: string | undefined,
    readonly filters: readonly WatchFilter[],
    readonly prevKv: boolean,
    readonly sink: WatchSink,
  ) {}
}

/** What one syncUnsynced() pass did. */
export interface SyncPass {
  /** Watchers still unsynced after the pass. */
  unsynced: number;
  /** Watchers the pass moved forward, synced or canceled for compaction. */
  advanced: number;
}

export interface WatchableStoreOptions {
  /** Told when unsynced or victim watchers are waiting for syncUnsynced() or retryVictims(). */
  wake?: () => void;
}

/** etcd's span rules for a watch: undefined when the range is empty (end at or before the key). */
export function watchSpan(key: Uint8Array, rangeEnd: Uint8Array): WatchedSpan | undefined {
  const start = key.length === 0 ? '\0' : keyToString(key);
  if (rangeEnd.length === 0) return { key: start, end: undefined };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { key: start, end: '' };
  const end = keyToString(rangeEnd);
  return start < end ? { key: start, end } : undefined;
}

export class WatchableStore {
  private source: WatchSource | undefined;
  private readonly synced = new WatcherGroup<Watcher>();
  private readonly unsynced = new WatcherGroup<Watcher>();
  /** Each victim's one refused response, in the order they were refused. */
  private readonly victims = new Map<Watcher, WatchResponse>();
  private readonly wake: () => void;

  constructor(source?: WatchSource, options: WatchableStoreOptions = {}) {
    this.source = source;
    this.wake = options.wake ?? (() => undefined);
  }

  /** Binds the source when it can only be built after the store (the KvStore calls notify()). */
  attach(source: WatchSource): void {
    assert(this.source === undefined, 'a watchable store is attached to a second source');
    this.source = source;
  }

  /** Watchers in each group, for status and tests. */
  get counts(): { synced: number; unsynced: number; victims: number } {
    return { synced: this.synced.size, unsynced: this.unsynced.size, victims: this.victims.size };
  }

  /** True while syncUnsynced() or retryVictims() has something to do. */
  get hasPendingWork(): boolean {
    return this.unsynced.size > 0 || this.victims.size > 0;
  }

  /** Registers a watcher; throws when the range is empty (check with watchSpan() first). */
  watch(spec: WatchSpec, sink: WatchSink): Watcher {
    const span = watchSpan(spec.key, spec.rangeEnd);
    assert(span !== undefined, 'a watch on an empty range');
    const filters = spec.filters === undefined || spec.filters.length === 0 ? noFilters : spec.filters;
    const watcher = new Watcher(spec.watchId, span.key, span.end, filters, spec.prevKv ?? false, sink);
    const current = this.requireSource().currentRevision();
    if (spec.startRevision === 0 || spec.startRevision > current) {
      watcher.minRevision = Math.max(current + 1, spec.startRevision);
      watcher.state = 'synced';
      this.synced.add(watcher);
    } else {
      watcher.minRevision = spec.startRevision;
      this.unsynced.add(watcher);
      this.wake();
    }
    return watcher;
  }

  /** Unregisters a watcher wherever it is; false when it was already canceled. */
  cancel(watcher: Watcher): boolean {
    switch (watcher.state) {
      case 'synced':
        this.synced.delete(watcher);
        break;
      case 'unsynced':
        this.unsynced.delete(watcher);
        break;
      case 'victim':
        this.victims.delete(watcher);
        break;
      case 'compacted':
        break;
      case 'canceled':
        return false;
    }
    watcher.state = 'canceled';
    return true;
  }

  /**
   * Delivers one applied write (all events of `revision`) to the synced watchers it concerns.
   * Watchers that see the same events with the same filters and prev_kv choice share one events
   * array, so the stream layer can encode it once for all of them (10,000 watchers on a key).
   */
  notify(events: readonly MvccEvent[], revision: number): void {
    if (this.synced.size === 0 || events.length === 0) return;
    const shared = new SharedEvents(events, revision, this.requireSource());
    const matched = new Map<Watcher, EventSet>();
    for (let index = 0; index < events.length; index++) {
      const event = events[index] as MvccEvent;
      assert(
        event.kv.modRevision === revision,
        () => `notify(${revision}) got an event of revision ${event.kv.modRevision}`,
      );
      this.synced.forEachWatching(keyToString(event.kv.key), (watcher) => {
        if (revision >= watcher.minRevision) matched.set(watcher, (matched.get(watcher) ?? shared.none).with(index));
      });
    }
    // Matching is finished before any sink runs, so refusals can change the synced group freely.
    for (const [watcher, set] of matched) {
      const kept = shared.eventsFor(set, watcher.filters, watcher.prevKv);
      if (kept === undefined) continue;
      const response: WatchResponse = { watchId: watcher.watchId, revision, events: kept, compactRevision: 0 };
      if (watcher.sink(response)) continue;
      this.synced.delete(watcher);
      watcher.minRevision = revision + 1;
      this.makeVictim(watcher, response);
    }
  }

  /**
   * One catch-up pass: up to watchersPerSyncMax unsynced watchers get the stored events they miss,
   * reading about `eventsMax` events and handing out about `bytesMax` of keys and values (never
   * splitting a revision, so a response stays near clients' receive limits). Watchers that reach the current
   * revision join the synced group. Reports how many are still unsynced and how many this pass
   * moved forward (0 means only refused compaction notices are left: retry later, not at once).
   */
  syncUnsynced(eventsMax = syncEventsMaxDefault, bytesMax = syncBytesMaxDefault): SyncPass {
    assert(
      eventsMax > 0 && bytesMax > 0,
      () => `syncUnsynced needs positive budgets, got ${eventsMax} events, ${bytesMax} bytes`,
    );
    if (this.unsynced.size === 0) return { unsynced: 0, advanced: 0 };
    const source = this.requireSource();
    const current = source.currentRevision();
    const compact = source.compactRevision();
    const chosen: Watcher[] = [];
    let canceled = 0;
    for (const watcher of this.unsynced) {
      if (chosen.length >= watchersPerSyncMax) break;
      const compacted = this.cancelIfCompacted(watcher, compact);
      if (compacted === 'canceled') canceled++;
      else if (compacted === 'live') chosen.push(watcher);
    }
    if (chosen.length > 0) {
      const { batches, reached } = this.readHistory(chosen, current, { eventsMax, bytesMax });
      for (const watcher of chosen) this.advance(watcher, batches.get(watcher), reached, current);
    }
    return { unsynced: this.unsynced.size, advanced: chosen.length + canceled };
  }

  /** Offers each victim its held response again; those taken catch up as unsynced. Returns how many were taken. */
  retryVictims(): number {
    if (this.victims.size === 0) return 0;
    const current = this.requireSource().currentRevision();
    let moved = 0;
    // Deleting the visited entry while iterating a Map is safe and skips no other entry.
    for (const [watcher, response] of this.victims) {
      if (!watcher.sink(response)) continue;
      this.victims.delete(watcher);
      moved++;
      if (watcher.minRevision <= current) {
        watcher.state = 'unsynced';
        this.unsynced.add(watcher);
        this.wake();
      } else {
        this.joinSynced(watcher);
      }
    }
    return moved;
  }

  /** Sends a synced watcher an event-less response at the current revision; false when not synced. */
  progress(watcher: Watcher): boolean {
    if (watcher.state !== 'synced') return false;
    watcher.sink({
      watchId: watcher.watchId,
      revision: this.requireSource().currentRevision(),
      events: [],
      compactRevision: 0,
    });
    return true;
  }

  /** After the store's contents were replaced (a snapshot restore), every synced watcher re-checks history. */
  resync(): void {
    const moved = [...this.synced];
    for (const watcher of moved) {
      this.synced.delete(watcher);
      watcher.state = 'unsynced';
      this.unsynced.add(watcher);
    }
    if (moved.length > 0) this.wake();
  }

  private requireSource(): WatchSource {
    assert(this.source !== undefined, 'the watchable store is used before a source is attached');
    return this.source;
  }

  /** etcd cancels a watcher whose next revision is below the compaction: that history is gone. */
  private cancelIfCompacted(watcher: Watcher, compact: number): 'live' | 'canceled' | 'refused' {
    if (compact < 0 || watcher.minRevision >= compact) return 'live';
    // etcd sends this response with a zero header revision; a refused one is tried on the next pass.
    if (!watcher.sink({ watchId: watcher.watchId, revision: 0, events: [], compactRevision: compact }))
      return 'refused';
    this.unsynced.delete(watcher);
    watcher.state = 'compacted';
    return 'canceled';
  }

  /** Reads history from the lowest minRevision of `chosen`, stopping at a revision boundary once a budget is spent. */
  private readHistory(
    chosen: Watcher[],
    current: number,
    budget: { eventsMax: number; bytesMax: number },
  ): { batches: Map<Watcher, MvccEvent[]>; reached: number } {
    const group = new WatcherGroup<Watcher>();
    let fromRevision = Number.POSITIVE_INFINITY;
    for (const watcher of chosen) {
      group.add(watcher);
      fromRevision = Math.min(fromRevision, watcher.minRevision);
    }
    const batches = new Map<Watcher, MvccEvent[]>();
    let scanned = 0;
    let handedBytes = 0;
    let lastRevision = fromRevision - 1;
    let complete = true;
    this.requireSource().scanEvents(fromRevision, (event, revision) => {
      if (revision > current) return false;
      if (revision !== lastRevision) {
        if (scanned >= budget.eventsMax || handedBytes >= budget.bytesMax) {
          complete = false;
          return false;
        }
        lastRevision = revision;
      }
      scanned++;
      let wanted = false;
      group.forEachWatching(keyToString(event.kv.key), (watcher) => {
        if (revision < watcher.minRevision) return;
        appendTo(batches, watcher, event);
        wanted = true;
      });
      if (wanted) handedBytes += event.kv.key.length + event.kv.value.length;
      return true;
    });
    return { batches, reached: complete ? current : lastRevision };
  }

  /** Sends an unsynced watcher what it got from history up to `reached`, then files it where it belongs. */
  private advance(watcher: Watcher, batch: MvccEvent[] | undefined, reached: number, current: number): void {
    this.unsynced.delete(watcher);
    watcher.minRevision = Math.max(watcher.minRevision, reached + 1);
    const response = batch === undefined ? undefined : this.respond(watcher, batch, reached);
    if (response !== undefined && !watcher.sink(response)) {
      this.makeVictim(watcher, response);
      return;
    }
    if (watcher.minRevision > current) {
      this.joinSynced(watcher);
    } else {
      // Re-adding puts it behind the others, so more than watchersPerSyncMax take turns.
      this.unsynced.add(watcher);
    }
  }

  /** The response a watcher gets for `events` after its filters, with previous values if asked; undefined if all were filtered. */
  private respond(watcher: Watcher, events: readonly MvccEvent[], revision: number): WatchResponse | undefined {
    const kept = watcher.filters.length === 0 ? events : events.filter((event) => !filteredOut(watcher.filters, event));
    if (kept.length === 0) return undefined;
    const out = kept.map((event): WatchEvent => {
      if (!watcher.prevKv || isCreate(event)) return { type: event.type, kv: event.kv };
      const prevKv = this.requireSource().previousKv(event.kv.key, event.kv.modRevision - 1);
      return prevKv === undefined ? { type: event.type, kv: event.kv } : { type: event.type, kv: event.kv, prevKv };
    });
    return { watchId: watcher.watchId, revision, events: out, compactRevision: 0 };
  }

  private makeVictim(watcher: Watcher, response: WatchResponse): void {
    watcher.state = 'victim';
    this.victims.set(watcher, response);
    this.wake();
  }

  private joinSynced(watcher: Watcher): void {
    watcher.state = 'synced';
    this.synced.add(watcher);
  }
}

/** A set of event indices of one revision, interned so watchers matching the same events share one node. */
class EventSet {
  private readonly next = new Map<number, EventSet>();
  /** Events kept for each filters-and-prev_kv variant; null when the filters drop them all. */
  readonly variants = new Map<number, WatchEvent[] | null>();

  constructor(readonly indices: readonly number[]) {}

  /** The set with `index` appended; indices arrive in increasing order. */
  with(index: number): EventSet {
    let set = this.next.get(index);
    if (set === undefined) this.next.set(index, (set = new EventSet([...this.indices, index])));
    return set;
  }
}

/** One revision's events as watchers receive them, each variant built (and prev_kv read) once. */
class SharedEvents {
  readonly none = new EventSet([]);
  private readonly previous = new Map<number, KeyValue | undefined>();

  constructor(
    private readonly events: readonly MvccEvent[],
    private readonly revision: number,
    private readonly source: WatchSource,
  ) {}

  /** The events of `set` that pass `filters`, with previous values when asked; undefined when none pass. */
  eventsFor(set: EventSet, filters: readonly WatchFilter[], prevKv: boolean): WatchEvent[] | undefined {
    const variant = variantOf(filters, prevKv);
    let kept = set.variants.get(variant);
    if (kept === undefined) {
      kept = this.build(set, filters, prevKv);
      set.variants.set(variant, kept);
    }
    return kept ?? undefined;
  }

  private build(set: EventSet, filters: readonly WatchFilter[], prevKv: boolean): WatchEvent[] | null {
    const out: WatchEvent[] = [];
    for (const index of set.indices) {
      const event = this.events[index] as MvccEvent;
      if (filters.length > 0 && filteredOut(filters, event)) continue;
      const previous = prevKv ? this.previousOf(index, event) : undefined;
      out.push(
        previous === undefined
          ? { type: event.type, kv: event.kv }
          : { type: event.type, kv: event.kv, prevKv: previous },
      );
    }
    return out.length === 0 ? null : out;
  }

  private previousOf(index: number, event: MvccEvent): KeyValue | undefined {
    if (isCreate(event)) return undefined;
    if (!this.previous.has(index)) this.previous.set(index, this.source.previousKv(event.kv.key, this.revision - 1));
    return this.previous.get(index);
  }
}

/** A small number naming a watcher's filters and prev_kv choice; equal numbers get equal events. */
function variantOf(filters: readonly WatchFilter[], prevKv: boolean): number {
  let variant = prevKv ? 1 : 0;
  for (const filter of filters) variant |= filter === WatchFilter.noPut ? 2 : 4;
  return variant;
}

function appendTo(batches: Map<Watcher, MvccEvent[]>, watcher: Watcher, event: MvccEvent): void {
  const batch = batches.get(watcher);
  if (batch === undefined) batches.set(watcher, [event]);
  else batch.push(event);
}

function filteredOut(filters: readonly WatchFilter[], event: MvccEvent): boolean {
  return filters.some((filter) => (filter === WatchFilter.noPut ? event.type === 'put' : event.type === 'delete'));
}

/** etcd's isCreateEvent: a put that made the key (no previous value to look up). */
function isCreate(event: MvccEvent): boolean {
  return event.type === 'put' && event.kv.createRevision === event.kv.modRevision;
}
