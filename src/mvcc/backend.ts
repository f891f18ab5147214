/**
 * The storage adapter under the MVCC store, shaped like etcd's bbolt backend: a "key" area
 * mapping revision -> KeyValue (tombstones included) and a "meta" area with the applied Raft
 * index, its term and the compaction revisions. MemoryBackend is the in-memory twin used by
 * tests and by anything that does not need persistence.
 */

import type { KeyValue } from '../api/types.js';
import type { AlarmMember } from '../alarm/alarm-store.js';
import { assert } from '../lib/assert.js';
import { type Revision, revisionBytes } from './revision.js';
import { keyToString } from '../lib/bytes.js';

/** One stored revision: the KeyValue written then; a tombstone holds only the key, as in etcd. */
export interface StoredKeyValue {
  kv: KeyValue;
  tombstone: boolean;
}

/**
 * What rebuilding the in-memory index needs of one stored revision, without its value. `key` is
 * the key's bytes as a latin1 string (keyToString).
 */
export interface IndexRecord {
  main: number;
  sub: number;
  key: string;
  createRevision: number;
  version: number;
  lease: bigint;
  tombstone: boolean;
}

/** The meta area. Compaction revisions are -1 when none was ever recorded. */
export interface BackendMeta {
  /** The last Raft index whose effects are in the backend. */
  consistentIndex: number;
  /** The term of that entry. */
  term: number;
  /** The revision of the last compaction that was started. */
  scheduledCompactRevision: number;
  /** The revision of the last compaction whose physical deletions are done. */
  finishedCompactRevision: number;
}

/** One lease as the "lease" area keeps it: etcd's leasepb.Lease (ID, TTL) without checkpoints. */
export interface LeaseRecord {
  id: bigint;
  ttlSeconds: number;
}

/** Lease area changes of one applied entry; a put replaces the record with the same id. */
export interface LeaseBatch {
  puts: LeaseRecord[];
  deletes: bigint[];
}

/** Everything one applied entry changes, written atomically. */
export interface BackendBatch {
  puts: { rev: Revision; stored: StoredKeyValue }[];
  deletes: Revision[];
  meta: Partial<BackendMeta>;
  /** Lease grants and revocations, committed with the key changes of the same entry. */
  leases?: LeaseBatch;
  /** Alarms raised (puts) and disarmed (deletes), committed with the entry that changed them. */
  alarms?: AlarmBatch;
  /** The whole auth store (src/auth/auth-store.ts encode()), replacing the one stored. */
  auth?: Uint8Array;
}

/** Alarm area changes of one applied entry. */
export interface AlarmBatch {
  puts: AlarmMember[];
  deletes: AlarmMember[];
}

export interface Backend {
  /** The value at `rev`; sees every batch already handed to write(). */
  get(rev: Revision): StoredKeyValue | undefined;
  /** Applies a batch atomically; durability is the implementation's business (the WAL covers crashes). */
  write(batch: BackendBatch): void;
  /** Visits revisions >= `from` in order until `visit` returns false; sees every batch already written. */
  scan(from: Revision, visit: (rev: Revision, stored: StoredKeyValue) => boolean | void): void;
  /**
   * Visits every stored revision, oldest first, as an IndexRecord; sees every batch already
   * written. The record object may be reused between visits: copy what you keep.
   */
  scanIndex(visit: (record: IndexRecord) => void): void;
  readMeta(): BackendMeta;
  /** Visits every lease record in ascending unsigned id order; sees every batch already written. */
  scanLeases(visit: (record: LeaseRecord) => void): void;
  /** Visits every stored alarm; sees every batch already written. */
  scanAlarms(visit: (member: AlarmMember) => void): void;
  /** The auth store last written; undefined when none ever was. Sees every batch already written. */
  readAuth(): Uint8Array | undefined;
  /** Resolves once every batch written so far is committed to storage. */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** Bytes the store occupies, for quota and status. */
  sizeBytes(): number;
}

export const emptyMeta: BackendMeta = Object.freeze({
  consistentIndex: 0,
  term: 0,
  scheduledCompactRevision: -1,
  finishedCompactRevision: -1,
});

/** Lease ids ordered as their 8-byte big-endian keys sort in a store (negative ids last). */
export function compareLeaseIds(a: bigint, b: bigint): number {
  const ua = BigInt.asUintN(64, a);
  const ub = BigInt.asUintN(64, b);
  return ua < ub ? -1 : ua > ub ? 1 : 0;
}

/** Sub revisions come dense from a write transaction; a big jump means a caller bug, not data. */
const subRevisionGapMax = 1024;

/** Approximate stored size of one revision, for sizeBytes of backends that do not measure files. */
export function storedSizeBytes(stored: StoredKeyValue): number {
  const perRecordOverheadBytes = 32;
  return revisionBytes + stored.kv.key.length + stored.kv.value.length + perRecordOverheadBytes;
}

/**
 * The in-memory twin: per main revision an array indexed by sub revision (subs are dense from
 * 0 in a write transaction), with main revisions kept in sorted order.
 */
export class MemoryBackend implements Backend {
  private readonly byMain = new Map<number, { subs: (StoredKeyValue | undefined)[]; live: number }>();
  /** Main revisions in ascending order; may hold mains whose map is gone until the next rebuild. */
  private mains: number[] = [];
  private meta: BackendMeta = { ...emptyMeta };
  private readonly leaseRecords = new Map<bigint, LeaseRecord>();
  private readonly alarms = new Map<string, AlarmMember>();
  private auth: Uint8Array | undefined;
  private bytes = 0;
  private closed = false;

  get(rev: Revision): StoredKeyValue | undefined {
    return this.byMain.get(rev.main)?.subs[rev.sub];
  }

  write(batch: BackendBatch): void {
    assert(!this.closed, 'write on a closed MemoryBackend');
    for (const { rev, stored } of batch.puts) this.put(rev, stored);
    for (const rev of batch.deletes) this.delete(rev);
    for (const record of batch.leases?.puts ?? []) this.leaseRecords.set(record.id, { ...record });
    for (const id of batch.leases?.deletes ?? []) this.leaseRecords.delete(id);
    for (const member of batch.alarms?.puts ?? []) this.alarms.set(alarmKey(member), { ...member });
    for (const member of batch.alarms?.deletes ?? []) this.alarms.delete(alarmKey(member));
    if (batch.auth !== undefined) this.auth = batch.auth.slice();
    this.meta = { ...this.meta, ...batch.meta };
    if (this.mains.length > 2 * this.byMain.size + 1024)
      this.mains = this.mains.filter((main) => this.byMain.has(main));
  }

  scan(from: Revision, visit: (rev: Revision, stored: StoredKeyValue) => boolean | void): void {
    for (let i = lowerBound(this.mains, from.main); i < this.mains.length; i++) {
      const main = this.mains[i]!;
      const subs = this.byMain.get(main)?.subs;
      if (subs === undefined) continue;
      for (let sub = main === from.main ? from.sub : 0; sub < subs.length; sub++) {
        const stored = subs[sub];
        if (stored !== undefined && visit({ main, sub }, stored) === false) return;
      }
    }
  }

  scanIndex(visit: (record: IndexRecord) => void): void {
    this.scan({ main: 0, sub: 0 }, (rev, stored) => visit(indexRecordOf(rev, stored)));
  }

  readMeta(): BackendMeta {
    return { ...this.meta };
  }

  scanLeases(visit: (record: LeaseRecord) => void): void {
    const ids = [...this.leaseRecords.keys()].sort(compareLeaseIds);
    for (const id of ids) visit({ ...this.leaseRecords.get(id)! });
  }

  scanAlarms(visit: (member: AlarmMember) => void): void {
    for (const member of this.alarms.values()) visit({ ...member });
  }

  readAuth(): Uint8Array | undefined {
    return this.auth?.slice();
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  sizeBytes(): number {
    return this.bytes;
  }

  private put(rev: Revision, stored: StoredKeyValue): void {
    let entry = this.byMain.get(rev.main);
    if (entry === undefined) {
      entry = { subs: [], live: 0 };
      this.byMain.set(rev.main, entry);
      this.insertMain(rev.main);
    }
    const subs = entry.subs;
    assert(
      rev.sub <= subs.length + subRevisionGapMax,
      () => `sub revision ${rev.sub} leaves a gap after ${subs.length} subs`,
    );
    const old = subs[rev.sub];
    if (old !== undefined) this.bytes -= storedSizeBytes(old);
    else entry.live++;
    subs[rev.sub] = stored;
    this.bytes += storedSizeBytes(stored);
  }

  private delete(rev: Revision): void {
    const entry = this.byMain.get(rev.main);
    const old = entry?.subs[rev.sub];
    if (entry === undefined || old === undefined) return;
    entry.subs[rev.sub] = undefined;
    entry.live--;
    this.bytes -= storedSizeBytes(old);
    if (entry.live === 0) this.byMain.delete(rev.main);
  }

  private insertMain(main: number): void {
    const last = this.mains[this.mains.length - 1];
    // Writes arrive in revision order, so this is almost always an append.
    if (last === undefined || main > last) {
      this.mains.push(main);
      return;
    }
    const at = lowerBound(this.mains, main);
    if (this.mains[at] !== main) this.mains.splice(at, 0, main);
  }
}

function alarmKey(member: AlarmMember): string {
  return `${member.memberId}:${member.alarm}`;
}

/** First position in sorted `values` holding a value >= `target`. */
function lowerBound(values: number[], target: number): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (values[mid]! < target) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** The IndexRecord of a decoded revision, for backends without a faster way to produce one. */
export function indexRecordOf(rev: Revision, stored: StoredKeyValue): IndexRecord {
  const { kv, tombstone } = stored;
  return {
    main: rev.main,
    sub: rev.sub,
    key: keyToString(kv.key),
    createRevision: kv.createRevision,
    version: kv.version,
    lease: kv.lease,
    tombstone,
  };
}
