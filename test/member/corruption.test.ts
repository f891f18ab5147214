/**
 * Corrupt files at start, on a single member of real etcd (the reference) and of tsetcd: a
 * flipped byte inside a WAL record that later records follow refuses the start with a crc
 * mismatch, and a backend file whose meta pages are damaged with etcd's "invalid database" (LMDB
 * itself would crash the process on a damaged first meta page, so tsetcd checks them before it
 * opens the file). Neither bbolt nor LMDB checksums data pages, so a flipped byte inside a value
 * is found at start by neither; the cluster-level hash check below is what finds a diverged store.
 *
 * Then etcd's corruption checks on a 3-member tsetcd cluster: one follower's backend is altered under
 * it (LMDB lets another process write the same environment), so its HashKV differs at the same
 * revision. The leader's periodic check (--experimental-corrupt-check-time) then raises CORRUPT for
 * member 0, as etcd's does, and the cluster refuses writes with etcd's "etcdserver: corrupt cluster"
 * while reads pass; restarted with --experimental-initial-corrupt-check, the altered member refuses
 * to start with etcd's "found data inconsistency with peers".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import { Cluster, pollUntil } from '../support/cluster.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const skip = sut.skipReason === undefined ? {} : { skip: sut.skipReason };
/** Long enough for the leader's check to run several times. */
const alarmWaitMs = 15_000;

/** How long a start that should fail may run. */
const failedStartWaitMs = 20_000;
/** Puts before the corrupted one and after it: the damaged record is never the WAL's last. */
const putsAround = 10;

/**
 * Where each backend keeps its magic number in its meta pages (pages 0 and 1 of 4 KiB): bbolt's
 * right after a 16-byte page header, LMDB's (lmdb-js's build) after a 24-byte one.
 */
const startTargets: Array<{
  label: string;
  command: MemberCommand;
  backendFile: string;
  magicOffset: number;
  skip?: string;
}> = [
  { label: 'etcd', command: etcdCommand(), backendFile: join('member', 'snap', 'db'), magicOffset: 16 },
  {
    label: 'tsetcd',
    command: sut.command as MemberCommand,
    backendFile: join('member', 'snap', 'db', 'data.mdb'),
    magicOffset: 24,
    ...(sut.skipReason === undefined ? {} : { skip: sut.skipReason }),
  },
];

/** XORs the byte at `offset` of `path` with 0xff. */
function flipByte(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, offset);
    byte[0] = (byte[0] as number) ^ 0xff;
    writeSync(fd, byte, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

/** The WAL segment of `dataDir` holding `marker`, and where the marker starts in it. */
function findInWal(dataDir: string, marker: string): { path: string; offset: number } {
  const walDir = join(dataDir, 'member', 'wal');
  for (const name of readdirSync(walDir).filter((file) => file.endsWith('.wal'))) {
    const offset = readFileSync(join(walDir, name)).indexOf(marker);
    if (offset >= 0) return { path: join(walDir, name), offset };
  }
  throw new Error(`no WAL segment in ${walDir} holds ${marker}`);
}

/** A stopped member whose data holds putsAround puts, one marked, then putsAround more. */
async function memberWithPuts(command: MemberCommand, marker: string): Promise<Member> {
  const member = await Member.start({ command });
  for (let seq = 0; seq < 2 * putsAround + 1; seq++) {
    const value = seq === putsAround ? marker : `value-${seq}`;
    const put = await runEtcdctl(member.clientUrl, ['put', `k${seq}`, value]);
    assert.equal(put.code, 0, put.stderr);
  }
  await member.stop();
  return member;
}

for (const target of startTargets) {
  const options = target.skip === undefined ? {} : { skip: target.skip };
  test(
    `${target.label} refuses to start on a WAL record with a flipped byte, saying the crc does not match`,
    options,
    async () => {
      const marker = 'corrupt-me-in-the-wal';
      const member = await memberWithPuts(target.command, marker);
      try {
        const { path, offset } = findInWal(member.dataDir, marker);
        flipByte(path, offset + 3);
        const { status, stderr } = member.runUntilExit(failedStartWaitMs);
        assert.ok(
          status !== null && status !== 0,
          `expected a failed start, saw status ${status}:\n${stderr.slice(-2000)}`,
        );
        assert.match(stderr, /crc mismatch/);
        if (target.label === 'tsetcd')
          assert.ok(stderr.includes(path), `the error names ${path}:\n${stderr.slice(-2000)}`);
      } finally {
        await member.destroy();
      }
    },
  );

  test(`${target.label} refuses to start on a backend file whose meta pages are damaged`, options, async () => {
    const member = await memberWithPuts(target.command, 'backend-value');
    try {
      // Damaging one meta page leaves the other to open from, so both are damaged.
      const backend = join(member.dataDir, target.backendFile);
      for (const page of [0, 1]) flipByte(backend, page * 4096 + target.magicOffset);
      const { status, stderr } = member.runUntilExit(failedStartWaitMs);
      assert.ok(
        status !== null && status !== 0,
        `expected a failed start, saw status ${status}:\n${stderr.slice(-2000)}`,
      );
      assert.match(stderr, /invalid database/);
    } finally {
      await member.destroy();
    }
  });
}

/** Changes the last byte of every stored value of `key` in the member's backend (the value's last byte). */
async function alterBackend(dataDir: string): Promise<number> {
  const root = open<Uint8Array, Uint8Array>({
    path: join(dataDir, 'member', 'snap', 'db'),
    encoding: 'binary',
    keyEncoding: 'binary',
  });
  const keys = root.openDB<Uint8Array, Uint8Array>({ name: 'key', encoding: 'binary', keyEncoding: 'binary' });
  let altered = 0;
  for (const { key, value } of keys.getRange({})) {
    const bytes = Uint8Array.from(value);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    await keys.put(key, bytes);
    altered++;
  }
  await root.close();
  return altered;
}

test(
  'a follower whose store differs raises CORRUPT, which refuses writes, and fails its initial check',
  skip,
  async () => {
    const cluster = await Cluster.start({
      command: sut.command as MemberCommand,
      extraFlags: ['--experimental-corrupt-check-time', '1s', '--experimental-initial-corrupt-check'],
    });
    try {
      const leader = await cluster.leader();
      const follower = cluster.followers(leader)[0];
      assert.ok(follower !== undefined);
      for (const value of ['1', '2', '3']) {
        const put = await runEtcdctl(leader.clientUrl, ['put', 'k', value]);
        assert.equal(put.code, 0, put.stderr);
      }
      await pollUntil('the follower has applied every put', alarmWaitMs, async () => {
        const got = await runEtcdctl(follower.clientUrl, ['get', 'k', '--consistency=s', '--print-value-only']);
        return got.stdout.trim() === '3' ? '' : `follower has ${got.stdout.trim()}`;
      });
      const listed = await runEtcdctl(leader.clientUrl, ['alarm', 'list']);
      assert.equal(listed.stdout, '', 'no alarm before the store was altered');
      assert.ok((await alterBackend(follower.dataDir)) > 0);
      await pollUntil('the leader raises CORRUPT', alarmWaitMs, async () => {
        const alarms = await runEtcdctl(leader.clientUrl, ['alarm', 'list']);
        return alarms.stdout === 'alarm:CORRUPT \n' ? '' : `alarm list printed ${JSON.stringify(alarms.stdout)}`;
      });
      const put = await runEtcdctl(leader.clientUrl, ['put', 'k', '4']);
      assert.equal(put.code, 1);
      assert.match(put.stderr, /^Error: etcdserver: corrupt cluster$/m);
      const get = await runEtcdctl(leader.clientUrl, ['get', 'k', '--print-value-only']);
      assert.equal(get.stdout.trim(), '3');
      await follower.stop();
      await assert.rejects(follower.restart(), /exited before becoming healthy/);
      assert.match(follower.logTail(), /found data inconsistency with peers/);
    } finally {
      await cluster.destroy();
    }
  },
);
