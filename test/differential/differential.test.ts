/**
 * Differential conformance: every script in scripts/ runs against a fresh real etcd and a fresh
 * system under test started with the same flags; each command's exit code, stdout and stderr
 * must match after normalising ids. TSETCD_CMD=/usr/bin/etcd checks the harness itself. A script
 * with `@gate NAME` runs only when NAME=1.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { packageRoot } from '../../src/lib/paths.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';
import { gateSkipReason, parseScript, type Script } from './script.js';
import { describeOutcome, lineDiff, runScript, type StepOutcome } from './runner.js';

/** Differences shown in one failure message; the rest are counted. */
const shownDifferencesMax = 8;
/** Diff lines longer than this are cut so a 5 KB value does not flood the report. */
const diffLineCharsMax = 400;
/** Scripts running at once, each with its own pair of members. */
const scriptsAtOnce = 2;

const scriptsDir = join(packageRoot(), 'test', 'differential', 'scripts');
const scriptNames = readdirSync(scriptsDir)
  .filter((name) => name.endsWith('.txt'))
  .sort();
const sut = sutCommand();

test('the differential scripts directory holds at least one script', () => {
  assert.ok(scriptNames.length > 0, `expected *.txt scripts in ${scriptsDir}`);
});

// Each script starts its own etcd and tsetcd on their own ports and data dirs, so scripts share
// nothing and run scriptsAtOnce at a time: a script spends most of its time waiting for etcdctl.
describe('the differential scripts', { concurrency: scriptsAtOnce }, () => {
  for (const name of scriptNames) {
    const script = parseScript(readFileSync(join(scriptsDir, name), 'utf8'));
    const skipReason = sut.skipReason ?? gateSkipReason(script);
    const options = skipReason === undefined ? {} : { skip: skipReason };
    test(
      `script ${name} prints the same through etcdctl on etcd and on ${sut.command?.label ?? 'tsetcd'}`,
      options,
      async () => {
        const sutSide = sut.command as MemberCommand;
        const [expected, actual] = await Promise.all([runOn(etcdCommand(), script), runOn(sutSide, script)]);
        const report = differences(expected, actual, sutSide.label);
        assert.ok(report === '', `${name}: ${sutSide.label} differs from etcd\n${report}`);
      },
    );
  }
});

async function runOn(command: MemberCommand, script: Script): Promise<StepOutcome[]> {
  const member = await Member.start({ command, extraFlags: script.flags });
  try {
    return await runScript(member.clientUrl, script);
  } finally {
    await member.destroy();
  }
}

/** A readable report of every step whose outcome differs; '' when all match. */
function differences(expected: readonly StepOutcome[], actual: readonly StepOutcome[], label: string): string {
  const parts: string[] = [];
  let count = 0;
  expected.forEach((want, index) => {
    const got = actual[index];
    const wantText = describeOutcome(want);
    const gotText = got === undefined ? '(not run)' : describeOutcome(got);
    if (wantText === gotText) return;
    count += 1;
    if (count > shownDifferencesMax) return;
    const diff = lineDiff(wantText, gotText)
      .split('\n')
      .map((line) =>
        line.length > diffLineCharsMax ? `${line.slice(0, diffLineCharsMax)}...(${line.length} chars)` : line,
      )
      .join('\n');
    const stdin = want.step.stdin === undefined ? '' : `\n  stdin:\n${want.step.stdin.replace(/^/gm, '    ')}`;
    parts.push(`line ${want.step.line}: etcdctl ${want.step.text}${stdin}\n(- etcd, + ${label})\n${diff}`);
  });
  if (count > shownDifferencesMax) parts.push(`... and ${count - shownDifferencesMax} more differing commands`);
  return count === 0 ? '' : `${count} of ${expected.length} commands differ\n\n${parts.join('\n\n')}`;
}
