/** The script language and normaliser the differential test depends on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gateSkipReason, parseScript, splitWords, substitute } from './script.js';
import { lineDiff, normalise, remainingTtlBounds } from './runner.js';

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

test("a remaining TTL is etcd's whole seconds left: granted - 1 at once, never less than what elapsed leaves", () => {
  assert.deepEqual(remainingTtlBounds(600, 0), { low: 600, high: 599 }, 'nothing is possible before any time passed');
  assert.deepEqual(remainingTtlBounds(600, 300), { low: 599, high: 599 });
  assert.deepEqual(remainingTtlBounds(3, 1200), { low: 1, high: 2 });
  assert.deepEqual(remainingTtlBounds(2, 2500), { low: -1, high: 1 });
});

test('a remaining TTL is hidden only when the check finds it plausible, in the simple and JSON forms', () => {
  const seen: Array<[string, number, number]> = [];
  const plausible = (id: string, granted: number, remaining: number): boolean => {
    seen.push([id, granted, remaining]);
    return remaining === granted - 1;
  };
  const text = 'lease 00000000000000ff granted with TTL(3s), remaining(2s), attached keys([a])';
  assert.equal(
    normalise(text, ['00000000000000ff'], plausible),
    'lease <lease1> granted with TTL(3s), remaining(<remaining>s), attached keys([a])',
  );
  assert.equal(
    normalise('lease 00000000000000ff granted with TTL(3s), remaining(7s)', ['00000000000000ff'], plausible),
    'lease <lease1> granted with TTL(3s), remaining(7s)',
    "a TTL etcd could not have printed stays as it is, so it differs from etcd's",
  );
  assert.equal(
    normalise('{"id":255,"ttl":599,"granted-ttl":600,"keys":null}', ['00000000000000ff'], plausible),
    '{"id":<lease1>,"ttl":<remaining>,"granted-ttl":600,"keys":null}',
  );
  assert.equal(
    normalise('{"id":255,"ttl":595,"granted-ttl":600}', ['ff'], plausible),
    '{"id":<lease1>,"ttl":595,"granted-ttl":600}',
  );
  assert.deepEqual(seen, [
    ['00000000000000ff', 3, 2],
    ['00000000000000ff', 3, 7],
    ['ff', 600, 599],
    ['ff', 600, 595],
  ]);
  assert.equal(
    normalise(text, ['00000000000000ff']),
    'lease <lease1> granted with TTL(3s), remaining(2s), attached keys([a])',
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
