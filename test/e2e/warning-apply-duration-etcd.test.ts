/**
 * --experimental-warning-apply-duration against real etcd 3.4 (--logger zap): with a bound of 1µs
 * every apply is slower than the bound, and each member says so in etcd's words ("apply request
 * took too long", with the bound as expected-duration) and counts it in
 * etcd_server_slow_apply_total, at least once for each put.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const skip = sut.skipReason === undefined ? {} : { skip: sut.skipReason };
const puts = 3;

interface SlowApplies {
  /** The expected-duration of each "apply request took too long" line. */
  logged: string[];
  /** etcd_server_slow_apply_total after the puts. */
  counted: number;
}

async function slowApplies(command: MemberCommand): Promise<SlowApplies> {
  const member = await Member.start({
    command,
    extraFlags: ['--logger', 'zap', '--experimental-warning-apply-duration', '1us'],
  });
  try {
    for (let put = 0; put < puts; put++) {
      const result = await runEtcdctl(member.clientUrl, ['put', `k${put}`, 'v']);
      assert.equal(result.code, 0, result.stderr);
    }
    const metrics = await (await fetch(`${member.clientUrl}/metrics`)).text();
    const counted = /^etcd_server_slow_apply_total (\d+)$/m.exec(metrics)?.[1];
    assert.ok(counted !== undefined, `${command.label} exposes etcd_server_slow_apply_total`);
    const logged = readFileSync(member.logPath, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{') && line.includes('"msg":"apply request took too long"'))
      .map((line) => String((JSON.parse(line) as Record<string, unknown>)['expected-duration']));
    return { logged, counted: Number(counted) };
  } finally {
    await member.destroy();
  }
}

test(
  'applies slower than --experimental-warning-apply-duration are logged and counted, as etcd does',
  skip,
  async () => {
    const [expected, actual] = await Promise.all([
      slowApplies(etcdCommand()),
      slowApplies(sut.command as MemberCommand),
    ]);
    for (const [label, seen] of [
      ['etcd 3.4.23', expected],
      ['tsetcd', actual],
    ] as const) {
      assert.ok(seen.logged.length >= puts, `${label} logs each slow put: ${JSON.stringify(seen)}`);
      assert.deepEqual(new Set(seen.logged), new Set(['1µs']), `${label} names the bound as etcd does`);
      assert.ok(seen.counted >= puts, `${label} counts each slow put: ${JSON.stringify(seen)}`);
    }
  },
);
