/**
 * etcd 3.4's backend layout in a bbolt file, as `etcdctl snapshot save` receives it: the buckets
 * alarm, auth, authRoles, authUsers, cluster, key, lease, members, members_removed and meta.
 * "key" maps etcd's revision keys (a tombstone's with a trailing 't') to mvccpb.KeyValue; "meta"
 * holds consistent_index (8 bytes big-endian) and the compaction revisions as revision keys;
 * "lease" maps 8-byte big-endian IDs to leasepb.Lease; "members" maps hex IDs to etcd's member
 * JSON and "members_removed" maps removed IDs to "removed"; "cluster" holds clusterVersion;
 * "auth" holds authRevision; "alarm" has a marshalled AlarmMember key per raised alarm.
 */
import type { BackendMeta, LeaseRecord } from '../mvcc/backend.js';
import { encodeLeaseKey, encodeLeaseRecord } from '../mvcc/lease-record-codec.js';
import { encodeRevision, revisionBytes, tombstoneMark, writeUint64 } from '../mvcc/revision.js';
import { pushVarint64 } from '../lib/protobuf.js';
import { type ClusterMember, memberToEtcdJson } from '../membership/cluster-member.js';
import type { BoltBucketSource, BoltItem } from './bbolt/format.js';

/** One record of the backend's key area: its 17-byte revision key and its mvccpb.KeyValue bytes. */
export interface RevisionRecord {
  revisionKey: Uint8Array;
  value: Uint8Array;
  tombstone: boolean;
}

/** etcd's AlarmType values. */
export const alarmTypes = { none: 0, noSpace: 1, corrupt: 2 } as const;

/** What a backend snapshot holds, read from a member at one point. */
export interface EtcdDbContents {
  /** Every stored revision in ascending order. */
  revisions: Iterable<RevisionRecord>;
  meta: BackendMeta;
  /** Lease records in ascending unsigned ID order. */
  leases: Iterable<LeaseRecord>;
  members: ClusterMember[];
  removedMemberIds: bigint[];
  clusterVersion: string;
  alarms: { memberId: bigint; alarm: number }[];
}

/** etcd's auth store starts at revision 1 and writes it on its first start. */
const authRevisionInitial = 1;

const encoder = new TextEncoder();
const name = (text: string): Uint8Array => encoder.encode(text);

/** The root bucket of the database: etcd's buckets in byte order. */
export function etcdDbBuckets(contents: EtcdDbContents): BoltBucketSource {
  const buckets: { name: string; items: BoltBucketSource }[] = [
    { name: 'alarm', items: alarmItems(contents.alarms) },
    { name: 'auth', items: [{ key: name('authRevision'), value: uint64Bytes(authRevisionInitial) }] },
    { name: 'authRoles', items: [] },
    { name: 'authUsers', items: [] },
    { name: 'cluster', items: [{ key: name('clusterVersion'), value: name(contents.clusterVersion) }] },
    { name: 'key', items: keyItems(contents.revisions) },
    { name: 'lease', items: leaseItems(contents.leases) },
    { name: 'members', items: memberItems(contents.members) },
    { name: 'members_removed', items: removedItems(contents.removedMemberIds) },
    { name: 'meta', items: metaItems(contents.meta) },
  ];
  return buckets.map(({ name: bucketName, items }) => ({ key: name(bucketName), bucket: items }));
}

function* keyItems(revisions: Iterable<RevisionRecord>): Generator<BoltItem> {
  for (const { revisionKey, value, tombstone } of revisions) {
    const key = new Uint8Array(revisionBytes + (tombstone ? 1 : 0));
    key.set(revisionKey.subarray(0, revisionBytes));
    if (tombstone) key[revisionBytes] = tombstoneMark;
    yield { key, value };
  }
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

/** consistent_index, then the compaction revisions when a compaction was ever recorded. */
function metaItems(meta: BackendMeta): BoltItem[] {
  const items: BoltItem[] = [{ key: name('consistent_index'), value: uint64Bytes(meta.consistentIndex) }];
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
