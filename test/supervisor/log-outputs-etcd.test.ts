/**
 * --log-outputs against real etcd 3.4 (with --logger zap): a file path gets the member's JSON log
 * lines appended (and stderr none of them), a file that cannot be opened stops the start with
 * etcd's "open sink" words and exit status 1, and "default" does not mix with other outputs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const skip = sut.skipReason === undefined ? {} : { skip: sut.skipReason };
/** A refusal takes well under this; a line that started a member would be killed here. */
const refusalMsMax = 15_000;

/** The JSON log lines in `text`: how many, and their messages. */
function zapLines(text: string): { lines: number; messages: string[] } {
  const lines = text.split('\n').filter((line) => line.startsWith('{"level":'));
  return { lines: lines.length, messages: lines.map((line) => (JSON.parse(line) as { msg: string }).msg) };
}

async function logsToFile(command: MemberCommand): Promise<{ fileLines: boolean; logLines: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'tsetcd-log-outputs-'));
  const path = join(dir, 'member.log');
  const member = await Member.start({ command, extraFlags: ['--logger', 'zap', '--log-outputs', path] });
  try {
    await member.stop();
    const file = zapLines(readFileSync(path, 'utf8'));
    return { fileLines: file.lines > 5, logLines: zapLines(member.logTail()).lines };
  } finally {
    await member.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

function refusal(command: MemberCommand, args: string[]): { status: number | null; error: string } {
  const cwd = mkdtempSync(join(tmpdir(), 'tsetcd-log-outputs-'));
  try {
    const result = spawnSync(command.command, [...command.args, '--logger', 'zap', ...args], {
      cwd,
      encoding: 'utf8',
      timeout: refusalMsMax,
    });
    const text = (result.stderr ?? '').replaceAll('\\"', '"');
    const error = /(open sink "[^"]*": open [^:]*: [a-z ]+|multi logoutput for "default" is not supported yet)/.exec(
      text,
    );
    return { status: result.status, error: error?.[1] ?? text };
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

test('--log-outputs <file> appends the log lines to that file, as etcd does', skip, async () => {
  const expected = await logsToFile(etcdCommand());
  assert.deepEqual(expected, { fileLines: true, logLines: 0 });
  assert.deepEqual(await logsToFile(sut.command as MemberCommand), expected);
});

test('--log-outputs that cannot be opened, or default mixed with others, is refused as etcd refuses it', skip, () => {
  for (const args of [
    ['--log-outputs', '/nonexistent/dir/member.log'],
    ['--log-outputs', 'default,stdout'],
  ]) {
    const expected = refusal(etcdCommand(), args);
    assert.equal(expected.status, 1, `etcd ${args.join(' ')}: ${expected.error}`);
    assert.deepEqual(refusal(sut.command as MemberCommand, args), expected, args.join(' '));
  }
});
