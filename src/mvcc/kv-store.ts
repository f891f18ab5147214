/**
 * The MVCC key-value store, with etcd's semantics: every write transaction makes a new store
 * revision, every key keeps its history until compaction, and reads can go back to any
 * revision not yet compacted. Applied Raft entries come in through apply(), which records the
 * entry's index and term in the same backend batch as the data it wrote.
 */

import type {
  CompactionRequest,
  DeleteRangeRequest,
  DeleteRangeResult,
  KeyValue,
  KvProposalBody,
  ProposalResult,
  PutRequest,
  PutResult,
  RangeRequest,
  RangeResult,
  ResponseOp,
  TxnRequest,
  TxnResult,
} from '../api/types.js';
import { errors, EtcdError } from '../api/errors.js';
import { assert, unreachable } from '../lib/assert.js';
import type { Backend, BackendBatch, IndexRecord } from './backend.js';
import { compareHolds } from './compare.js';
import { copyBytes, keyToString } from '../lib/bytes.js';
import { encodeKeyValue } from '../api/key-value-codec.js';
import { compactionBatchLimitDefault } from '../lib/limits.js';
import { crc32cUpdate } from '../lib/crc32c.js';
import { KeyIndex, revisionKey } from './key-index.js';
import { fetchLimit, shapeRangeResult } from './range-options.js';
import { type ReadView, keySpan, rangeKeys } from './read-view.js';
import { encodeRevision, type Revision } from './revision.js';
import { TreeIndex } from './tree-index.js';
import { choosePath, chosenOps, forEachChosenOp, type TxnPath } from './txn-path.js';
import { isTxnReadOnly } from '../api/txn-read-only.js';
import { type MvccEvent, WriteTxn } from './write-txn.js';
import { MvccOpCounts } from './op-counts.js';

export type { MvccEvent } from './write-txn.js';

export interface KvStoreOptions {
  /** Whether a lease exists; until a lessor is wired in, no lease does (etcd's answer without one). */
  leaseExists?: (id: bigint) => boolean;
  /** Called after each write transaction that changed something, with its events and new revision. */
  onChanges?: (events: MvccEvent[], revision: number) => void;
  /** --experimental-compaction-batch-limit: revisions one backend batch of a compaction deletes at most. */
  compactionBatchLimit?: number;
}

/** What applying one entry did. `revision` is the one etcd puts in the response header. */
export interface ApplyOutcome {
  result: ProposalResult;
  revision: number;
  events: MvccEvent[];
}

export interface HashKvResult {
  hash: number;
  /** The store's current revision. */
  revision: number;
  compactRevision: number;
}

const noLease = 0n;
/** etcd's bucket name, hashed first by HashKV. */
const keyBucketName = new TextEncoder().encode('key');

export class KvStore {
  /** etcd's etcd_mvcc_{range,put,delete,txn}_total, counted per store transaction. */
  readonly opCounts = new MvccOpCounts();
  private index = new TreeIndex();
  private currentRev = 1;
  private compactMainRev = -1;
  private appliedIndex = 0;
  private appliedTerm = 0;
  /** The committed state as a read view; its fields follow the store (one object, no per-read allocation). */
  private readonly view: ReadView;
  private readonly leaseExists: (id: bigint) => boolean;
  private eventsWanted = false;
  /** Live keys with a lease as the last restore found them (latin1 key to lease), until taken. */
  private restoredLeases = new Map<string, bigint>();
  private readonly onChanges: ((events: MvccEvent[], revision: number) => void) | undefined;
  private readonly compactionBatchLimit: number;

  private constructor(
    private backend: Backend,
    options: KvStoreOptions,
  ) {
    const currentRev = (): number => this.currentRev;
    const compactRev = (): number => this.compactMainRev;
    this.view = {
      get rev() {
        return currentRev();
      },
      get firstRev() {
        return compactRev();
      },
      valueAt: (rev) => this.backend.get(rev),
    };
    this.leaseExists = options.leaseExists ?? (() => false);
    this.onChanges = options.onChanges;
    this.compactionBatchLimit = options.compactionBatchLimit ?? compactionBatchLimitDefault;
    assert(
      Number.isSafeInteger(this.compactionBatchLimit) && this.compactionBatchLimit > 0,
      () => `the compaction batch limit must be a positive integer, got ${this.compactionBatchLimit}`,
    );
  }

  /** Rebuilds the index, revisions and applied index from what the backend holds. */
  static open(backend: Backend, options: KvStoreOptions = {}): KvStore {
    const store = new KvStore(backend, options);
    store.restore();
    return store;
  }

  /**
   * Replaces everything with what `backend` holds (a snapshot received from the leader), as etcd's
   * mvcc Restore: the index, revisions and applied index are rebuilt from it. The caller owns the
   * old backend and closes it.
   */
  restoreFrom(backend: Backend): void {
    this.backend = backend;
    this.index = new TreeIndex();
    this.currentRev = 1;
    this.compactMainRev = -1;
    this.restore();
  }

  /**
   * The live keys (latin1, as keyToString) that carried a lease when the store was last opened or restored, handed over
   * once: the lessor re-attaches them and follows every later change through the store's events.
   * The restore collects them from the revisions it reads anyway, so no pass over the values is needed.
   */
  takeRestoredLeases(): ReadonlyMap<string, bigint> {
    const leased = this.restoredLeases;
    this.restoredLeases = new Map();
    return leased;
  }

  /** The revision of the last write transaction (1 for an empty store, as etcd). */
  get currentRevision(): number {
    return this.currentRev;
  }

  /** The revision of the last compaction, -1 if there was none (etcd's compactMainRev). */
  get compactRevision(): number {
    return this.compactMainRev;
  }

  /** The last Raft index applied to this store. */
  get consistentIndex(): number {
    return this.appliedIndex;
  }

  /** The term of that entry. */
  get consistentTerm(): number {
    return this.appliedTerm;
  }

  /** Number of keys live at the current revision. */
  get liveKeys(): number {
    return this.index.liveKeys;
  }

  /** Number of keys with history in the index (live or awaiting compaction). */
  get indexedKeys(): number {
    return this.index.size;
  }

  /** A read at the current revision (or the one requested). */
  range(request: RangeRequest): RangeResult {
    try {
      return this.rangeIn(this.view, request);
    } finally {
      this.opCounts.endTxn();
    }
  }

  /** Runs a read-only txn; any other must come through apply(), as etcd proposes it. */
  txn(request: TxnRequest): TxnResult {
    assert(isTxnReadOnly(request), 'a txn that is not read-only must be applied through Raft with apply()');
    try {
      const path = this.checkTxn(request, false);
      return this.runPath(request, path, this.view, undefined);
    } finally {
      this.opCounts.endTxn();
    }
  }

  /** Applies one committed proposal at Raft (index, term); request errors are thrown as EtcdError. */
  apply(index: number, term: number, body: KvProposalBody): ProposalResult {
    return this.applyEntry(index, term, body, false).result;
  }

  /** Like apply(), also returning the header revision and the watch events. */
  applyWithEvents(index: number, term: number, body: KvProposalBody): ApplyOutcome {
    return this.applyEntry(index, term, body, true);
  }

  private applyEntry(index: number, term: number, body: KvProposalBody, eventsWanted: boolean): ApplyOutcome {
    this.eventsWanted = eventsWanted || this.onChanges !== undefined;
    assert(
      index > this.appliedIndex,
      () => `entry ${index} was already applied (consistent index ${this.appliedIndex})`,
    );
    try {
      return this.applyBody(index, term, body);
    } catch (error) {
      // A refused request still consumed its entry: remember that, or a restart would redo it.
      if (error instanceof EtcdError && this.appliedIndex < index) this.recordApplied(index, term);
      throw error;
    } finally {
      this.opCounts.endTxn();
    }
  }

  /** Records an entry that changed nothing here (a conf change, a lease op, a failed request). */
  recordApplied(index: number, term: number): void {
    assert(index >= this.appliedIndex, () => `applied index moves backwards: ${index} after ${this.appliedIndex}`);
    this.backend.write({ puts: [], deletes: [], meta: { consistentIndex: index, term } });
    this.appliedIndex = index;
    this.appliedTerm = term;
  }

  /**
   * etcd's HashKV: CRC-32C over the "key" bucket name and then every stored (revision, KeyValue)
   * up to `revision` (0 = current), skipping compacted-away history that compaction keeps no more.
   */
  hashKV(revision: number): HashKvResult {
    const compactRevision = this.compactMainRev;
    const currentRevision = this.currentRev;
    if (revision > 0 && revision <= compactRevision) throw errors.compacted();
    if (revision > currentRevision) throw errors.futureRev();
    const upper = revision === 0 ? currentRevision : revision;
    const keep = this.index.keep(upper);
    let crc = crc32cUpdate(0, keyBucketName);
    this.backend.scan({ main: 0, sub: 0 }, (rev, stored) => {
      if (rev.main > upper) return false;
      if (rev.main <= compactRevision && keep.size > 0 && !keep.has(revisionKey(rev))) return true;
      crc = crc32cUpdate(crc32cUpdate(crc, encodeRevision(rev, stored.tombstone)), encodeKeyValue(stored.kv));
      return true;
    });
    return { hash: crc, revision: currentRevision, compactRevision };
  }

  /** Visits every stored change from `fromRevision` up to now, in revision order, as watch events. */
  scanEvents(fromRevision: number, visit: (event: MvccEvent, rev: Revision) => boolean | void): void {
    this.backend.scan({ main: Math.max(fromRevision, 0), sub: 0 }, (rev, stored) =>
      visit(
        stored.tombstone
          ? { type: 'delete', kv: { ...stored.kv, modRevision: rev.main } }
          : { type: 'put', kv: stored.kv },
        rev,
      ),
    );
  }

  private applyBody(index: number, term: number, body: KvProposalBody): ApplyOutcome {
    switch (body.type) {
      case 'put':
        return this.write(
          index,
          term,
          (tw) => ({ type: 'put', put: this.putTop(tw, body.put) }),
          () => this.checkPut(body.put),
        );
      case 'deleteRange':
        return this.write(index, term, (tw) => ({
          type: 'deleteRange',
          deleteRange: this.deleteIn(tw, body.deleteRange),
        }));
      case 'txn':
        return this.applyTxn(index, term, body.txn);
      case 'compaction':
        return this.compact(index, term, body.compaction);
      default:
        return unreachable(body);
    }
  }

  /** Runs `run` in a write transaction and commits its writes with the entry's index in one batch. */
  private write(index: number, term: number, run: (tw: WriteTxn) => ProposalResult, check?: () => void): ApplyOutcome {
    check?.();
    const tw = new WriteTxn(this.index, this.view, this.currentRev);
    const result = run(tw);
    return this.commit(index, term, tw, result);
  }

  private commit(index: number, term: number, tw: WriteTxn, result: ProposalResult): ApplyOutcome {
    const batch: BackendBatch = { ...tw.batch(), meta: { consistentIndex: index, term } };
    this.backend.write(batch);
    this.appliedIndex = index;
    this.appliedTerm = term;
    if (!tw.changed) return { result, revision: this.currentRev, events: [] };
    this.currentRev++;
    // Building events costs an object per write; skip it when nobody listens.
    const events = this.eventsWanted ? tw.events() : [];
    this.onChanges?.(events, this.currentRev);
    return { result, revision: this.currentRev, events };
  }

  private rangeIn(view: ReadView, request: RangeRequest): RangeResult {
    this.opCounts.countRange();
    const span = keySpan(request.key, request.rangeEnd);
    const { kvs, count } = rangeKeys(this.index, view, span, {
      revision: request.revision,
      limit: fetchLimit(request),
      countOnly: request.countOnly,
    });
    return shapeRangeResult(request, kvs, count);
  }

  /** The key's current value as `view` sees it. */
  private current(view: ReadView, key: Uint8Array): KeyValue | undefined {
    this.opCounts.countRange();
    return rangeKeys(this.index, view, keySpan(key, new Uint8Array(0)), { revision: 0, limit: 0, countOnly: false })
      .kvs[0];
  }

  /** Checks etcd makes before a put proposal runs: the lease must exist. */
  private checkPut(request: PutRequest): void {
    if (request.lease !== noLease && !this.leaseExists(request.lease)) throw errors.leaseNotFound();
  }

  /** A put outside a txn: ignore_value/ignore_lease need the key, as etcd's applier checks. */
  private putTop(tw: WriteTxn, request: PutRequest): PutResult {
    if ((request.ignoreValue || request.ignoreLease) && this.current(tw, request.key) === undefined)
      throw errors.keyNotFound();
    return this.putIn(tw, request);
  }

  private putIn(tw: WriteTxn, request: PutRequest): PutResult {
    const needPrevious = request.ignoreValue || request.ignoreLease || request.prevKv;
    const previous = needPrevious ? this.current(tw, request.key) : undefined;
    // Inside a txn these were checked up front; an earlier op of the same txn deleting the key
    // is the one way to get here without it, and etcd panics on that too.
    assert(
      !((request.ignoreValue || request.ignoreLease) && previous === undefined),
      'ignore_value/ignore_lease put on a key deleted earlier in the same txn',
    );
    const value = request.ignoreValue ? previous!.value : copyBytes(request.value);
    const lease = request.ignoreLease ? previous!.lease : request.lease;
    const key = copyBytes(request.key);
    tw.put(key, keyToString(key), value, lease);
    this.opCounts.countPut();
    return request.prevKv && previous !== undefined ? { prevKv: previous } : {};
  }

  private deleteIn(tw: WriteTxn, request: DeleteRangeRequest): DeleteRangeResult {
    const span = keySpan(request.key, request.rangeEnd);
    if (request.prevKv) this.opCounts.countRange();
    const prevKvs = request.prevKv
      ? rangeKeys(this.index, tw, span, { revision: 0, limit: 0, countOnly: false }).kvs
      : [];
    const deleted = tw.deleteRange(span);
    this.opCounts.countDelete();
    return { deleted, prevKvs };
  }

  private applyTxn(index: number, term: number, request: TxnRequest): ApplyOutcome {
    const writes = !isTxnReadOnly(request);
    const path = this.checkTxn(request, writes);
    if (!writes) {
      const result: ProposalResult = { type: 'txn', txn: this.runPath(request, path, this.view, undefined) };
      this.recordApplied(index, term);
      return { result, revision: this.currentRev, events: [] };
    }
    return this.write(index, term, (tw) => ({ type: 'txn', txn: this.runPath(request, path, tw, tw) }));
  }

  /** Decides every branch against the store before the txn, then checks the ops the branches run. */
  private checkTxn(request: TxnRequest, writes: boolean): TxnPath {
    const view = this.view;
    const path = choosePath(request, (txn) =>
      txn.compare.every((compare) => {
        this.opCounts.countRange();
        const span = keySpan(compare.key, compare.rangeEnd);
        return compareHolds(
          compare,
          rangeKeys(this.index, view, span, { revision: 0, limit: 0, countOnly: false }).kvs,
        );
      }),
    );
    if (writes) forEachChosenOp(request, path, (op) => this.checkTxnPut(view, op.type === 'put' ? op.put : undefined));
    forEachChosenOp(request, path, (op) => {
      if (op.type === 'range') checkTxnRange(view, op.range.revision);
    });
    return path;
  }

  private checkTxnPut(view: ReadView, request: PutRequest | undefined): void {
    if (request === undefined) return;
    if ((request.ignoreValue || request.ignoreLease) && this.current(view, request.key) === undefined)
      throw errors.keyNotFound();
    this.checkPut(request);
  }

  private runPath(request: TxnRequest, path: TxnPath, view: ReadView, tw: WriteTxn | undefined): TxnResult {
    let nestedAt = 0;
    const responses = chosenOps(request, path.succeeded).map((op): ResponseOp => {
      switch (op.type) {
        case 'range':
          return { type: 'range', range: this.rangeIn(view, op.range) };
        case 'put':
          return { type: 'put', put: this.putIn(writable(tw), op.put) };
        case 'deleteRange':
          return { type: 'deleteRange', deleteRange: this.deleteIn(writable(tw), op.deleteRange) };
        case 'txn':
          return { type: 'txn', txn: this.runPath(op.txn, path.nested[nestedAt++]!, view, tw) };
        default:
          return unreachable(op);
      }
    });
    return { succeeded: path.succeeded, responses };
  }

  /** etcd's compaction: refuse old or future revisions, drop history from the index, delete it from the backend. */
  private compact(index: number, term: number, request: CompactionRequest): ApplyOutcome {
    const rev = request.revision;
    if (rev <= this.compactMainRev) throw errors.compacted();
    if (rev > this.currentRev) throw errors.futureRev();
    this.compactTo(rev, { consistentIndex: index, term });
    this.appliedIndex = index;
    this.appliedTerm = term;
    return { result: { type: 'compaction' }, revision: this.currentRev, events: [] };
  }

  /**
   * Drops history up to `rev` from the index and deletes it from the backend in batches of at most
   * --experimental-compaction-batch-limit revisions, as etcd's scheduled compaction does: the first
   * batch records the compaction as scheduled, the last as finished, so a restart in between runs
   * it again.
   */
  private compactTo(rev: number, meta: BackendBatch['meta']): void {
    this.compactMainRev = rev;
    const removed = this.index.compact(rev);
    const limit = this.compactionBatchLimit;
    let start = 0;
    do {
      const deletes = removed.slice(start, start + limit);
      start += limit;
      const last = start >= removed.length;
      const batchMeta = start === limit ? { ...meta, scheduledCompactRevision: rev } : {};
      this.backend.write({
        puts: [],
        deletes,
        meta: last ? { ...batchMeta, finishedCompactRevision: rev } : batchMeta,
      });
    } while (start < removed.length);
  }

  /** etcd's restore: replay every stored revision into the index, oldest first. */
  private restore(): void {
    const meta = this.backend.readMeta();
    this.compactMainRev = meta.finishedCompactRevision;
    this.appliedIndex = meta.consistentIndex;
    this.appliedTerm = meta.term;
    let lastMain = 1;
    this.restoredLeases = new Map();
    this.backend.scanIndex((record) => {
      lastMain = record.main;
      this.restoreRevision(record);
    });
    this.currentRev = Math.max(lastMain, this.compactMainRev);
    this.index.recountLive();
    // A compaction recorded as started but not finished is run again, as etcd resumes it.
    if (meta.scheduledCompactRevision > this.compactMainRev) this.compactTo(meta.scheduledCompactRevision, {});
  }

  /** Adds one stored revision to the index; `record` is reused by the scan, so only its fields are kept. */
  private restoreRevision(record: IndexRecord): void {
    const { key, tombstone } = record;
    const rev: Revision = { main: record.main, sub: record.sub };
    // Revisions come oldest first, so a key's last one decides its lease.
    const lease = tombstone ? noLease : record.lease;
    if (lease !== noLease) this.restoredLeases.set(key, lease);
    else if (this.restoredLeases.size > 0) this.restoredLeases.delete(key);
    const ki = this.index.keyIndex(key);
    if (ki !== undefined) {
      if (tombstone) ki.tombstone(rev);
      else ki.put(rev);
      return;
    }
    // A key's oldest surviving revision after compaction can be mid-life; take its create
    // revision and version from the stored value. A lone tombstone has nothing to restore.
    if (tombstone) return;
    const restored = new KeyIndex(key);
    // A key written once by a plain put was created at this very revision: share the object.
    const created = record.createRevision === rev.main && rev.sub === 0 ? rev : { main: record.createRevision, sub: 0 };
    restored.restore(created, rev, record.version);
    this.index.insert(restored);
  }
}

/** True when a put or delete appears anywhere in the txn, nested txns included. */
function writable(tw: WriteTxn | undefined): WriteTxn {
  assert(tw !== undefined, 'a write op in a txn that runs read-only');
  return tw;
}

/** etcd's checkRequestRange: a txn's range may not read a future or compacted revision. */
function checkTxnRange(view: ReadView, revision: number): void {
  if (revision === 0) return;
  if (revision > view.rev) throw errors.futureRev();
  if (revision < view.firstRev) throw errors.compacted();
}
