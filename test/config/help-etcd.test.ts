/**
 * `tsetcd --help` shows every etcd 3.4 flag as `etcd --help` shows it: the flag's line with its
 * default, then its text, byte for byte. The commands above the flags are tsetcd's own, and flags
 * only tsetcd has (--inspect-url, ...) are listed too; those are not compared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { etcdBinaryPath, etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

/** --help answers at once; a line that started a member would be killed here. */
const answerMsMax = 15_000;

/** Flags whose help says what is true of etcd but not of tsetcd, and why. */
const differentOnPurpose = new Map([
  ['cipher-suites', "an empty list is filled by Node.js's TLS, not Go's"],
  ['logger', "etcd 3.4 defaults to capnslog; tsetcd logs zap's JSON only"],
]);

/** etcd 3.4 flags tsetcd does not take yet. */
const notTaken = ['experimental-peer-skip-client-san-verification'];

/** Each flag's block of a help text: its `  --name default` line and the indented lines under it. */
function flagBlocks(help: string): Map<string, string> {
  const blocks = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of help.split('\n')) {
    const flag = /^ {2}--([a-z0-9-]+)( |$)/.exec(line);
    if (flag !== null) blocks.set(flag[1] as string, (current = [line]));
    else if (current !== undefined && line.startsWith('    ')) current.push(line);
    else current = undefined;
  }
  return new Map([...blocks].map(([name, lines]) => [name, lines.join('\n')]));
}

function help(command: MemberCommand): string {
  const result = spawnSync(command.command, [...command.args, '--help'], { encoding: 'utf8', timeout: answerMsMax });
  assert.equal(result.status, 0, `${command.label} --help: ${result.stderr}`);
  return result.stdout;
}

const sut = sutCommand();
const skip = !existsSync(etcdBinaryPath) ? `${etcdBinaryPath} is not installed` : sut.skipReason;

test(
  'every etcd flag tsetcd takes is shown as etcd 3.4 shows it, default and text',
  skip === undefined ? {} : { skip },
  () => {
    const etcd = flagBlocks(help(etcdCommand()));
    const ours = flagBlocks(help(sut.command!));
    assert.ok(etcd.size > 50, `expected etcd's help to list its flags, found ${etcd.size}`);
    const missing: string[] = [];
    const unlike: string[] = [];
    for (const [name, block] of etcd) {
      const shown = ours.get(name);
      if (shown === undefined) missing.push(name);
      else if (shown !== block && !differentOnPurpose.has(name)) unlike.push(`etcd:\n${block}\ntsetcd:\n${shown}`);
    }
    assert.deepEqual(unlike, [], 'flags shown unlike etcd');
    assert.deepEqual(missing, notTaken, 'etcd flags missing from tsetcd --help');
  },
);
