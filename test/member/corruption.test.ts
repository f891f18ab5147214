/**
 * etcd's corruption checks on a 3-member tsetcd cluster: one follower's backend is altered under
 * it (LMDB lets another process write the same environment), so its HashKV differs at the same
 * revision. The leader's periodic check (--experimental-corrupt-check-time) then raises CORRUPT for
 * member 0, as etcd's does, and the cluster refuses writes with etcd's "etcdserver: corrupt cluster"
 * while reads pass; restarted with --experimental-initial-corrupt-check, the altered member refuses
 * to start with etcd's "found data inconsistency with peers".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { open } from 'lmdb';
import { Cluster, pollUntil } from '../support/cluster.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const skip = sut.skipReason === undefined ? {} : { skip: sut.skipReason };
/** Long enough for the leader's check to run several times. */
const alarmWaitMs = 15_000;

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
