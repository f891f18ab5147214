/**
 * Maintenance.Hash against real etcd: etcd's number is a CRC-32C over every bucket of its backend
 * (names, keys and values; only meta/consistent_index left out), and the members bucket holds each
 * member's name and its peer and client URLs. So etcd runs first, then the system under test on
 * the same ports with the same name and cluster flags, and the same history runs on each: puts, an
 * overwrite, deletes, txns, a lease with a key, a user without a password and a role, a
 * compaction and writes after it. The hashes must be equal at every point.
 *
 * Then auth goes on, with a root user whose password etcd stores as a bcrypt hash with a random
 * salt: from there the two stores differ in that field by design, so the hash cannot be equal.
 * Each member's hash must then be the one of its own `etcdctl snapshot save` file, and the two
 * files' buckets, with root's password field emptied, must hash the same.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GrpcMethod, WireMessage } from '../../src/api/proto-wire.js';
import { decodeUser, encodeUser } from '../../src/auth/authpb-codec.js';
import type { BoltBucketSource } from '../../src/snap/bbolt/format.js';
import { type BoltBucket, readBolt } from '../../src/snap/bbolt/reader.js';
import { etcdDbHash } from '../../src/snap/etcd-db.js';
import { EtcdGrpc } from '../support/etcd-grpc.js';
import { etcdctlOk } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();

const leaseId = 0x1234n;
const leaseTtlSeconds = 600;
const rootPassword = 'rootpw';
/** How long a fresh member may take to decide its cluster version (etcd's leader sets it soon after start). */
const clusterVersionWaitMs = 15_000;

/** One Maintenance.Hash reading: where it was taken and what the member answered. */
interface Reading {
  readonly at: string;
  readonly result: string;
}

/** What a member gave with auth on: its hash, the hash of its own snapshot file, and that file's hash without root's password. */
interface AuthOnReading {
  readonly hash: string;
  readonly snapshotHash: string;
  readonly withoutRootPassword: number;
}

async function grpcOk(grpc: EtcdGrpc, method: GrpcMethod, request: WireMessage, token?: string) {
  const answer = await grpc.unary(method, request, token);
  assert.equal(answer.code, 0, `${method}: ${answer.message}`);
  return answer.response;
}

/** Waits until /version reports a cluster version: etcd stores it in its cluster bucket, which the hash covers. */
async function awaitClusterVersion(member: Member): Promise<void> {
  const deadline = Date.now() + clusterVersionWaitMs;
  let seen = '';
  while (Date.now() < deadline) {
    seen = await (await fetch(`${member.clientUrl}/version`)).text();
    if (!/"etcdcluster":"not_decided"/.test(seen)) return;
    await sleep(100);
  }
  throw new Error(`${member.command.label}: no cluster version after ${clusterVersionWaitMs} ms: ${seen}`);
}

/** A bucket read from a file as the items etcdDbHash takes, with `change` applied to each record of the named buckets. */
function bucketSource(
  bucket: BoltBucket,
  change: (bucketName: string, value: Uint8Array) => Uint8Array = (_, value) => value,
  bucketName = '',
): BoltBucketSource {
  return bucket.items.map((item) => {
    const name = Buffer.from(item.key).toString('latin1');
    if ('bucket' in item) return { key: item.key, bucket: bucketSource(item.bucket, change, name) };
    return { key: item.key, value: change(bucketName, item.value) };
  });
}

/** The history with auth off, reading Maintenance.Hash along the way. */
async function historyAuthOff(member: Member, grpc: EtcdGrpc): Promise<Reading[]> {
  const readings: Reading[] = [];
  const read = async (at: string) => {
    const answer = await grpc.unary('etcdserverpb.Maintenance/Hash', {});
    const result =
      answer.code === 0
        ? `hash ${String(answer.response.hash)}, revision ${String((answer.response.header as { revision?: unknown }).revision)}`
        : `error ${answer.code} ${answer.message}`;
    readings.push({ at, result });
  };
  await read('a fresh store');
  await etcdctlOk(member, ['put', 'a', '1']);
  await etcdctlOk(member, ['put', 'b', '2']);
  await etcdctlOk(member, ['put', 'a', '11']);
  await etcdctlOk(member, ['put', 'large', 'x'.repeat(5000)]);
  await etcdctlOk(member, ['del', 'b']);
  await read('after puts, an overwrite and a delete');
  await etcdctlOk(member, ['txn'], 'value("a") = "11"\n\nput t1 x\nput t2 y\ndel large\n\nput never z\n\n');
  await etcdctlOk(member, ['put', 'u/1', '1']);
  await etcdctlOk(member, ['del', 'u/', '--prefix']);
  await read('after a txn and a range delete');
  await grpcOk(grpc, 'etcdserverpb.Lease/LeaseGrant', { ID: String(leaseId), TTL: String(leaseTtlSeconds) });
  await etcdctlOk(member, ['put', 'leased', 'v', `--lease=${leaseId.toString(16)}`]);
  await read('after a lease grant and a leased put');
  // etcdctl 3.4's `user add --no-password` sends no user name, so the user is added over gRPC.
  await grpcOk(grpc, 'etcdserverpb.Auth/UserAdd', { name: 'alice', options: { noPassword: true } });
  await etcdctlOk(member, ['role', 'add', 'reader']);
  await etcdctlOk(member, ['role', 'grant-permission', 'reader', 'read', 'a', 'b']);
  await etcdctlOk(member, ['role', 'grant-permission', '--prefix', 'reader', 'readwrite', 't']);
  await etcdctlOk(member, ['user', 'grant-role', 'alice', 'reader']);
  await read('after a user without a password and a role');
  await etcdctlOk(member, ['compaction', '6', '--physical']);
  await read('after a compaction at 6');
  await etcdctlOk(member, ['put', 'a', '12']);
  await etcdctlOk(member, ['del', 'leased']);
  await read('after writes following the compaction');
  return readings;
}

/** Turns auth on with a root user, then reads the hash and saves a snapshot as root. */
async function authOn(member: Member, grpc: EtcdGrpc): Promise<AuthOnReading> {
  await etcdctlOk(member, ['user', 'add', `root:${rootPassword}`]);
  await etcdctlOk(member, ['user', 'grant-role', 'root', 'root']);
  await etcdctlOk(member, ['auth', 'enable']);
  const { token } = await grpcOk(grpc, 'etcdserverpb.Auth/Authenticate', { name: 'root', password: rootPassword });
  const answer = await grpcOk(grpc, 'etcdserverpb.Maintenance/Hash', {}, String(token));
  const path = join(member.workDir, 'hash.db');
  await etcdctlOk(member, ['--user', `root:${rootPassword}`, 'snapshot', 'save', path]);
  const root = readBolt(readFileSync(path)).root;
  const withoutPassword = (bucketName: string, value: Uint8Array) =>
    bucketName === 'authUsers' ? encodeUser({ ...decodeUser(value), password: '' }) : value;
  return {
    hash: String(answer.hash),
    snapshotHash: String(etcdDbHash(bucketSource(root))),
    withoutRootPassword: etcdDbHash(bucketSource(root, withoutPassword)),
  };
}

async function historyOn(
  command: MemberCommand,
  ports?: { client: number; peer: number },
): Promise<{ member: { client: number; peer: number }; readings: Reading[]; authOn: AuthOnReading }> {
  const member = await Member.start({ command, ...(ports === undefined ? {} : { ports }) });
  const grpc = new EtcdGrpc(member.clientUrl);
  try {
    await awaitClusterVersion(member);
    const readings = await historyAuthOff(member, grpc);
    return {
      member: { client: member.clientPort, peer: member.peerPort },
      readings,
      authOn: await authOn(member, grpc),
    };
  } finally {
    grpc.close();
    await member.destroy();
  }
}

test(
  `Maintenance.Hash gives etcd's hash on ${sut.command?.label ?? 'tsetcd'} for the same history and the same member flags`,
  sut.skipReason === undefined ? {} : { skip: sut.skipReason },
  async (t) => {
    const expected = await historyOn(etcdCommand());
    const actual = await historyOn(sut.command as MemberCommand, expected.member);
    for (const reading of expected.readings) t.diagnostic(`etcd ${reading.at}: ${reading.result}`);
    assert.equal(new Set(expected.readings.map((reading) => reading.result)).size, expected.readings.length);
    assert.deepEqual(actual.readings, expected.readings);
    t.diagnostic(`etcd with auth on: ${JSON.stringify(expected.authOn)}`);
    // etcd's own hash is its snapshot file's: the buckets hashed here are the ones etcd hashes.
    assert.equal(expected.authOn.snapshotHash, expected.authOn.hash, "etcd's hash is its snapshot file's");
    assert.equal(
      actual.authOn.snapshotHash,
      actual.authOn.hash,
      `${actual.member.client}: the hash is its snapshot file's`,
    );
    assert.equal(actual.authOn.withoutRootPassword, expected.authOn.withoutRootPassword);
  },
);
