/**
 * --bcrypt-cost outside bcrypt's bounds (4 to 31) against real etcd 3.4 (with --logger zap): both
 * start, warn once in the same words with the same fields, and hash at the default cost instead.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const skip = sut.skipReason === undefined ? {} : { skip: sut.skipReason };
const fallbackMessage = 'use default bcrypt cost instead of the invalid given cost';

/** The fields of the member's fallback warnings, without time and caller. */
async function fallbackWarnings(command: MemberCommand, cost: string): Promise<string[]> {
  const member = await Member.start({ command, extraFlags: ['--logger', 'zap', '--bcrypt-cost', cost] });
  try {
    await member.stop();
    return readFileSync(member.logPath, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{"level":') && line.includes(fallbackMessage))
      .map((line) => {
        const { level, msg, ...fields } = JSON.parse(line) as Record<string, unknown>;
        const costs = Object.entries(fields).filter(([name]) => name.endsWith('-cost'));
        return JSON.stringify({ level, msg, ...Object.fromEntries(costs) });
      });
  } finally {
    await member.destroy();
  }
}

test('a --bcrypt-cost bcrypt refuses falls back to the default with the warning etcd logs', skip, async () => {
  for (const cost of ['3', '32']) {
    const etcd = await fallbackWarnings(etcdCommand(), cost);
    assert.equal(etcd.length, 1, `etcd --bcrypt-cost ${cost}: ${etcd.join('\n')}`);
    assert.deepEqual(await fallbackWarnings(sut.command!, cost), etcd, `--bcrypt-cost ${cost}`);
  }
  assert.deepEqual(await fallbackWarnings(sut.command!, '4'), [], 'the lowest cost bcrypt takes is kept');
});
