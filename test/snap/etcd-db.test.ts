/**
 * etcd's layout in a bbolt file. testdata/etcd-3.4.23.db is `etcdctl snapshot save` from a real
 * etcd 3.4.23 after: put a 1, put b 2, put a 3, del b, lease grant 100, put --lease c 4, compact 3
 * (`etcdctl snapshot status -w json` printed {"hash":6310319,"revision":6,"totalKey":12,"totalSize":20480}).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeKeyValue } from '../../src/api/key-value-codec.js';
import { packageRoot } from '../../src/lib/paths.js';
import { encodeKeyValue } from '../../src/api/key-value-codec.js';
import { decodeRevision, encodeRevision } from '../../src/mvcc/revision.js';
import { PermissionType } from '../../src/auth/types.js';
import { bytesPageSource, childBucket, readBolt } from '../../src/snap/bbolt/reader.js';
import { pageFlags } from '../../src/snap/bbolt/format.js';
import { writeBoltBytes } from '../../src/snap/bbolt/writer.js';
import {
  etcdDbBuckets,
  etcdDbHash,
  etcdDbStatus,
  readEtcdDbRecords,
  type EtcdDbContents,
  type RevisionRecord,
} from '../../src/snap/etcd-db.js';
import type { BoltBucketSource } from '../../src/snap/bbolt/format.js';
import type { BoltBucket } from '../../src/snap/bbolt/reader.js';

const etcdFile = readFileSync(join(packageRoot(), 'test', 'snap', 'testdata', 'etcd-3.4.23.db'));

/** A restore's reading of `file`, with the key bucket's records as they were handed over, copied. */
function readRecords(file: Uint8Array) {
  const revisions: RevisionRecord[] = [];
  const records = readEtcdDbRecords(bytesPageSource(file), (revisionKey, value) =>
    revisions.push({
      revisionKey: revisionKey.slice(),
      value: value.slice(),
      tombstone: decodeKeyValue(value).createRevision === 0,
    }),
  );
  return { ...records, revisions };
}

/** A member's contents with no key records, nothing in its other buckets and auth never enabled. */
const noRecords = {
  meta: { consistentIndex: 9, term: 2, scheduledCompactRevision: -1, finishedCompactRevision: -1 },
  leases: [],
  members: [],
  removedMemberIds: [],
  clusterVersion: '3.4.0',
  alarms: [],
  auth: { enabled: false, revision: 1, users: [], roles: [] },
};

test("a real etcd 3.4 snapshot reads with etcdctl's status and its records", () => {
  assert.deepEqual(etcdDbStatus(bytesPageSource(etcdFile)), {
    hash: 6310319,
    revision: 6,
    totalKey: 12,
    totalSize: 20480,
  });
  const records = readRecords(etcdFile);
  assert.deepEqual(
    records.revisions.map(({ revisionKey, value, tombstone }) => [
      decodeRevision(revisionKey).main,
      Buffer.from(decodeKeyValue(value).key).toString(),
      tombstone,
    ]),
    [
      [2, 'a', false],
      [3, 'b', false],
      [4, 'a', false],
      [5, 'b', true],
      [6, 'c', false],
    ],
  );
  assert.equal(records.leases.length, 1);
  assert.equal(records.leases[0]?.ttlSeconds, 100);
  assert.equal(decodeKeyValue(records.revisions[4]!.value).lease, records.leases[0]?.id);
  assert.deepEqual([records.scheduledCompactRevision, records.finishedCompactRevision], [3, 3]);
  assert.deepEqual(records.auth, { enabled: false, enabledRecorded: false, revision: 1, users: [], roles: [] });
});

test("a member's contents written in etcd's layout read back the same, with etcd's members and meta", () => {
  const kv = (key: string, main: number, value: string) => ({
    key: Buffer.from(key),
    createRevision: main,
    modRevision: main,
    version: 1,
    value: Buffer.from(value),
    lease: 0n,
  });
  const revisions: RevisionRecord[] = [
    { revisionKey: encodeRevision({ main: 2, sub: 0 }), value: encodeKeyValue(kv('x', 2, '1')), tombstone: false },
    { revisionKey: encodeRevision({ main: 2, sub: 1 }), value: encodeKeyValue(kv('y', 2, '2')), tombstone: false },
    {
      revisionKey: encodeRevision({ main: 3, sub: 0 }),
      value: encodeKeyValue({ ...kv('x', 0, ''), modRevision: 0, version: 0 }),
      tombstone: true,
    },
  ].map((record) => ({ ...record, revisionKey: Uint8Array.from(record.revisionKey) }));
  const bytes = (text: string) => new Uint8Array(Buffer.from(text));
  const auth = {
    enabled: true,
    enabledRecorded: true,
    revision: 7,
    users: [
      { name: 'root', password: '$2a$10$abcdefghijklmnopqrstuu', noPassword: false, roles: ['root'] },
      { name: 'reader', password: '', noPassword: true, roles: ['r', 'w'] },
    ],
    roles: [
      {
        name: 'r',
        permissions: [
          { permType: PermissionType.read, key: bytes('a'), rangeEnd: bytes('b') },
          { permType: PermissionType.readwrite, key: bytes('k'), rangeEnd: new Uint8Array(0) },
        ],
      },
      { name: 'root', permissions: [] },
      { name: 'w', permissions: [{ permType: PermissionType.write, key: bytes('x'), rangeEnd: Uint8Array.of(0) }] },
    ],
  };
  const file = writeBoltBytes(
    etcdDbBuckets({
      revisions,
      meta: { consistentIndex: 9, term: 2, scheduledCompactRevision: 2, finishedCompactRevision: -1 },
      leases: [{ id: 7n, ttlSeconds: 60 }],
      members: [{ id: 0xabcn, name: 'm1', peerUrls: ['http://p:1'], clientUrls: ['http://c:1'], isLearner: false }],
      removedMemberIds: [0x5n],
      clusterVersion: '3.4.0',
      alarms: [],
      auth,
    }),
  );
  const db = readBolt(file);
  const names = db.root.items.map((item) => Buffer.from(item.key).toString());
  assert.deepEqual(names, [
    'alarm',
    'auth',
    'authRoles',
    'authUsers',
    'cluster',
    'key',
    'lease',
    'members',
    'members_removed',
    'meta',
  ]);
  const records = readRecords(file);
  assert.deepEqual(
    records.revisions.map(({ revisionKey, tombstone }) => {
      const { main, sub } = decodeRevision(revisionKey);
      return [main, sub, tombstone];
    }),
    [
      [2, 0, false],
      [2, 1, false],
      [3, 0, true],
    ],
  );
  assert.deepEqual(decodeKeyValue(records.revisions[1]!.value), decodeKeyValue(revisions[1]!.value));
  assert.deepEqual(records.leases, [{ id: 7n, ttlSeconds: 60 }]);
  assert.deepEqual([records.scheduledCompactRevision, records.finishedCompactRevision], [2, -1]);
  const member = childBucket(db.root, 'members')!.items[0]!;
  assert.equal(Buffer.from(member.key).toString(), 'abc');
  assert.ok('value' in member);
  assert.equal(
    Buffer.from(member.value).toString(),
    '{"id":2748,"peerURLs":["http://p:1"],"name":"m1","clientURLs":["http://c:1"]}',
  );
  const plain = (value: unknown) =>
    JSON.parse(JSON.stringify(value, (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)));
  assert.deepEqual(plain(records.auth), plain({ ...auth, users: [auth.users[1], auth.users[0]] }));
  const usersBucket = childBucket(db.root, 'authUsers')!.items.map((item) => Buffer.from(item.key).toString());
  assert.deepEqual(usersBucket, ['reader', 'root']);
  const authBucket = childBucket(db.root, 'auth')!.items.map((item) => [
    Buffer.from(item.key).toString(),
    'value' in item ? Buffer.from(item.value).toString('hex') : '',
  ]);
  assert.deepEqual(authBucket, [
    ['authEnabled', '01'],
    ['authRevision', '0000000000000007'],
  ]);
  // etcd keeps authEnabled, as 0, once auth is disabled; a store that never had auth on has none.
  const authBucketOf = (state: { enabled: boolean; enabledRecorded?: boolean }) =>
    etcdDbBuckets({
      ...noRecords,
      revisions: [],
      auth: { ...auth, enabled: state.enabled, enabledRecorded: state.enabledRecorded },
    });
  const authEnabledOf = (state: { enabled: boolean; enabledRecorded?: boolean }) =>
    childBucket(readBolt(writeBoltBytes(authBucketOf(state))).root, 'auth')!
      .items.filter((item) => Buffer.from(item.key).toString() === 'authEnabled')
      .map((item) => ('value' in item ? Buffer.from(item.value).toString('hex') : ''));
  assert.deepEqual(authEnabledOf({ enabled: false, enabledRecorded: true }), ['00']);
  assert.deepEqual(authEnabledOf({ enabled: false, enabledRecorded: false }), []);
  assert.deepEqual(authEnabledOf({ enabled: false }), [], 'a record from before enabledRecorded: as enabled says');
  assert.deepEqual(authEnabledOf({ enabled: true }), ['01']);
  // alarm 0 + auth 2 + authRoles 3 + authUsers 2 + cluster 1 + key 3 + lease 1 + members 1 + removed 1 + meta 2.
  assert.deepEqual((({ revision, totalKey }) => ({ revision, totalKey }))(etcdDbStatus(bytesPageSource(file))), {
    revision: 3,
    totalKey: 16,
  });
});

/** A bucket read from a file as the items a hash or a writer takes. */
function bucketSource(bucket: BoltBucket): BoltBucketSource {
  return bucket.items.map((item) => ('bucket' in item ? { key: item.key, bucket: bucketSource(item.bucket) } : item));
}

test("etcd's backend Hash of a real etcd file with nothing left out is the hash etcdctl's snapshot status printed", () => {
  assert.equal(etcdDbHash(bucketSource(readBolt(etcdFile).root), []), 6310319);
});

test("etcd's backend Hash covers every bucket's records but the consistent index, and agrees with a walk of the written file", () => {
  const kv = (key: string, main: number) => ({
    key: Buffer.from(key),
    createRevision: main,
    modRevision: main,
    version: 1,
    value: Buffer.from(`v${main}`),
    lease: 0n,
  });
  const revisions: RevisionRecord[] = [2, 3, 4].map((main) => ({
    revisionKey: Uint8Array.from(encodeRevision({ main, sub: 0 })),
    value: encodeKeyValue(kv(`k${main}`, main)),
    tombstone: false,
  }));
  const contents: EtcdDbContents = {
    revisions,
    meta: { consistentIndex: 9, term: 2, scheduledCompactRevision: 3, finishedCompactRevision: 3 },
    leases: [{ id: 7n, ttlSeconds: 60 }],
    members: [{ id: 0xabcn, name: 'm1', peerUrls: ['http://p:1'], clientUrls: ['http://c:1'], isLearner: false }],
    removedMemberIds: [0x5n],
    clusterVersion: '3.4.0',
    alarms: [{ memberId: 0xabcn, alarm: 1 }],
    auth: { enabled: false, revision: 3, users: [], roles: [{ name: 'r', permissions: [] }] },
  };
  const hash = (changed: Partial<EtcdDbContents>) => etcdDbHash(etcdDbBuckets({ ...contents, ...changed }));
  // With nothing left out, the hash is the one etcdctl's snapshot status walk takes of the file written from the same contents.
  const file = writeBoltBytes(etcdDbBuckets(contents));
  assert.equal(etcdDbHash(etcdDbBuckets(contents), []), etcdDbStatus(bytesPageSource(file)).hash);
  const base = hash({});
  assert.notEqual(base, etcdDbHash(etcdDbBuckets(contents), []), 'consistent_index is left out by default');
  assert.equal(hash({ meta: { ...contents.meta, consistentIndex: 99, term: 5 } }), base);
  const changes: Record<string, Partial<EtcdDbContents>> = {
    key: { revisions: revisions.slice(0, 2) },
    meta: { meta: { ...contents.meta, finishedCompactRevision: 2 } },
    lease: { leases: [{ id: 7n, ttlSeconds: 61 }] },
    members: { members: [{ ...contents.members[0]!, clientUrls: ['http://c:2'] }] },
    members_removed: { removedMemberIds: [] },
    cluster: { clusterVersion: undefined },
    alarm: { alarms: [] },
    auth: { auth: { ...contents.auth, revision: 4 } },
    authRoles: { auth: { ...contents.auth, roles: [] } },
    authUsers: { auth: { ...contents.auth, users: [{ name: 'u', password: '', noPassword: true, roles: [] }] } },
  };
  for (const [bucket, changed] of Object.entries(changes))
    assert.notEqual(hash(changed), base, `a change in ${bucket}`);
  assert.throws(
    () => etcdDbHash([{ key: Buffer.from('stray'), value: Uint8Array.of(1) }]),
    /^Error: cannot get hash of bucket stray$/,
  );
});

test('the key bucket written from a record scan is the same file as from record objects', () => {
  const contents = noRecords;
  // No records and a few (the key bucket inline), then many over several pages with tombstones and values larger than a page.
  for (const count of [0, 3, 3_000]) {
    const revisions: RevisionRecord[] = Array.from({ length: count }, (_, index) => {
      const main = index + 2;
      const tombstone = index % 5 === 4;
      const value = new Uint8Array(index % 400 === 1 ? 9_000 : index % 300).fill(index % 251);
      const key = Buffer.from(`key-${index % 40}`);
      const kv = tombstone
        ? { key, createRevision: 0, modRevision: 0, version: 0, value: new Uint8Array(0), lease: 0n }
        : { key, createRevision: main, modRevision: main, version: 1, value, lease: 0n };
      return { revisionKey: Uint8Array.from(encodeRevision({ main, sub: 0 })), value: encodeKeyValue(kv), tombstone };
    });
    // The scan hands every record out in one buffer it overwrites, as the LMDB file reader does.
    const shared = new Uint8Array(20_000);
    const scan = {
      recordCount: revisions.length,
      scan(visit: (bytes: Uint8Array, keyAt: number, keyLength: number, valueAt: number, valueLength: number) => void) {
        for (const { revisionKey, value } of revisions) {
          shared.set(revisionKey, 3);
          shared.set(value, 3 + revisionKey.length + 5);
          visit(shared, 3, revisionKey.length, 3 + revisionKey.length + 5, value.length);
        }
      },
    };
    const fromObjects = writeBoltBytes(etcdDbBuckets({ ...contents, revisions }));
    const fromScan = writeBoltBytes(etcdDbBuckets({ ...contents, revisions: scan }));
    assert.ok(Buffer.from(fromScan).equals(fromObjects), `${count} records: the files differ`);
    const read = readRecords(fromScan).revisions;
    assert.deepEqual(
      read.map((record) => record.tombstone),
      revisions.map((record) => record.tombstone),
    );
  }
});

test('a restore refuses a key bucket whose record is not etcd’s after any fault in the file, and a revision stored twice', () => {
  const revision = (main: number, tombstone = false) => {
    const key = Uint8Array.from(encodeRevision({ main, sub: 0 }));
    return tombstone ? Uint8Array.of(...key, 't'.charCodeAt(0)) : key;
  };
  const live = encodeKeyValue({
    key: Buffer.from('a'),
    createRevision: 2,
    modRevision: 2,
    version: 1,
    value: Buffer.from('1'),
    lease: 0n,
  });
  const tombstone = encodeKeyValue({
    key: Buffer.from('a'),
    createRevision: 0,
    modRevision: 0,
    version: 0,
    value: new Uint8Array(0),
    lease: 0n,
  });
  const keyBucket = (items: { key: Uint8Array; value: Uint8Array }[]) =>
    writeBoltBytes([{ key: Buffer.from('key'), bucket: items }]);
  // A live record marked a tombstone, then the same revision twice.
  const marked = keyBucket([{ key: revision(2, true), value: live }]);
  assert.throws(
    () => readRecords(marked),
    /^Error: key bucket: revision 2_0 is marked a tombstone, its record says otherwise$/,
  );
  const twice = keyBucket([
    { key: revision(2), value: live },
    { key: revision(2, true), value: tombstone },
  ]);
  assert.throws(
    () => readRecords(twice),
    /^Error: key bucket: revision 2_0 is stored both as a key and as a tombstone$/,
  );
  // The record's fault waits for the rest of the file: a page out of place later on is what is reported.
  const broken = keyBucket([
    { key: revision(2, true), value: live },
    ...Array.from({ length: 400 }, (_, index) => ({ key: revision(3 + index), value: live })),
  ]);
  // The key bucket's last leaf page (the root bucket's holds one item) names another page in its header.
  const view = new DataView(broken.buffer, broken.byteOffset);
  const leaves = Array.from({ length: broken.length / 4096 }, (_, page) => page).filter(
    (page) => view.getUint16(page * 4096 + 8, true) === pageFlags.leaf && view.getUint16(page * 4096 + 10, true) > 1,
  );
  assert.ok(leaves.length > 2, `the key bucket spans leaf pages ${leaves.join(', ')}`);
  view.setBigUint64(leaves.at(-1)! * 4096, 99n, true);
  assert.throws(() => readRecords(broken), /^BoltFormatError: page \d+: its header says page 99$/);
});
