/** gofail's term language as the failpoint registry reads it (actors/shared/failpoint-terms.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailpointTermError, parseFailpointList, parseFailpointTerms } from '../../actors/shared/failpoint-terms.js';

test('a bare action runs every time, with no probability', () => {
  assert.deepEqual(parseFailpointTerms('panic'), [{ percent: 100, count: Infinity, action: { kind: 'panic' } }]);
  assert.deepEqual(parseFailpointTerms('pause'), [{ percent: 100, count: Infinity, action: { kind: 'pause' } }]);
});

test('counts, percentages and chains read as gofail writes them', () => {
  assert.deepEqual(parseFailpointTerms('50%2*return("EIO")->off'), [
    { percent: 50, count: 2, action: { kind: 'return', value: 'EIO' } },
    { percent: 100, count: Infinity, action: { kind: 'off' } },
  ]);
  assert.deepEqual(parseFailpointTerms('1*return(EIO)'), [
    { percent: 100, count: 1, action: { kind: 'return', value: 'EIO' } },
  ]);
});

test('sleep takes milliseconds or a Go duration', () => {
  assert.deepEqual(parseFailpointTerms('sleep(1500)')[0]?.action, { kind: 'sleep', ms: 1500 });
  assert.deepEqual(parseFailpointTerms('sleep("2s")')[0]?.action, { kind: 'sleep', ms: 2000 });
  assert.deepEqual(parseFailpointTerms('sleep(250ms)')[0]?.action, { kind: 'sleep', ms: 250 });
});

test('unknown actions, bad percentages and bad durations are refused with the terms named', () => {
  assert.throws(() => parseFailpointTerms('explode'), FailpointTermError);
  assert.throws(() => parseFailpointTerms('150%panic'), /bad percent 150/);
  assert.throws(() => parseFailpointTerms('sleep(soon)'), /could not parse terms "sleep\(soon\)": bad sleep/);
});

test('GOFAIL_FAILPOINTS is a ;-separated list of name=terms', () => {
  assert.deepEqual(parseFailpointList('walBeforeSync=sleep(100);raftBeforeSave=1*panic;'), [
    ['walBeforeSync', 'sleep(100)'],
    ['raftBeforeSave', '1*panic'],
  ]);
  assert.throws(() => parseFailpointList('walBeforeSync'), /expected name=terms/);
});
