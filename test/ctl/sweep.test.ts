/**
 * A fixed subset of the generated sweep (sweep-cases.ts; the whole of it runs as a script,
 * sweep.js): every command path etcdctl's help lists, its --help, every output format, and every
 * `sweepStride`-th of the other lines (flags with plausible and bad values, arguments missing
 * and extra, unknown flags, ETCDCTL_* variables), compared three ways as in differential.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readHelpTree } from './etcdctl-help.js';
import { describeDifference, runSweep } from './sweep.js';
import { outputFormats, sweepCases, type SweepCase } from './sweep-cases.js';

/** Of the lines that are not an output format, every sweepStride-th runs here. */
const sweepStride = 24;

/**
 * Commands that add and remove a learner around each line: run in a suite beside other files, the
 * sides now and then saw the learner of another side's line ("member not found" on one side only),
 * so here they take only their --help line; `node dist/test/ctl/sweep.js member` runs them all, and
 * differential.test.ts compares member add, update, promote and remove on their own fixtures.
 */
const changesMembership = new Set(['member add', 'member promote', 'member remove', 'member update']);

/**
 * The fixtures, each command's first line (its --help), every format line, and every
 * sweepStride-th other line, each with its setup cases.
 */
function subset(cases: readonly SweepCase[]): SweepCase[] {
  const formats = new Set<string>(outputFormats.map((format) => `format ${format}`));
  const seen = new Set<string>();
  const chosen = new Set(
    cases
      .filter((testCase) => testCase.setup !== true)
      .filter((testCase) => {
        const first = !seen.has(testCase.command);
        seen.add(testCase.command);
        if (first) return true;
        if (changesMembership.has(testCase.command)) return false;
        return formats.has(testCase.form) || testCase.line % sweepStride === 0;
      })
      .map((testCase) => testCase.line),
  );
  return cases.filter((testCase) => testCase.command === '' || chosen.has(testCase.line));
}

describe('tsetcdctl answers the generated sweep of etcdctl command lines as etcdctl does', () => {
  it('answers every command in every format, and a fixed share of flag and argument forms, alike', async () => {
    const tree = await readHelpTree();
    const cases = subset(sweepCases(tree));
    const lines = cases.filter((testCase) => testCase.setup !== true);
    // Every command path etcdctl lists is in the subset, in each format unless it runs too long to try.
    const covered = new Set(lines.map((testCase) => testCase.command));
    for (const command of tree.commands) assert.ok(covered.has(command.path.join(' ')), command.path.join(' '));
    const differences = await runSweep(cases);
    assert.deepEqual(differences.map(describeDifference), [], `${differences.length} of ${lines.length} lines differ`);
  });
});
