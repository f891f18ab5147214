/**
 * HashKV against real etcd: the same history (puts, overwrites, deletes, range deletes, txns with
 * several writes in one revision, leased keys and a revoked lease, empty and large values, a
 * compaction and writes after it) runs on etcd and on the system under test, and
 * `etcdctl endpoint hashkv` must give the same hash, revision and compact revision at every
 * point, now and at earlier revisions. They agree only if tsetcd hashes the same bytes etcd's
 * HashKV reads from bbolt: each stored revision key and its mvccpb.KeyValue.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EtcdGrpc } from '../support/etcd-grpc.js';
import { etcdctlOk, runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();

/** Lease ids are chosen by the test, so that leased keys store the same bytes on both. */
const leaseKeptId = 0x1234n;
const leaseRevokedId = 0x5678n;
const leaseTtlSeconds = 600;

/** One hashkv reading: where it was taken and what etcdctl printed, normalised to the fields compared. */
interface Reading {
  readonly at: string;
  readonly result: string;
}

/** `endpoint hashkv` as "hash H, revision R, compact revision C", or the error etcdctl printed. */
async function hashKv(member: Member, revision?: number): Promise<string> {
  const args = ['endpoint', 'hashkv', '-w', 'json', ...(revision === undefined ? [] : [`--rev=${revision}`])];
  const result = await runEtcdctl(member.clientUrl, args);
  if (result.code !== 0) return `exit ${result.code}: ${result.stderr.replace(/^.*?(etcdserver: [^"\n]*).*$/s, '$1')}`;
  const [entry] = JSON.parse(result.stdout) as Array<{
    HashKV: { header: { revision?: number }; hash?: number; compact_revision?: number };
  }>;
  const answer = entry!.HashKV;
  return `hash ${answer.hash ?? 0}, revision ${answer.header.revision ?? 0}, compact revision ${answer.compact_revision ?? 0}`;
}

async function grantLease(grpc: EtcdGrpc, id: bigint): Promise<void> {
  const answer = await grpc.unary('etcdserverpb.Lease/LeaseGrant', { ID: String(id), TTL: String(leaseTtlSeconds) });
  assert.equal(answer.code, 0, `LeaseGrant ${id}: ${answer.message}`);
}

/** Runs the history on `member`, reading hashkv along the way. */
async function history(member: Member): Promise<Reading[]> {
  const readings: Reading[] = [];
  const read = async (at: string, revision?: number) => readings.push({ at, result: await hashKv(member, revision) });
  const grpc = new EtcdGrpc(member.clientUrl);
  try {
    await read('empty store');
    await etcdctlOk(member, ['put', 'a', '1']);
    await etcdctlOk(member, ['put', 'b', '2']);
    await etcdctlOk(member, ['put', 'c', '3']);
    await etcdctlOk(member, ['put', 'a', '11']);
    await etcdctlOk(member, ['put', 'empty', '']);
    await etcdctlOk(member, ['put', 'large', 'x'.repeat(5000)]);
    await etcdctlOk(member, ['del', 'b']);
    await read('after puts, an overwrite and a delete');
    await grantLease(grpc, leaseKeptId);
    await grantLease(grpc, leaseRevokedId);
    await etcdctlOk(member, ['put', 'l1', 'v', `--lease=${leaseKeptId.toString(16)}`]);
    await etcdctlOk(member, ['put', 'l2', 'v', `--lease=${leaseKeptId.toString(16)}`]);
    await etcdctlOk(member, ['put', 'l3', 'v', `--lease=${leaseRevokedId.toString(16)}`]);
    await etcdctlOk(member, ['put', 'l4', 'v', `--lease=${leaseRevokedId.toString(16)}`]);
    await etcdctlOk(member, ['lease', 'revoke', leaseRevokedId.toString(16)]);
    await read('after leased puts and a revoke');
    await etcdctlOk(member, ['txn'], 'value("a") = "11"\n\nput t1 x\nput t2 y\ndel c\n\nput never z\n\n');
    await etcdctlOk(member, ['txn'], 'value("a") = "nope"\n\nput never z\n\nput t3 w\nput a 12\n\n');
    await etcdctlOk(member, ['put', 'u/1', '1']);
    await etcdctlOk(member, ['put', 'u/2', '2']);
    await etcdctlOk(member, ['del', 'u/', '--prefix']);
    await read('after txns and a range delete');
    for (const revision of [1, 2, 5, 9, 13, 16]) await read(`at revision ${revision}`, revision);
    await etcdctlOk(member, ['compaction', '9', '--physical']);
    await read('after compaction at 9');
    for (const revision of [9, 10, 14]) await read(`after compaction at 9, at revision ${revision}`, revision);
    await etcdctlOk(member, ['put', 'a', '13']);
    await etcdctlOk(member, ['put', 'c', 'again']);
    await etcdctlOk(member, ['del', 'l1']);
    await read('after writes following the compaction');
    await etcdctlOk(member, ['compaction', '20', '--physical']);
    await read('after compaction at 20');
  } finally {
    grpc.close();
  }
  return readings;
}

async function historyOn(command: MemberCommand): Promise<Reading[]> {
  const member = await Member.start({ command });
  try {
    return await history(member);
  } finally {
    await member.destroy();
  }
}

test(
  `endpoint hashkv gives etcd's hash, revision and compact revision on ${sut.command?.label ?? 'tsetcd'} for the same history`,
  sut.skipReason === undefined ? {} : { skip: sut.skipReason },
  async (t) => {
    const expected = await historyOn(etcdCommand());
    const actual = await historyOn(sut.command as MemberCommand);
    for (const reading of expected) t.diagnostic(`etcd ${reading.at}: ${reading.result}`);
    assert.ok(
      expected.some((reading) => /compact revision 9/.test(reading.result)),
      `the history should include a compaction: ${JSON.stringify(expected)}`,
    );
    assert.deepEqual(actual, expected);
  },
);
