/**
 * Bad command lines against real etcd and tsetcd: the same exit status and the same first line on
 * stderr. Every line here is refused before a member starts, so nothing listens.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdBinaryPath, etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

/** A refusal takes well under this; a line that started a member would be killed here. */
const refusalMsMax = 15_000;

const badLines: string[][] = [
  ['--foo'],
  ['--snapshot-count', 'abc'],
  ['--max-concurrent-streams', '-1'],
  ['--max-concurrent-streams', '4294967296'],
  ['--max-concurrent-streams', '1__0'],
  ['--cors', 'http://allowed.example'],
  ['--discovery-fallback', 'foo'],
  ['--initial-cluster-state', 'foo'],
  ['--proxy', 'foo'],
];

function refusal(command: MemberCommand, args: string[], cwd: string): { status: number | null; firstLine: string } {
  const result = spawnSync(command.command, [...command.args, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: refusalMsMax,
  });
  return { status: result.status, firstLine: (result.stderr ?? '').split('\n')[0] ?? '' };
}

const sut = sutCommand();
const skip = !existsSync(etcdBinaryPath) ? `${etcdBinaryPath} is not installed` : sut.skipReason;
test('bad flags are refused as etcd refuses them', skip === undefined ? {} : { skip }, () => {
  const cwd = mkdtempSync(join(tmpdir(), 'tsetcd-flag-errors-'));
  try {
    for (const args of badLines) {
      const etcd = refusal(etcdCommand(), args, cwd);
      const ours = refusal(sut.command!, args, cwd);
      assert.equal(etcd.status, 2, `etcd ${args.join(' ')}: ${etcd.firstLine}`);
      assert.deepEqual(ours, etcd, `for ${args.join(' ')}`);
    }
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

/** Settings etcd's configuration check refuses (exit 1), with the reason as etcd words it. */
const refusedSettings: string[][] = [
  ['--logger', 'foo'],
  ['--auto-compaction-mode', 'daily', '--auto-compaction-retention', '1'],
  ['--log-output', 'stderr', '--log-outputs', 'stderr'],
  ['--log-output', 'stderr,stdout', '--log-outputs', 'stderr,stdout'],
];

/** The reason in etcd's "error verifying flags, <reason>. See 'etcd --help'." or in tsetcd's fatal JSON line. */
function refusalReason(stderr: string): string {
  const etcd = /error verifying flags, (.*)\. See 'etcd --help'\./.exec(stderr);
  if (etcd !== null) return etcd[1] as string;
  const line = stderr.split('\n').find((text) => text.startsWith('{"level":"fatal"'));
  return line === undefined ? stderr : ((JSON.parse(line) as { error: string }).error ?? line);
}

test(
  'settings etcd refuses after parsing are refused alike, with exit status 1 and its reason',
  skip === undefined ? {} : { skip },
  () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tsetcd-flag-errors-'));
    try {
      for (const args of refusedSettings) {
        const run = (command: MemberCommand) => {
          const result = spawnSync(command.command, [...command.args, ...args], {
            cwd,
            encoding: 'utf8',
            timeout: refusalMsMax,
          });
          return { status: result.status, reason: refusalReason(result.stderr ?? '') };
        };
        const etcd = run(etcdCommand());
        assert.equal(etcd.status, 1, `etcd ${args.join(' ')}: ${etcd.reason}`);
        assert.deepEqual(run(sut.command!), etcd, `for ${args.join(' ')}`);
      }
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  },
);
