/** The script language and normaliser the differential test depends on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gateSkipReason, parseScript, splitWords, substitute } from './script.js';
import { lineDiff, normalise } from './runner.js';

test('a script yields its flags, its commands and heredoc bodies with line numbers', () => {
  const script = parseScript(
    '# comment\n@flags --max-txn-ops 4\n\nput a 1\ntxn <<END\nvalue("a") = "1"\n\nget a\n\n\nEND\nget a\n',
  );
  assert.deepEqual(script.flags, ['--max-txn-ops', '4']);
  assert.deepEqual(
    script.steps.map((s) => [s.line, s.text]),
    [
      [4, 'put a 1'],
      [5, 'txn'],
      [12, 'get a'],
    ],
  );
  assert.equal(script.steps[1]?.stdin, 'value("a") = "1"\n\nget a\n\n\n');
});

test('an unclosed heredoc is reported with its line', () => {
  assert.throws(() => parseScript('txn <<END\nput a 1\n'), /line 1: heredoc END is never closed/);
});

test('words split like a shell with single and double quotes, keeping empty strings', () => {
  assert.deepEqual(splitWords(`put "" 'a b' "say \\"hi\\"" plain`), ['put', '', 'a b', 'say "hi"', 'plain']);
});

test('variables and repetitions are substituted, and unknown variables are refused', () => {
  assert.equal(substitute('put k --lease=$LEASE1 {{x*3}}', new Map([['LEASE1', 'abc']])), 'put k --lease=abc xxx');
  assert.throws(() => substitute('$LEASE2', new Map()), /\$LEASE2 is not defined/);
});

test('normalising hides ids, terms and lease ids in hex and decimal but keeps revisions', () => {
  const text =
    '{"header":{"cluster_id":123,"member_id":456,"revision":7,"raft_term":2},"lease":255} lease 00000000000000ff granted';
  assert.equal(
    normalise(text, ['00000000000000ff']),
    '{"header":{"cluster_id":<cluster_id>,"member_id":<member_id>,"revision":7,"raft_term":<raft_term>},"lease":<lease1>} lease <lease1> granted',
  );
});

test('the line diff marks removed and added lines around common ones', () => {
  assert.equal(lineDiff('a\nb\nc', 'a\nx\nc'), '  a\n- b\n+ x\n  c');
});

test('background commands are named with &, and @sleep and @stop stay steps of their own', () => {
  const script = parseScript('&w1 watch a --rev 2\nput a 1\n@sleep 100\n@stop w1 3\n');
  assert.deepEqual(
    script.steps.map((s) => [s.line, s.text, s.background]),
    [
      [1, 'watch a --rev 2', 'w1'],
      [2, 'put a 1', undefined],
      [3, '@sleep 100', undefined],
      [4, '@stop w1 3', undefined],
    ],
  );
});

test('a gated script runs only when its environment variable is 1', () => {
  const script = parseScript('@gate TSETCD_AUTH_TESTS\nget a\n');
  assert.deepEqual(script.gates, ['TSETCD_AUTH_TESTS']);
  assert.equal(gateSkipReason(script, { TSETCD_AUTH_TESTS: '1' }), undefined);
  assert.equal(gateSkipReason(script, {}), 'set TSETCD_AUTH_TESTS=1 to run this script');
  assert.equal(gateSkipReason(parseScript('get a\n'), {}), undefined);
});
