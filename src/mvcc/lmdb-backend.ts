/**
 * The Backend on LMDB (lmdb-js), laid out like etcd's bbolt file: a "key" database from
 * etcd's 17-byte revision key to the protobuf mvccpb.KeyValue, and a "meta" database.
 *
 * Writes commit asynchronously on lmdb-js's writer thread, because the WAL already makes applied
 * entries durable. Like etcd's batch transaction, the batches written within
 * --backend-batch-interval (100 ms) go into one LMDB commit, or fewer once --backend-batch-limit
 * (10,000) operations have queued: a commit per event turn woke a pool thread, and then this
 * thread for the completion, on every put. Until a batch's commit resolves, lmdb-js
 * does not show its puts to get(), so every written batch sits in an overlay that reads
 * consult first; this is etcd's write buffer in another form. Each batch (data plus the
 * consistent index covering it) goes through lmdb-js's batch(), which commits it inside one
 * LMDB transaction, so the meta never runs ahead of or behind the data it describes.
 * Measured here: 50k one-revision batches queue in about 0.5 s this way, against 1.1 s
 * with a synchronous transaction per batch.
 */

import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  truncateSync,
} from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type DatabaseOptions, type RootDatabase } from 'lmdb';
import { assert } from '../lib/assert.js';
import { backendBatchIntervalMsDefault, backendBatchLimitDefault, backendDbBytesMax } from '../lib/limits.js';
import { scratchBytes } from '../lib/scratch-bytes.js';
import { lmdbMagic, lmdbMetaOffsets, lmdbPageFlags, lmdbPageOffsets, lmdbPageSizeOffset } from './lmdb-file.js';
import { decodeLeaseRecord, encodeLeaseKey, encodeLeaseRecord } from './lease-record-codec.js';
import { decodeAlarmKey, encodeAlarmKey } from './alarm-record-codec.js';
import type { AlarmMember } from '../alarm/alarm-store.js';
import {
  type Backend,
  type BackendBatch,
  type BackendMeta,
  type IndexRecord,
  type LeaseRecord,
  type StoredKeyValue,
  compareLeaseIds,
  emptyMeta,
  indexRecordOf,
} from './backend.js';
import { decodeKeyValue, encodeKeyValue, readIndexFields } from '../api/key-value-codec.js';
import {
  type Revision,
  compareRevisions,
  decodeRevision,
  encodeRevision,
  readUint64,
  revisionBytes,
  writeUint64,
} from './revision.js';

/** etcd's meta bucket key names, kept so the layout reads the same. */
const metaKeys = {
  consistentIndex: 'consistent_index',
  term: 'term',
  scheduledCompactRevision: 'scheduledCompactRev',
  finishedCompactRevision: 'finishedCompactRev',
} as const satisfies Record<keyof BackendMeta, string>;

/** Batches written between two reads of LMDB's stats for sizeBytes(). */
const sizeReadWritesMax = 256;

export interface LmdbBackendOptions {
  /** Skip fsync of LMDB commits (the WAL covers crashes); defaults to true. */
  noSync?: boolean;
  /** The longest a written batch waits for its LMDB commit (etcd's --backend-batch-interval); 0 commits each event turn. */
  batchIntervalMs?: number;
  /** A group commits at once when it holds this many operations (etcd's --backend-batch-limit). */
  batchLimit?: number;
  /**
   * Called as each LMDB commit starts and once it has committed; a throw fails the backend as a
   * failed commit does. The member's failpoints (beforeCommit, afterCommit) use it; unset otherwise.
   */
  commitHooks?: { before: () => void; after: () => void };
  /**
   * Power-loss tests only (TSETCD_UNSAFE_POWERLOSS_JOURNAL): each sync() leaves a copy of the
   * database as it was synced here, as backend-<n>.mdb, n counting up (see durableCopyName).
   */
  durableCopiesDir?: string;
  /** --unsafe-no-fsync: sync() commits but never flushes to disk, as etcd's backend then never fsyncs. */
  unsafeNoFsync?: boolean;
  /**
   * For a restore into a new backend: LMDB writes its pages in place in a file mapping of this many
   * bytes (MDB_WRITEMAP) instead of copying each one at commit, which halves the time of a large
   * importRevisions. The file is as large as the map (sparse) until close() trims it to the pages
   * in use. The disk must have room for the map: a page that finds none kills the process.
   */
  writeMapBytes?: number;
}

/** The name of the n-th durable copy sync() leaves in LmdbBackendOptions.durableCopiesDir. */
export function durableCopyName(n: number): string {
  return `backend-${String(n).padStart(6, '0')}.mdb`;
}

interface OverlayEntry {
  /** The group that wrote this entry. */
  seq: number;
  /**
   * The record as it goes to LMDB, decoded again when read; null marks a pending delete. Keeping
   * the decoded KeyValue here too held each put's objects until the commit, long enough for the
   * young generation to copy and promote them before they died.
   */
  bytes: Uint8Array | null;
}

/** The batches written within one batch interval, committed as one LMDB batch. */
interface WriteGroup {
  seq: number;
  puts: { rev: Revision; key: Uint8Array; bytes: Uint8Array }[];
  deletes: { rev: Revision; key: Uint8Array }[];
  meta: Partial<BackendMeta>;
  /** Lease puts (record) and deletes (null) in write order, so a revoke then re-grant of one ID ends granted. */
  leaseOps: { id: bigint; record: LeaseRecord | null }[];
  /** Alarms raised (true) and disarmed (false) in write order. */
  alarmOps: { member: AlarmMember; raised: boolean }[];
  /** The auth store's record, when a batch of the group replaced it. */
  auth: Uint8Array | undefined;
}

/** lmdb-js's put options for keys that arrive in ascending order (LMDB's MDB_APPEND). */
const appendOptions = { append: true };

/** The one record of the "auth" database: the whole auth store. */
const authStateKey = 'state';

interface LeaseOverlayEntry {
  seq: number;
  /** null marks a pending delete. */
  record: LeaseRecord | null;
}

function overlayKey(rev: Revision): string {
  return `${rev.main}_${rev.sub}`;
}

function encodeStored(stored: StoredKeyValue): Uint8Array {
  assert(
    stored.tombstone === (stored.kv.createRevision === 0),
    () => `tombstone flag ${stored.tombstone} disagrees with create revision ${stored.kv.createRevision}`,
  );
  return encodeKeyValue(stored.kv);
}

/**
 * A tombstone is stored as a KeyValue with only the key set, so create revision 0 marks it.
 * lmdb-js hands out a fresh buffer per value with binary encoding, so the KeyValue may share it.
 */
function decodeStored(bytes: Uint8Array): StoredKeyValue {
  const kv = decodeKeyValue(bytes, true);
  return { kv, tombstone: kv.createRevision === 0 };
}

/** Meta numbers as 8-byte big-endian values; -1 (none) is stored as all ones, as int64 would be. */
function encodeMetaNumber(value: number): Uint8Array {
  const bytes = scratchBytes(8);
  if (value === -1) bytes.fill(0xff);
  else writeUint64(bytes, 0, value);
  return bytes;
}

function decodeMetaNumber(bytes: Uint8Array | undefined, absent: number): number {
  if (bytes === undefined) return absent;
  if (bytes.every((b) => b === 0xff)) return -1;
  return readUint64(bytes, 0);
}

/** The one record scanIndex's readers fill: the key reader sets the revision, the value reader the rest. */
const indexRecord: IndexRecord = {
  main: 0,
  sub: 0,
  key: '',
  createRevision: 0,
  version: 0,
  lease: 0n,
  tombstone: false,
};

/** lmdb-js key encoder for scanIndex: start keys are written as given, read keys parsed in place. */
const indexKeyReader = {
  writeKey(key: Uint8Array, target: Uint8Array, start: number): number {
    target.set(key, start);
    return start + key.length;
  },
  readKey(target: Uint8Array, start: number, end: number): IndexRecord {
    assert(end - start >= revisionBytes, () => `revision key needs ${revisionBytes} bytes, saw ${end - start}`);
    indexRecord.main = readUint64(target, start);
    indexRecord.sub = readUint64(target, start + 9);
    return indexRecord;
  },
  /** Present so lmdb-js uses readKey instead of copying keys into Buffers. */
  enableNullTermination(): void {},
};

/** lmdb-js value decoder for scanIndex; needsStableBuffer false lets it pass the shared buffer. */
const indexValueReader = {
  needsStableBuffer: false,
  encode(): never {
    throw new Error('the index handle of the key bucket is read-only');
  },
  decode(bytes: Uint8Array, size: number): IndexRecord {
    readIndexFields(bytes, size, indexRecord);
    return indexRecord;
  },
};

/**
 * lmdb-js key and value readers for storedRevisions: each record is handed out as views of
 * lmdb-js's read buffers, which the next record overwrites, so nothing is copied per record.
 */
const sharedKeyReader = {
  writeKey(key: Uint8Array, target: Uint8Array, start: number): number {
    target.set(key, start);
    return start + key.length;
  },
  readKey(target: Uint8Array, start: number, end: number): Uint8Array {
    return target.subarray(start, end);
  },
  enableNullTermination(): void {},
};
const sharedValueReader = {
  needsStableBuffer: false,
  encode(): never {
    throw new Error('the shared-buffer handle of the key bucket is read-only');
  },
  decode(bytes: Uint8Array, size: number): Uint8Array {
    return bytes.subarray(0, size);
  },
};

export class LmdbBackend implements Backend {
  private readonly overlay = new Map<string, OverlayEntry>();
  /** Lease records written but not yet committed, as the overlay does for revisions. */
  private readonly leaseOverlay = new Map<bigint, LeaseOverlayEntry>();
  /** Alarms written but not yet committed: raised (true) or disarmed (false), by encoded key. */
  private readonly alarmOverlay = new Map<string, { seq: number; member: AlarmMember; raised: boolean }>();
  /** Meta written but not yet committed, and the group that last touched it. */
  private pendingMeta: Partial<BackendMeta> = {};
  private pendingMetaSeq = 0;
  /** The auth record written but not yet committed, and the group that wrote it. */
  private pendingAuth: { seq: number; bytes: Uint8Array } | undefined;
  private group: WriteGroup | undefined;
  /** Commits the open group when the batch interval ends. */
  private commitTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  private commitsStarted = 0;
  private commitObserver: ((commit: Promise<unknown>) => void) | undefined;
  private lastCommit: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;
  private closed = false;
  private sizeRead: number | undefined;
  private writesSinceSizeRead = 0;
  /** The whole-file copy in progress, if any; the next one waits for it. */
  private copies: Promise<void> = Promise.resolve();
  private bytesSinceSizeRead = 0;

  private constructor(
    /** The environment and its databases; defragment() swaps them for a compacted copy's. */
    private env: OpenedEnvironment,
    private readonly batchIntervalMs: number,
    private readonly batchLimit: number,
    private readonly commitHooks: LmdbBackendOptions['commitHooks'],
    private readonly durableCopiesDir: string | undefined,
    private readonly unsafeNoFsync: boolean,
  ) {}

  private get root(): RootDatabase<Uint8Array, Uint8Array> {
    return this.env.root;
  }

  private get keyDb(): Database<Uint8Array, Uint8Array> {
    return this.env.keyDb;
  }

  private get metaDb(): Database<Uint8Array, string> {
    return this.env.metaDb;
  }

  private get leaseDb(): Database<Uint8Array, Uint8Array> {
    return this.env.leaseDb;
  }

  private get alarmDb(): Database<Uint8Array, Uint8Array> {
    return this.env.alarmDb;
  }

  private get authDb(): Database<Uint8Array, string> {
    return this.env.authDb;
  }

  private get indexDb(): Database<IndexRecord, Uint8Array> {
    return this.env.indexDb;
  }

  /** Opens (creating if needed) the LMDB environment at `path`. */
  static open(path: string, options: LmdbBackendOptions = {}): LmdbBackend {
    const batchIntervalMs = options.batchIntervalMs ?? backendBatchIntervalMsDefault;
    const batchLimit = options.batchLimit ?? backendBatchLimitDefault;
    assert(
      batchIntervalMs >= 0 && batchLimit >= 1,
      () => `batch interval ${batchIntervalMs} ms and limit ${batchLimit} must be >= 0 and >= 1`,
    );
    return new LmdbBackend(
      openEnvironment(path, options.noSync ?? true, options.writeMapBytes),
      batchIntervalMs,
      batchLimit,
      options.commitHooks,
      options.durableCopiesDir,
      options.unsafeNoFsync ?? false,
    );
  }

  get(rev: Revision): StoredKeyValue | undefined {
    const pending = this.overlay.get(overlayKey(rev));
    if (pending !== undefined) return pending.bytes === null ? undefined : decodeStored(pending.bytes);
    const bytes = this.keyDb.get(encodeRevision(rev));
    return bytes === undefined ? undefined : decodeStored(bytes);
  }

  /**
   * Queues the batch into the open group. A group commits as one LMDB batch, so a batch is
   * never split from the meta written with it; one commit per turn instead of per batch cut
   * the cost of 1M single-put batches from 38 s to a fraction (promises and closures per batch).
   */
  write(batch: BackendBatch): void {
    this.checkUsable();
    const group = this.openGroup();
    this.writesSinceSizeRead += 1;
    for (const { rev, stored } of batch.puts) {
      const bytes = encodeStored(stored);
      this.bytesSinceSizeRead += bytes.length;
      group.puts.push({ rev, key: encodeRevision(rev), bytes });
      this.overlay.set(overlayKey(rev), { seq: group.seq, bytes });
    }
    for (const rev of batch.deletes) {
      group.deletes.push({ rev, key: encodeRevision(rev) });
      this.overlay.set(overlayKey(rev), { seq: group.seq, bytes: null });
    }
    this.queueLeases(group, batch);
    this.queueAlarms(group, batch);
    if (batch.auth !== undefined) {
      const bytes = batch.auth.slice();
      group.auth = bytes;
      this.pendingAuth = { seq: group.seq, bytes };
    }
    if (Object.keys(batch.meta).length > 0) {
      Object.assign(group.meta, batch.meta);
      Object.assign(this.pendingMeta, batch.meta);
      this.pendingMetaSeq = group.seq;
    }
    const operations = group.puts.length + group.deletes.length + group.leaseOps.length + group.alarmOps.length;
    if (operations >= this.batchLimit) this.commitGroup();
  }

  scan(from: Revision, visit: (rev: Revision, stored: StoredKeyValue) => boolean | void): void {
    const pending = this.pendingFrom(from);
    const iterator = this.keyDb.getRange({ start: encodeRevision(from) })[Symbol.iterator]();
    try {
      let dbEntry = iterator.next();
      let next = 0;
      while (!dbEntry.done || next < pending.length) {
        const dbRev = dbEntry.done ? undefined : decodeRevision(dbEntry.value.key);
        const entry = pending[next];
        // Pending entries win over committed ones at the same revision: they are newer.
        const order = entry === undefined ? 1 : dbRev === undefined ? -1 : compareRevisions(entry.rev, dbRev);
        let rev: Revision;
        let stored: StoredKeyValue | null;
        if (order <= 0) {
          ({ rev, stored } = entry!);
          next++;
          if (order === 0) dbEntry = iterator.next();
        } else {
          rev = dbRev!;
          stored = decodeStored((dbEntry as { value: { value: Uint8Array } }).value.value);
          dbEntry = iterator.next();
        }
        if (stored !== null && visit(rev, stored) === false) return;
      }
    } finally {
      iterator.return?.();
    }
  }

  /**
   * Reads the "key" bucket through a second handle whose key and value readers parse each record
   * in LMDB's shared read buffer into one reused IndexRecord: no Buffer per key or value, no value
   * decoded. A restore of 1M keys spent most of its time making those copies.
   */
  scanIndex(visit: (record: IndexRecord) => void): void {
    if (this.overlay.size > 0) {
      // Batches not yet committed are merged by scan(); a restore never has any.
      this.scan({ main: 0, sub: 0 }, (rev, stored) => visit(indexRecordOf(rev, stored)));
      return;
    }
    for (const { value } of this.indexDb.getRange({ start: encodeRevision({ main: 0, sub: 0 }) })) visit(value);
  }

  readMeta(): BackendMeta {
    const stored: BackendMeta = {
      consistentIndex: decodeMetaNumber(this.metaDb.get(metaKeys.consistentIndex), emptyMeta.consistentIndex),
      term: decodeMetaNumber(this.metaDb.get(metaKeys.term), emptyMeta.term),
      scheduledCompactRevision: decodeMetaNumber(
        this.metaDb.get(metaKeys.scheduledCompactRevision),
        emptyMeta.scheduledCompactRevision,
      ),
      finishedCompactRevision: decodeMetaNumber(
        this.metaDb.get(metaKeys.finishedCompactRevision),
        emptyMeta.finishedCompactRevision,
      ),
    };
    return { ...stored, ...this.pendingMeta };
  }

  scanLeases(visit: (record: LeaseRecord) => void): void {
    const records = new Map<bigint, LeaseRecord>();
    for (const { value } of this.leaseDb.getRange({})) {
      const record = decodeLeaseRecord(value);
      records.set(record.id, record);
    }
    for (const [id, entry] of this.leaseOverlay) {
      if (entry.record === null) records.delete(id);
      else records.set(id, { ...entry.record });
    }
    for (const id of [...records.keys()].sort(compareLeaseIds)) visit(records.get(id)!);
  }

  scanAlarms(visit: (member: AlarmMember) => void): void {
    const members = new Map<string, AlarmMember>();
    for (const { key } of this.alarmDb.getRange({})) {
      const member = decodeAlarmKey(key);
      members.set(alarmOverlayKey(member), member);
    }
    for (const [key, entry] of this.alarmOverlay) {
      if (entry.raised) members.set(key, { ...entry.member });
      else members.delete(key);
    }
    for (const member of members.values()) visit(member);
  }

  /**
   * The committed "key" records as stored: etcd's 17-byte revision key and the mvccpb.KeyValue
   * bytes, oldest first. One record object is handed out again and again, and its bytes are views
   * of lmdb-js's buffers: both are valid only until the next record is asked for. For a copy made
   * by copyTo, which has nothing pending; a live backend's pending batches would be missing.
   */
  *storedRevisions(): Generator<{ revisionKey: Uint8Array; value: Uint8Array }> {
    assert(this.overlay.size === 0, () => `storedRevisions reads committed records only, ${this.overlay.size} pending`);
    const start = encodeRevision({ main: 0, sub: 0 });
    const record: { revisionKey: Uint8Array; value: Uint8Array } = {
      revisionKey: new Uint8Array(0),
      value: new Uint8Array(0),
    };
    for (const { key, value } of this.env.sharedKeyDb.getRange({ start })) {
      record.revisionKey = key;
      record.value = value;
      yield record;
    }
  }

  /**
   * Writes the records `fill` puts (etcd's 17-byte revision keys in ascending order, with their
   * mvccpb.KeyValue bytes, which are copied at once) straight into the key area in one
   * transaction, appending: for a restore into a new, empty backend that nothing reads meanwhile.
   * Throws when a key does not ascend; when `fill` throws, nothing of it is written.
   */
  importRevisions(fill: (put: (revisionKey: Uint8Array, value: Uint8Array) => void) => void): void {
    this.checkUsable();
    assert(this.overlay.size === 0 && this.group === undefined, 'importRevisions with writes pending');
    const keyDb = this.keyDb;
    this.root.transactionSync(() => fill((revisionKey, value) => keyDb.putSync(revisionKey, value, appendOptions)));
  }

  /** Hands every LMDB commit, as it starts, to `observer` (which times it for etcd's backend commit histogram). */
  observeCommits(observer: (commit: Promise<unknown>) => void): void {
    this.commitObserver = observer;
  }

  readAuth(): Uint8Array | undefined {
    if (this.pendingAuth !== undefined) return this.pendingAuth.bytes.slice();
    const bytes = this.authDb.get(authStateKey);
    return bytes === undefined ? undefined : new Uint8Array(bytes);
  }

  /** LMDB commits handed to lmdb-js so far (etcd counts its backend commits the same way). */
  commitCount(): number {
    return this.commitsStarted;
  }

  async flush(): Promise<void> {
    this.commitGroup();
    let seen: Promise<unknown> | undefined;
    // A settle callback may run after new writes were queued; wait until no newer commit appeared.
    while (seen !== this.lastCommit) {
      seen = this.lastCommit;
      await seen;
    }
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Makes every write so far durable: commits them, then has LMDB flush its file to disk (commits
   * are not synced one by one, see noSync). With durableCopiesDir, a copy of the database read
   * after the commit and before the flush is kept there once the flush returned: what this sync
   * made durable, and possibly less, never more.
   */
  sync(): Promise<void> {
    return this.oneCopyAtATime(() => this.syncNow());
  }

  private async syncNow(): Promise<void> {
    this.checkUsable();
    await this.flush();
    if (this.unsafeNoFsync) return;
    const copiesDir = this.durableCopiesDir;
    const staging = copiesDir === undefined ? undefined : join(copiesDir, 'backend-staging');
    if (staging !== undefined) {
      rmSync(staging, { recursive: true, force: true });
      mkdirSync(staging, { recursive: true });
      await this.root.backup(staging, false);
    }
    const root = this.root as unknown as { sync(done: (error: unknown) => void): void };
    await new Promise<void>((resolve, reject) => root.sync((error) => (error ? reject(error as Error) : resolve())));
    if (copiesDir === undefined || staging === undefined) return;
    const copies = readdirSync(copiesDir).filter((name) => /^backend-\d+\.mdb$/.test(name)).length;
    renameSync(join(staging, 'data.mdb'), join(copiesDir, durableCopyName(copies + 1)));
    rmSync(staging, { recursive: true, force: true });
  }

  /**
   * Writes a consistent copy of the committed database (everything written so far, and possibly
   * more) to `dir`/data.mdb, fsynced unless `durable` is false (a copy read once and deleted),
   * and returns that file's path. The copy carries its own consistent index, so it says which
   * entries it covers.
   */
  copyTo(dir: string, { durable = true }: { durable?: boolean } = {}): Promise<string> {
    return this.oneCopyAtATime(() => this.copyNow(dir, durable));
  }

  private async copyNow(dir: string, durable: boolean): Promise<string> {
    this.checkUsable();
    await this.flush();
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'data.mdb');
    rmSync(path, { force: true });
    await this.root.backup(dir, false);
    if (!durable) return path;
    const fd = openSync(path, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return path;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    const inUseBytes = this.env.writeMap ? this.filePagesBytes() : undefined;
    await this.root.close();
    // A write map made the file as large as the map; LMDB needs only the pages up to its last.
    if (inUseBytes !== undefined) truncateSync(join(this.env.path, 'data.mdb'), inUseBytes);
  }

  /** The bytes of the file's pages up to the last one LMDB has used, from its stats. */
  private filePagesBytes(): number {
    const stats = this.root.getStats() as { pageSize?: number; lastPageNumber?: number };
    return (stats.pageSize ?? 0) * ((stats.lastPageNumber ?? 0) + 1);
  }

  /**
   * The file's size from LMDB's stats, read again every sizeReadWritesMax batches; in between, the
   * bytes written since are added, so a growing store is never under-counted for long. (Reading the
   * stats costs as much as a small put, and the quota check asks on every write.)
   */
  sizeBytes(): number {
    if (this.sizeRead === undefined || this.writesSinceSizeRead >= sizeReadWritesMax) {
      this.sizeRead = this.filePagesBytes();
      this.writesSinceSizeRead = 0;
      this.bytesSinceSizeRead = 0;
    }
    return this.sizeRead + this.bytesSinceSizeRead;
  }

  /**
   * Bytes the databases' pages hold (etcd's SizeInUse): the file's size less the pages LMDB keeps
   * on its free list for reuse. Both LMDB meta pages count as in use.
   */
  sizeInUseBytes(): number {
    const stats = this.root.getStats() as { pageSize?: number; root?: unknown; free?: unknown };
    const databases = [this.keyDb, this.metaDb, this.leaseDb, this.alarmDb, this.authDb];
    const treesPages = databases.reduce((sum, db) => sum + treePages(db.getStats()), 0);
    const pages = 2 + treePages(stats.root) + treePages(stats.free) + treesPages;
    return Math.min((stats.pageSize ?? 0) * pages, this.sizeBytes());
  }

  /**
   * Read transactions open on the database (etcd's etcd_mvcc_db_open_read_transactions, bbolt's
   * OpenTxN): LMDB's reader table lists a slot per reading thread, with the transaction it reads or
   * "-" once that transaction ended. lmdb-js keeps one open for reads between commits, as etcd's
   * backend keeps its shared read transaction, and whole-file copies open their own.
   */
  openReadTransactions(): number {
    const table = this.root.readerList();
    let open = 0;
    for (const line of table.split('\n')) if (/^\s*\d+\s+\S+\s+\d+\s*$/.test(line)) open++;
    return open;
  }

  /**
   * etcd's Defrag: writes a compacted copy of the database (LMDB's copy with compaction, done on
   * lmdb-js's own thread) into `stagingDir` and serves from it from then on; the caller then moves
   * `stagingDir` into the backend's place. No write may come in meanwhile: the member holds its
   * applies back (a write after the copy began would be lost).
   */
  defragment(stagingDir: string): Promise<void> {
    return this.oneCopyAtATime(() => this.defragmentNow(stagingDir));
  }

  /**
   * Runs whole-file copies (snapshot copies, defragmentation) one after another: defragmentation
   * closes the environment a snapshot copy may still be reading.
   */
  private oneCopyAtATime<T>(copy: () => Promise<T>): Promise<T> {
    const run = this.copies.then(copy);
    this.copies = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async defragmentNow(stagingDir: string): Promise<void> {
    this.checkUsable();
    await this.flush();
    assert(this.overlay.size === 0 && this.group === undefined, 'defragment with writes pending');
    rmSync(stagingDir, { recursive: true, force: true });
    mkdirSync(stagingDir, { recursive: true });
    await this.root.backup(stagingDir, true);
    assert(this.group === undefined, 'a write came in while the database was copied for defragmentation');
    const old = this.env;
    this.env = openEnvironment(stagingDir, old.noSync);
    this.sizeRead = undefined;
    await old.root.close();
  }

  private openGroup(): WriteGroup {
    if (this.group !== undefined) return this.group;
    const group: WriteGroup = {
      seq: ++this.seq,
      puts: [],
      deletes: [],
      meta: {},
      leaseOps: [],
      alarmOps: [],
      auth: undefined,
    };
    this.group = group;
    if (this.batchIntervalMs === 0) queueMicrotask(() => this.commitGroup());
    else this.commitTimer = setTimeout(() => this.commitGroup(), this.batchIntervalMs).unref();
    return group;
  }

  /** Hands the open group to lmdb-js as one batch; its entries leave the overlay once committed. */
  private commitGroup(): void {
    const group = this.group;
    if (group === undefined) return;
    this.group = undefined;
    clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    this.commitsStarted++;
    const hooks = this.commitHooks;
    let commit: Promise<unknown>;
    try {
      hooks?.before();
      commit = this.batchCommit(group);
    } catch (error) {
      commit = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    if (hooks !== undefined) commit = commit.then(() => hooks.after());
    this.commitObserver?.(commit);
    this.lastCommit = commit.then(
      () => this.settle(group),
      (error: unknown) => {
        this.failure = error instanceof Error ? error : new Error(String(error));
      },
    );
  }

  /** Writes `group` to LMDB in one batch (one transaction on lmdb-js's writer thread). */
  private batchCommit(group: WriteGroup): Promise<unknown> {
    return this.root.batch(() => {
      for (const put of group.puts) void this.keyDb.put(put.key, put.bytes);
      for (const del of group.deletes) void this.keyDb.remove(del.key);
      for (const { id, record } of group.leaseOps) {
        if (record === null) void this.leaseDb.remove(encodeLeaseKey(id));
        else void this.leaseDb.put(encodeLeaseKey(id), encodeLeaseRecord(record));
      }
      for (const { member, raised } of group.alarmOps) {
        if (raised) void this.alarmDb.put(encodeAlarmKey(member), new Uint8Array(0));
        else void this.alarmDb.remove(encodeAlarmKey(member));
      }
      if (group.auth !== undefined) void this.authDb.put(authStateKey, group.auth);
      for (const [field, value] of Object.entries(group.meta) as [keyof BackendMeta, number][]) {
        void this.metaDb.put(metaKeys[field], encodeMetaNumber(value));
      }
    });
  }

  /** Overlay entries at or after `from`, in revision order. */
  private pendingFrom(from: Revision): { rev: Revision; stored: StoredKeyValue | null }[] {
    return [...this.overlay.entries()]
      .map(([key, entry]) => ({
        rev: parseOverlayKey(key),
        stored: entry.bytes === null ? null : decodeStored(entry.bytes),
      }))
      .filter((entry) => compareRevisions(entry.rev, from) >= 0)
      .sort((a, b) => compareRevisions(a.rev, b.rev));
  }

  /** Drops a committed group's entries from the overlay unless a later group replaced them. */
  private settle(group: WriteGroup): void {
    for (const { rev } of group.puts) this.forget(rev, group.seq);
    for (const { rev } of group.deletes) this.forget(rev, group.seq);
    if (this.pendingMetaSeq === group.seq) this.pendingMeta = {};
    for (const { id } of group.leaseOps) this.forgetLease(id, group.seq);
    for (const { member } of group.alarmOps) {
      const key = alarmOverlayKey(member);
      if (this.alarmOverlay.get(key)?.seq === group.seq) this.alarmOverlay.delete(key);
    }
    if (this.pendingAuth?.seq === group.seq) this.pendingAuth = undefined;
  }

  /** Adds a batch's alarm changes to the group: raised, then disarmed. */
  private queueAlarms(group: WriteGroup, batch: BackendBatch): void {
    const changes = [
      ...(batch.alarms?.puts ?? []).map((member) => ({ member: { ...member }, raised: true })),
      ...(batch.alarms?.deletes ?? []).map((member) => ({ member: { ...member }, raised: false })),
    ];
    for (const change of changes) {
      group.alarmOps.push(change);
      this.alarmOverlay.set(alarmOverlayKey(change.member), { seq: group.seq, ...change });
    }
  }

  /** Adds a batch's lease changes to the group, in the order the batch gives: puts, then deletes. */
  private queueLeases(group: WriteGroup, batch: BackendBatch): void {
    for (const record of batch.leases?.puts ?? []) {
      const copy = { ...record };
      group.leaseOps.push({ id: record.id, record: copy });
      this.leaseOverlay.set(record.id, { seq: group.seq, record: copy });
    }
    for (const id of batch.leases?.deletes ?? []) {
      group.leaseOps.push({ id, record: null });
      this.leaseOverlay.set(id, { seq: group.seq, record: null });
    }
  }

  private forgetLease(id: bigint, seq: number): void {
    if (this.leaseOverlay.get(id)?.seq === seq) this.leaseOverlay.delete(id);
  }

  private forget(rev: Revision, seq: number): void {
    const key = overlayKey(rev);
    if (this.overlay.get(key)?.seq === seq) this.overlay.delete(key);
  }

  private checkUsable(): void {
    assert(!this.closed, 'write on a closed LmdbBackend');
    if (this.failure !== undefined) throw this.failure;
  }
}

function alarmOverlayKey(member: AlarmMember): string {
  return `${member.memberId}:${member.alarm}`;
}

/** An LMDB environment with the databases the backend keeps in it. */
/** The LMDB database that holds the "key" records (etcd's revision keys and mvccpb.KeyValue bytes). */
export const keyAreaName = 'key';

interface OpenedEnvironment {
  root: RootDatabase<Uint8Array, Uint8Array>;
  keyDb: Database<Uint8Array, Uint8Array>;
  metaDb: Database<Uint8Array, string>;
  leaseDb: Database<Uint8Array, Uint8Array>;
  alarmDb: Database<Uint8Array, Uint8Array>;
  authDb: Database<Uint8Array, string>;
  indexDb: Database<IndexRecord, Uint8Array>;
  /** The key bucket read through sharedKeyReader and sharedValueReader. */
  sharedKeyDb: Database<Uint8Array, Uint8Array>;
  noSync: boolean;
  /** The environment's directory. */
  path: string;
  /** Opened with MDB_WRITEMAP (LmdbBackendOptions.writeMapBytes). */
  writeMap: boolean;
}

/**
 * Refuses a data file whose meta pages are not LMDB's: LMDB trusts them and crashes the process
 * (a segmentation fault) on a damaged first one, where etcd's bbolt says "invalid database".
 * Only the magic number and the meta flag are checked; LMDB has no checksums to check.
 */
function checkMetaPages(path: string): void {
  const file = join(path, 'data.mdb');
  if (!existsSync(file)) return;
  const fd = openSync(file, 'r');
  try {
    // An empty file (created, then lost before any sync) is one LMDB initializes afresh.
    if (fstatSync(fd).size === 0) return;
    const header = Buffer.alloc(lmdbPageSizeOffset + 4);
    let pageSize = 0;
    for (const page of [0, 1]) {
      const read = readSync(fd, header, 0, header.length, page * pageSize);
      const magic = read === header.length ? header.readUInt32LE(lmdbMetaOffsets.magic) : 0;
      const flags = read === header.length ? header.readUInt16LE(lmdbPageOffsets.flags) : 0;
      if (magic !== lmdbMagic || (flags & lmdbPageFlags.meta) === 0) {
        throw new Error(
          `invalid database: ${file}: meta page ${page} has magic 0x${magic.toString(16)} and flags 0x${flags.toString(16)}, not LMDB's`,
        );
      }
      if (page === 0) pageSize = header.readUInt32LE(lmdbPageSizeOffset);
    }
  } finally {
    closeSync(fd);
  }
}

function openEnvironment(path: string, noSync: boolean, writeMapBytes?: number): OpenedEnvironment {
  checkMetaPages(path);
  const root = open<Uint8Array, Uint8Array>({
    path,
    encoding: 'binary',
    keyEncoding: 'binary',
    noSync,
    mapSize: writeMapBytes ?? backendDbBytesMax,
    useWritemap: writeMapBytes !== undefined,
  });
  const keyDb = root.openDB<Uint8Array, Uint8Array>({ name: keyAreaName, encoding: 'binary', keyEncoding: 'binary' });
  const metaDb = root.openDB<Uint8Array, string>({ name: 'meta', encoding: 'binary' });
  const leaseDb = root.openDB<Uint8Array, Uint8Array>({ name: 'lease', encoding: 'binary', keyEncoding: 'binary' });
  const alarmDb = root.openDB<Uint8Array, Uint8Array>({ name: 'alarm', encoding: 'binary', keyEncoding: 'binary' });
  const authDb = root.openDB<Uint8Array, string>({ name: 'auth', encoding: 'binary' });
  // lmdb-js takes keyEncoder at run time but does not declare it on DatabaseOptions.
  const indexOptions: DatabaseOptions & {
    name: string;
    keyEncoder: typeof indexKeyReader;
    encoder: typeof indexValueReader;
  } = { name: keyAreaName, keyEncoder: indexKeyReader, encoder: indexValueReader };
  const indexDb = root.openDB<IndexRecord, Uint8Array>(indexOptions);
  const sharedOptions: DatabaseOptions & {
    name: string;
    keyEncoder: typeof sharedKeyReader;
    encoder: typeof sharedValueReader;
  } = { name: keyAreaName, keyEncoder: sharedKeyReader, encoder: sharedValueReader };
  const sharedKeyDb = root.openDB<Uint8Array, Uint8Array>(sharedOptions);
  return {
    root,
    keyDb,
    metaDb,
    leaseDb,
    alarmDb,
    authDb,
    indexDb,
    sharedKeyDb,
    noSync,
    path,
    writeMap: writeMapBytes !== undefined,
  };
}

/** Pages one database's B+tree holds, from lmdb-js's stats of it. */
function treePages(stats: unknown): number {
  const tree = stats as { treeBranchPageCount?: number; treeLeafPageCount?: number; overflowPages?: number };
  return (tree.treeBranchPageCount ?? 0) + (tree.treeLeafPageCount ?? 0) + (tree.overflowPages ?? 0);
}

function parseOverlayKey(key: string): Revision {
  const at = key.indexOf('_');
  return { main: Number(key.slice(0, at)), sub: Number(key.slice(at + 1)) };
}
