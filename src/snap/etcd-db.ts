/**
 * etcd 3.4's backend layout in a bbolt file, as `etcdctl snapshot save` receives it: the buckets
 * alarm, auth, authRoles, authUsers, cluster, key, lease, members, members_removed and meta.
 * "key" maps etcd's revision keys (a tombstone's with a trailing 't') to mvccpb.KeyValue; "meta"
 * holds consistent_index (8 bytes big-endian) and the compaction revisions as revision keys;
 * "lease" maps 8-byte big-endian IDs to leasepb.Lease; "members" maps hex IDs to etcd's member
 * JSON and "members_removed" maps removed IDs to "removed"; "cluster" holds clusterVersion;
 * "auth" holds authEnabled (one byte, 1 when enabled) and authRevision (8 bytes big-endian);
 * "authUsers" and "authRoles" map names to authpb.User and authpb.Role (src/auth/authpb-codec.ts);
 * "alarm" has a marshalled AlarmMember key per raised alarm.
 */
import { checkKeyValueRecord, isTombstoneRecordAt } from '../api/key-value-codec.js';
import { assert } from '../lib/assert.js';
import type { AuthState } from '../auth/auth-store.js';
import { decodeRole, decodeUser, encodeRole, encodeUser } from '../auth/authpb-codec.js';
import { crc32cUpdate } from '../lib/crc32c.js';
import type { BackendMeta, LeaseRecord } from '../mvcc/backend.js';
import { decodeLeaseRecord, encodeLeaseKey, encodeLeaseRecord } from '../mvcc/lease-record-codec.js';
import {
  decodeRevision,
  encodeRevision,
  readUint64,
  revisionBytes,
  tombstoneMark,
  writeUint64,
} from '../mvcc/revision.js';
import { type BoltBucket, type BoltDatabase, type BoltPageSource, childBucket, walkBolt } from './bbolt/reader.js';
import { pushVarint64 } from '../lib/protobuf.js';
import { type ClusterMember, memberToEtcdJson } from '../membership/cluster-member.js';
import type { BoltBucketSource, BoltItem, BoltRecordScan } from './bbolt/format.js';
import type { BoltLayout, BoltTreeShape } from './bbolt/writer.js';
import { boltPageBytesDefault, etcdKeyBucketFillPercent } from '../lib/limits.js';

/** One record of the backend's key area: its 17-byte revision key and its mvccpb.KeyValue bytes. */
export interface RevisionRecord {
  revisionKey: Uint8Array;
  value: Uint8Array;
  tombstone: boolean;
}

/**
 * The key area's records in bulk, oldest first: `scan` hands each record's 17-byte revision key
 * and mvccpb.KeyValue bytes to `visit` as ranges of `bytes`, valid during the call only.
 */
export interface RevisionScan {
  /** How many records a scan hands over. */
  readonly recordCount: number;
  scan(
    visit: (bytes: Uint8Array, keyAt: number, keyLength: number, valueAt: number, valueLength: number) => void,
  ): void;
}

/** etcd's AlarmType values. */
export const alarmTypes = { none: 0, noSpace: 1, corrupt: 2 } as const;

/**
 * What a backend snapshot holds, read from a member at one point. The writer reads the records
 * twice (see planBolt), so `revisions` and `leases` must start over on each iteration or scan; a
 * record is copied before the next one is asked for, so a source may reuse its buffers.
 */
export interface EtcdDbContents {
  /** Every stored revision in ascending order, as records or as a scan (cheaper for many). */
  revisions: Iterable<RevisionRecord> | RevisionScan;
  meta: BackendMeta;
  /** Lease records in ascending unsigned ID order. */
  leases: Iterable<LeaseRecord>;
  auth: AuthState;
  members: ClusterMember[];
  removedMemberIds: bigint[];
  /** The cluster bucket's clusterVersion ("3.4.0"); the bucket is empty while the cluster has none, as in etcd. */
  clusterVersion: string | undefined;
  alarms: { memberId: bigint; alarm: number }[];
}

/**
 * The pages an etcd backend file holds free below its high-water mark, for trees of `shape`. etcd
 * opens bbolt without a stored freelist, and bbolt never gives pages back to the file system, so
 * the file is as long as the most pages it ever needed at once: a commit writes the pages it
 * changes to free pages before the pages they replace become free. A member that only ever
 * appended (a fresh one, never compacted or defragmented) last had its trees plus the pages an
 * appending commit rewrites: the path from the root page to the last leaf of its deepest bucket.
 * A new file frees two pages at its first commit (its first root and its freelist page), so a
 * member never has fewer. Measured against etcd 3.4.23, this is its file to the page for an empty
 * member and for a few, some hundreds and ten thousand keys put one at a time. etcd's own count
 * follows how its writes fell into commits (one every 100 ms), which no snapshot records: puts
 * from many clients at once, whose commits rewrite several leaves, left it two pages longer, and a
 * quick burst while the key bucket had one leaf left it a page shorter.
 */
export function etcdFreePages(shape: BoltTreeShape): number {
  return Math.max(newFileFreePages, shape.pathPages);
}

/** What bbolt's first commit on a new file frees: the file's first root page and its freelist page. */
const newFileFreePages = 2;

/** The layout of etcd's backend file: 4 KiB pages, no freelist page (NoFreelistSync), and etcdFreePages. */
export const etcdDbLayout: BoltLayout = {
  pageBytes: boltPageBytesDefault,
  freelistPage: false,
  freePages: etcdFreePages,
};

const encoder = new TextEncoder();
const name = (text: string): Uint8Array => encoder.encode(text);

/** The root bucket of the database: etcd's buckets in byte order. */
export function etcdDbBuckets(contents: EtcdDbContents): BoltBucketSource {
  const { revisions } = contents;
  const bucket = (bucketName: string, items: BoltBucketSource): BoltItem => ({ key: name(bucketName), bucket: items });
  return [
    bucket('alarm', alarmItems(contents.alarms)),
    bucket('auth', authItems(contents.auth)),
    bucket(
      'authRoles',
      sortedItems(contents.auth.roles.map((role) => ({ key: name(role.name), value: encodeRole(role) }))),
    ),
    bucket(
      'authUsers',
      sortedItems(contents.auth.users.map((user) => ({ key: name(user.name), value: encodeUser(user) }))),
    ),
    bucket(
      'cluster',
      contents.clusterVersion === undefined
        ? []
        : [{ key: name('clusterVersion'), value: name(contents.clusterVersion) }],
    ),
    'scan' in revisions
      ? { key: name('key'), records: keyScan(revisions), fillPercent: etcdKeyBucketFillPercent }
      : {
          key: name('key'),
          bucket: { [Symbol.iterator]: () => keyItems(revisions) },
          fillPercent: etcdKeyBucketFillPercent,
        },
    bucket('lease', { [Symbol.iterator]: () => leaseItems(contents.leases) }),
    bucket('members', memberItems(contents.members)),
    bucket('members_removed', removedItems(contents.removedMemberIds)),
    bucket('meta', metaItems(contents.meta, storeChanged(contents))),
  ];
}

/** The key bucket's items, in two key buffers reused for every item (the writer copies each at once). */
function* keyItems(revisions: Iterable<RevisionRecord>): Generator<BoltItem> {
  const live: { key: Uint8Array; value: Uint8Array } = { key: new Uint8Array(revisionBytes), value: new Uint8Array(0) };
  const tombstone: { key: Uint8Array; value: Uint8Array } = {
    key: new Uint8Array(revisionBytes + 1),
    value: new Uint8Array(0),
  };
  tombstone.key[revisionBytes] = tombstoneMark;
  for (const record of revisions) {
    const item = record.tombstone ? tombstone : live;
    item.key.set(record.revisionKey.subarray(0, revisionBytes));
    item.value = record.value;
    yield item;
  }
}

/**
 * The key bucket as a record scan over `revisions`: etcd's key is the revision key, with a 't'
 * after it for a tombstone, filled into one of two reused buffers.
 */
function keyScan(revisions: RevisionScan): BoltRecordScan {
  return {
    scan(visit) {
      const live = new Uint8Array(revisionBytes);
      const tombstone = new Uint8Array(revisionBytes + 1);
      tombstone[revisionBytes] = tombstoneMark;
      revisions.scan((bytes, keyAt, keyLength, valueAt, valueLength) => {
        if (keyLength !== revisionBytes)
          throw new Error(`the key area holds a key of ${keyLength} bytes, not a ${revisionBytes}-byte revision`);
        const key = isTombstoneRecordAt(bytes, valueAt, valueLength) ? tombstone : live;
        for (let index = 0; index < revisionBytes; index++) key[index] = bytes[keyAt + index]!;
        visit(key, bytes, valueAt, valueLength);
      });
    },
  };
}

/**
 * authEnabled, then authRevision. etcd writes authEnabled the first time auth is enabled and keeps
 * it, as 0, once auth is disabled; a store that never had auth on has none.
 */
function authItems(auth: AuthState): BoltItem[] {
  const revision = { key: name('authRevision'), value: uint64Bytes(auth.revision) };
  if (!(auth.enabledRecorded ?? auth.enabled)) return [revision];
  return [{ key: name('authEnabled'), value: Uint8Array.of(auth.enabled ? 1 : 0) }, revision];
}

function* leaseItems(leases: Iterable<LeaseRecord>): Generator<BoltItem> {
  for (const record of leases) yield { key: encodeLeaseKey(record.id), value: encodeLeaseRecord(record) };
}

/** Members by their hex ID (etcd's types.ID.String()), sorted as bbolt sorts those keys. */
function memberItems(members: ClusterMember[]): BoltItem[] {
  return sortedItems(
    members.map((member) => ({ key: name(member.id.toString(16)), value: name(memberToEtcdJson(member)) })),
  );
}

function removedItems(ids: bigint[]): BoltItem[] {
  return sortedItems(ids.map((id) => ({ key: name(id.toString(16)), value: name('removed') })));
}

/**
 * Whether the store ever changed: etcd writes consistent_index into the meta bucket only when a
 * write changes the key space (or a raft snapshot commits the store), so a member that never took
 * a put, delete or compaction has none. Every change leaves a record in the key bucket that only a
 * compaction takes away, and a compaction leaves its revision in the meta bucket.
 */
function storeChanged({ revisions, meta }: EtcdDbContents): boolean {
  if (meta.scheduledCompactRevision >= 0) return true;
  if ('scan' in revisions) return revisions.recordCount > 0;
  for (const _record of revisions) return true;
  return false;
}

/** consistent_index once the store changed, then the compaction revisions when a compaction was ever recorded. */
function metaItems(meta: BackendMeta, changed: boolean): BoltItem[] {
  const items: BoltItem[] = [];
  if (changed) items.push({ key: name('consistent_index'), value: uint64Bytes(meta.consistentIndex) });
  if (meta.finishedCompactRevision >= 0)
    items.push({ key: name('finishedCompactRev'), value: revisionKeyOf(meta.finishedCompactRevision) });
  if (meta.scheduledCompactRevision >= 0)
    items.push({ key: name('scheduledCompactRev'), value: revisionKeyOf(meta.scheduledCompactRevision) });
  return items;
}

/** pb.AlarmMember {MemberID = 1, Alarm = 2} as the key, an empty value. */
function alarmItems(alarms: { memberId: bigint; alarm: number }[]): BoltItem[] {
  return sortedItems(
    alarms.map(({ memberId, alarm }) => {
      const out: number[] = [];
      if (memberId !== 0n) {
        out.push(0x08);
        pushVarint64(out, memberId);
      }
      if (alarm !== 0) {
        out.push(0x10);
        pushVarint64(out, BigInt(alarm));
      }
      return { key: Uint8Array.from(out), value: new Uint8Array(0) };
    }),
  );
}

function sortedItems(items: { key: Uint8Array; value: Uint8Array }[]): BoltItem[] {
  return items.sort((a, b) => Buffer.compare(a.key, b.key));
}

function uint64Bytes(value: number): Uint8Array {
  const bytes = new Uint8Array(8);
  writeUint64(bytes, 0, value);
  return bytes;
}

/** A compaction revision as etcd stores it: the revision key of (rev, 0). */
function revisionKeyOf(main: number): Uint8Array {
  return Uint8Array.from(encodeRevision({ main, sub: 0 }));
}

/** One record of a bucket that etcd's backend Hash leaves out. */
export interface HashIgnoredKey {
  bucket: string;
  key: string;
}

/**
 * The records etcd's Maintenance.Hash leaves out (its mvcc DefaultIgnores): the meta bucket's
 * consistent_index, which moves with entries that change nothing in the store.
 */
export const hashIgnoredKeysDefault: readonly HashIgnoredKey[] = [{ bucket: 'meta', key: 'consistent_index' }];

/**
 * etcd's backend Hash of the database `root` lays out (see etcdDbBuckets): CRC-32C over each root
 * bucket in order, its name and then each of its records' key and value, leaving out `ignored`.
 * A nested bucket counts as a record whose value is empty, as bbolt's ForEach hands it over; a
 * root record that is not a bucket is refused with etcd's error.
 */
export function etcdDbHash(
  root: BoltBucketSource,
  ignored: readonly HashIgnoredKey[] = hashIgnoredKeysDefault,
): number {
  let crc = 0;
  for (const item of root) {
    if ('value' in item) throw new Error(`cannot get hash of bucket ${Buffer.from(item.key).toString('latin1')}`);
    crc = crc32cUpdate(crc, item.key);
    const bucketName = Buffer.from(item.key).toString('latin1');
    const skipped = new Set(ignored.filter((entry) => entry.bucket === bucketName).map((entry) => entry.key));
    const kept = (key: Uint8Array): boolean => skipped.size === 0 || !skipped.has(Buffer.from(key).toString('latin1'));
    if ('records' in item) {
      item.records.scan((key, value, valueAt, valueLength) => {
        if (kept(key)) crc = crc32cUpdate(crc32cUpdate(crc, key), value, valueAt, valueAt + valueLength);
      });
      continue;
    }
    for (const child of item.bucket) {
      if (!kept(child.key)) continue;
      crc = crc32cUpdate(crc, child.key);
      if ('value' in child) crc = crc32cUpdate(crc, child.value);
    }
  }
  return crc;
}

/** What `etcdctl snapshot status` reports of a database file. */
export interface EtcdDbStatus {
  /** CRC-32C over every bucket's name and its keys and values, in order. */
  hash: number;
  /** The main revision of the last key in the "key" bucket. */
  revision: number;
  /** Items in all buckets. */
  totalKey: number;
  /** The database's pages times the page size. */
  totalSize: number;
}

/**
 * etcd's snapshot status of the database in `source`, in one pass over its pages (a few pages held
 * at a time, as a restore reads): the whole file is checked first, then a top-level item that is
 * not a bucket is refused, as etcdctl runs bbolt's check before it hashes.
 */
export function etcdDbStatus(source: BoltPageSource): EtcdDbStatus {
  let hash = 0;
  // The last revision key's main revision, read once the walk is done: etcdctl takes the last
  // key's, so a damaged key before it must not stop the status.
  const lastMain = new Uint8Array(8);
  let revisionSeen = false;
  let totalKey = 0;
  let depth = 0;
  let inKeyBucket = false;
  let notBucket: string | undefined;
  const shape = walkBolt(source, {
    item(key, value) {
      if (depth === 0) notBucket ??= Buffer.from(key).toString('latin1');
      if (depth !== 1) return;
      hash = crc32cUpdate(crc32cUpdate(hash, key), value);
      if (inKeyBucket && key.length >= revisionBytes) {
        lastMain.set(key.subarray(0, 8));
        revisionSeen = true;
      }
      totalKey++;
    },
    enterBucket(key) {
      if (depth === 0) inKeyBucket = Buffer.from(key).toString('latin1') === 'key';
      // A root bucket's name is hashed; a nested bucket counts as an item whose value reads as nil.
      if (depth <= 1) hash = crc32cUpdate(hash, key);
      if (depth === 1) {
        if (inKeyBucket && key.length >= revisionBytes) {
          lastMain.set(key.subarray(0, 8));
          revisionSeen = true;
        }
        totalKey++;
      }
      depth++;
    },
    leaveBucket() {
      depth--;
    },
  });
  if (notBucket !== undefined) throw new Error(`cannot get hash of bucket ${notBucket}`);
  const revision = revisionSeen ? readUint64(lastMain, 0) : 0;
  return { hash, revision, totalKey, totalSize: shape.pageCount * shape.pageBytes };
}

/** A backend's contents read from an etcd database file for a restore, besides the key bucket's records. */
export interface EtcdDbRecords {
  leases: LeaseRecord[];
  scheduledCompactRevision: number;
  finishedCompactRevision: number;
  auth: AuthState;
}

/** The root buckets a restore reads whole; they are small next to the key bucket, which streams. */
const keptBuckets = new Set(['auth', 'authRoles', 'authUsers', 'lease', 'meta']);

/**
 * Reads an etcd database for a restore, in one pass over its pages: each record of the "key"
 * bucket goes to `putRevision` as it is read (its 17-byte revision key without the tombstone mark,
 * and its mvccpb.KeyValue bytes, both valid only during the call), in ascending revision order;
 * the "lease", "meta" and auth buckets are read once the walk is done. Throws a BoltFormatError
 * when the file is not a sound bbolt database, else an Error naming the first record that is not
 * etcd's layout: the key bucket's records first, then the leases, the meta and the auth buckets.
 * Once it has thrown, what went to `putRevision` must be thrown away.
 */
export function readEtcdDbRecords(
  source: BoltPageSource,
  putRevision: (revisionKey: Uint8Array, value: Uint8Array) => void,
): EtcdDbRecords {
  const keyRecords = new KeyRecords(putRevision);
  const kept: BoltBucket = { items: [] };
  // The open buckets from the root: what each one is to the restore.
  const open: ('key' | BoltBucket | undefined)[] = [];
  walkBolt(source, {
    item(key, value) {
      const bucket = open[open.length - 1];
      if (bucket === 'key' && open.length === 1) keyRecords.put(key, value);
      else if (typeof bucket === 'object' && open.length === 1)
        bucket.items.push({ key: key.slice(), value: value.slice() });
    },
    enterBucket(key) {
      const parent = open[open.length - 1];
      let opened: 'key' | BoltBucket | undefined;
      if (open.length === 0) {
        const bucketName = Buffer.from(key).toString('latin1');
        if (bucketName === 'key') opened = 'key';
        else if (keptBuckets.has(bucketName)) {
          opened = { items: [] };
          kept.items.push({ key: key.slice(), bucket: opened });
        }
      } else if (parent === 'key' && open.length === 1) keyRecords.nested();
      else if (typeof parent === 'object' && open.length === 1)
        parent.items.push({ key: key.slice(), bucket: { items: [] } });
      open.push(opened);
    },
    leaveBucket() {
      open.pop();
    },
  });
  keyRecords.check();
  const db = { root: kept };
  const leases = plainItems(db, 'lease').map(({ value }) => decodeLeaseRecord(value));
  const meta = new Map(plainItems(db, 'meta').map(({ key, value }) => [Buffer.from(key).toString('latin1'), value]));
  const compactRevision = (name: string): number => {
    const value = meta.get(name);
    return value === undefined ? -1 : decodeRevision(value).main;
  };
  return {
    leases,
    scheduledCompactRevision: compactRevision('scheduledCompactRev'),
    finishedCompactRevision: compactRevision('finishedCompactRev'),
    auth: readAuthState(db),
  };
}

/** compareBytes over the revisions of two revision keys (their first revisionBytes), byte by byte. */
function compareRevisionKeys(a: Uint8Array, b: Uint8Array): number {
  for (let index = 0; index < revisionBytes; index++) {
    const difference = a[index]! - b[index]!;
    if (difference !== 0) return difference;
  }
  return 0;
}

/**
 * The key bucket's records on their way to a restore: each is checked to be etcd's (a revision
 * key, marked a tombstone exactly when its KeyValue is one) and passed on. The first record that
 * is not, or a nested bucket, stops the passing on; check() then throws for it, a nested bucket
 * first, as a check of the whole bucket would. Keys that stop ascending are left to the reader,
 * which refuses the file once the bucket is read.
 */
class KeyRecords {
  private nestedSeen = false;
  private outOfOrder = false;
  private recordError: Error | undefined;
  private readonly previousKey = new Uint8Array(revisionBytes + 1);
  private previousKeyBytes = 0;

  constructor(private readonly putRevision: (revisionKey: Uint8Array, value: Uint8Array) => void) {}

  put(key: Uint8Array, value: Uint8Array): void {
    if (this.nestedSeen || this.outOfOrder || this.recordError !== undefined) return;
    const tombstone = key.length === revisionBytes + 1 && key[revisionBytes] === tombstoneMark;
    if (key.length !== revisionBytes && !tombstone) {
      this.recordError = new Error(`key bucket: a key of ${key.length} bytes is not a revision`);
      return;
    }
    let recordTombstone;
    try {
      recordTombstone = checkKeyValueRecord(value);
    } catch (error) {
      this.recordError = error as Error;
      return;
    }
    if (recordTombstone !== tombstone) {
      const { main, sub } = decodeRevision(key);
      this.recordError = new Error(
        `key bucket: revision ${main}_${sub} is ${tombstone ? '' : 'not '}marked a tombstone, its record says otherwise`,
      );
      return;
    }
    if (this.previousKeyBytes > 0) {
      // The revisions decide: a key whose revision is not above the last one's is out of order
      // (which the reader refuses once the bucket is read) or that revision stored again.
      const order = compareRevisionKeys(this.previousKey, key);
      if (order > 0 || (order === 0 && this.previousKeyBytes >= key.length)) {
        this.outOfOrder = true;
        return;
      }
      if (order === 0) {
        const { main, sub } = decodeRevision(key);
        this.recordError = new Error(`key bucket: revision ${main}_${sub} is stored both as a key and as a tombstone`);
        return;
      }
    }
    this.previousKey.set(key);
    this.previousKeyBytes = key.length;
    this.putRevision(tombstone ? key.subarray(0, revisionBytes) : key, value);
  }

  nested(): void {
    this.nestedSeen = true;
  }

  check(): void {
    if (this.nestedSeen) throw new Error('key bucket: a nested bucket where etcd keeps records');
    if (this.recordError !== undefined) throw this.recordError;
    assert(!this.outOfOrder, 'the reader passed a key bucket whose keys do not ascend');
  }
}

/** etcd's auth buckets as tsetcd's auth record; a store without authRevision is at etcd's first revision, 1. */
function readAuthState(db: Pick<BoltDatabase, 'root'>): AuthState {
  const auth = new Map(plainItems(db, 'auth').map(({ key, value }) => [Buffer.from(key).toString('latin1'), value]));
  const enabled = auth.get('authEnabled');
  const revision = auth.get('authRevision');
  if (revision !== undefined && revision.length !== 8)
    throw new Error(`auth bucket: authRevision of ${revision.length} bytes, want 8`);
  return {
    enabled: enabled?.length === 1 && enabled[0] === 1,
    enabledRecorded: enabled !== undefined,
    revision: revision === undefined ? 1 : readUint64(revision, 0),
    users: plainItems(db, 'authUsers').map(({ value }) => decodeUser(value)),
    roles: plainItems(db, 'authRoles').map(({ value }) => decodeRole(value)),
  };
}

function plainItems(db: Pick<BoltDatabase, 'root'>, bucketName: string): { key: Uint8Array; value: Uint8Array }[] {
  const bucket = childBucket(db.root, bucketName);
  if (bucket === undefined) return [];
  return bucket.items.map((item) => {
    if (!('value' in item)) throw new Error(`${bucketName} bucket: a nested bucket where etcd keeps records`);
    return item;
  });
}
