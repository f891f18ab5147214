/**
 * --auto-compaction-mode periodic with a short --auto-compaction-retention, on real etcd 3.4 and on
 * tsetcd: writes go in, and the member compacts on its own, which etcdctl sees as reads at old
 * revisions refused with "required revision has been compacted" while the newest one still reads.
 * Without the flag nothing is compacted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const skip = sut.skipReason === undefined ? {} : { skip: sut.skipReason };
/** etcd records a revision every retention/10 and compacts once a whole retention has passed. */
const retention = '2s';
/** How long the member gets to compact on its own before the test gives up (several retentions). */
const compactionWaitMsMax = 20_000;
const probeIntervalMs = 250;
const compactedText = 'required revision has been compacted';

/** Reads key `a` at `revision`: 'ok', 'compacted' or the error text. */
async function readAt(member: Member, revision: number): Promise<string> {
  const result = await runEtcdctl(member.clientUrl, ['get', 'a', `--rev=${revision}`]);
  if (result.code === 0) return 'ok';
  return result.stderr.includes(compactedText) ? 'compacted' : result.stderr.trim();
}

/** Writes revisions 2..6, then waits (bounded) for the member to compact past revision 1 by itself. */
async function autoCompacts(command: MemberCommand, flags: string[], waitMs: number): Promise<string[]> {
  const member = await Member.start({ command, extraFlags: flags });
  try {
    for (let value = 1; value <= 5; value++) {
      const put = await runEtcdctl(member.clientUrl, ['put', 'a', String(value)]);
      assert.equal(put.code, 0, put.stderr);
    }
    const deadline = Date.now() + waitMs;
    while ((await readAt(member, 1)) !== 'compacted' && Date.now() < deadline) await sleep(probeIntervalMs);
    return [await readAt(member, 1), await readAt(member, 6)];
  } finally {
    await member.destroy();
  }
}

test('periodic auto compaction with a short retention compacts on its own, as etcd does', skip, async () => {
  const flags = ['--auto-compaction-mode', 'periodic', '--auto-compaction-retention', retention];
  // etcd's member and tsetcd's wait out the retention side by side.
  const [expected, actual] = await Promise.all([
    autoCompacts(etcdCommand(), flags, compactionWaitMsMax),
    autoCompacts(sut.command as MemberCommand, flags, compactionWaitMsMax),
  ]);
  assert.deepEqual(expected, ['compacted', 'ok'], 'etcd compacted on its own');
  assert.deepEqual(actual, expected);
});

test('without --auto-compaction-retention nothing is compacted', skip, async () => {
  // Two retentions' time: long enough that the periodic compactor above would have compacted.
  assert.deepEqual(await autoCompacts(sut.command as MemberCommand, [], 4_000), ['ok', 'ok']);
});
