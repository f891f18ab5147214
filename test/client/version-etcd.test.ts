/**
 * The version tsetcd reports agrees with the etcd release it follows: one member of real etcd 3.4
 * and one of tsetcd answer GET /version, GET /health (healthy, then under a NOSPACE alarm, with and
 * without ?exclude=NOSPACE), /livez and `endpoint status -w json` alike, byte for byte where
 * etcd's answer is fixed, and `tsetcd --version` names the same API version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

/** Big enough for an empty bbolt or LMDB file and small puts, too small for the big value. */
const quotaBytes = 70_000;
const bigValue = 'x'.repeat(60_000);
const sut = sutCommand();
const skip = sut.skipReason === undefined ? {} : { skip: sut.skipReason };

async function httpAnswer(url: string): Promise<string> {
  const response = await fetch(url);
  const type = response.headers.get('content-type');
  const sniff = response.headers.get('x-content-type-options');
  return `${response.status} ${type} ${sniff ?? '-'} ${JSON.stringify(await response.text())}`;
}

/** What a member answers about its version and health, before and under a NOSPACE alarm. */
async function versionAnswers(command: MemberCommand): Promise<Record<string, string>> {
  const member = await Member.start({ command, extraFlags: ['--quota-backend-bytes', String(quotaBytes)] });
  try {
    const status = async () => {
      const result = await runEtcdctl(member.clientUrl, ['endpoint', 'status', '-w', 'json']);
      return /"version":"[^"]*"/.exec(result.stdout)?.[0] ?? `no version in ${result.stdout}${result.stderr}`;
    };
    const answers: Record<string, string> = {
      version: await httpAnswer(`${member.clientUrl}/version`),
      health: await httpAnswer(`${member.clientUrl}/health`),
      livez: await httpAnswer(`${member.clientUrl}/livez`),
      readyz: await httpAnswer(`${member.clientUrl}/readyz`),
      status: await status(),
    };
    const put = await runEtcdctl(member.clientUrl, ['put', 'big', bigValue]);
    answers.put = put.stderr.trim().split('\n').at(-1) ?? '';
    member.healthQuery = '?exclude=NOSPACE';
    answers.nospaceHealth = await httpAnswer(`${member.clientUrl}/health`);
    answers.nospaceHealthExcluded = await httpAnswer(`${member.clientUrl}/health?exclude=NOSPACE`);
    return answers;
  } finally {
    await member.destroy();
  }
}

test('/version, /health and endpoint status report etcd 3.4 as etcd 3.4.23 does', skip, async () => {
  const expected = await versionAnswers(etcdCommand());
  const actual = await versionAnswers(sut.command as MemberCommand);
  assert.deepEqual(actual, expected);
  // Guard against both sides agreeing on nothing: the alarm was raised and the versions are 3.4's.
  assert.match(expected.put ?? '', /database space exceeded/);
  assert.match(expected.version ?? '', /\{\\"etcdserver\\":\\"3\.4\.23\\",\\"etcdcluster\\":\\"3\.4\.0\\"\}/);
  assert.match(expected.nospaceHealth ?? '', /^503 /);
});

test('tsetcd --version names the etcd API version it serves', skip, () => {
  const { command, args } = sut.command as MemberCommand;
  const result = spawnSync(command, [...args, '--version'], { encoding: 'utf8' });
  const etcd = spawnSync(etcdCommand().command, ['--version'], { encoding: 'utf8' });
  const etcdRelease = /etcd Version: (\d+\.\d+)\./.exec(etcd.stdout)?.[1];
  assert.equal(etcdRelease, '3.4');
  assert.match(result.stdout, new RegExp(`^etcd API Version: ${etcdRelease}$`, 'm'));
});
