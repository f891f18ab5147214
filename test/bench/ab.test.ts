/** A short real run of the A/B of builds (bench/ab.ts), so the tool never rots, and its flags. No timing is asserted. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAb, parseAbArgs, runAb } from '../../bench/ab.js';
import { loadRunner } from '../../bench/go-client.js';
import { sutCommand } from '../support/sut.js';

const sut = sutCommand();
test(
  'a short A/B run measures every build in every round and sets each against the first',
  sut.command === undefined ? { skip: sut.skipReason } : {},
  async () => {
    const command = sut.command!;
    const windows = await runAb(
      {
        builds: [
          { label: 'a', command },
          { label: 'b', command },
        ],
        rounds: 2,
        requests: 20,
        warmupRequests: 10,
        clients: 1,
        op: 'put',
      },
      loadRunner('node'),
    );
    // The order rotates every round: a then b, then b then a.
    assert.deepEqual(
      windows.map((w) => `${w.round}${w.label}`),
      ['0a', '0b', '1b', '1a'],
    );
    for (const w of windows) {
      assert.equal(w.requests, 20, `expected 20 measured requests in window ${w.round}${w.label}`);
      assert.ok(w.serverCpuPerRequestUs > 0 && w.meanUs > 0, `expected CPU and latency in window ${w.round}${w.label}`);
    }
    const report = formatAb(windows);
    assert.match(report, /^build\s+windows\s+req\/s\s+srv cpu us\/req/);
    assert.match(report, /\na\s+2\s.*\s1\s+1\s*(\n|$)/);
  },
);

test('the A/B flags name two builds at least, each as label=command', () => {
  const { options, client } = parseAbArgs([
    '--build',
    'before=node /tmp/before/bin/tsetcd.js',
    '--build',
    'after=node bin/tsetcd.js',
    '--rounds',
    '3',
  ]);
  assert.deepEqual(
    options.builds.map((b) => [b.label, b.command.command, ...b.command.args]),
    [
      ['before', 'node', '/tmp/before/bin/tsetcd.js'],
      ['after', 'node', 'bin/tsetcd.js'],
    ],
  );
  assert.equal(options.rounds, 3);
  assert.equal(client, 'go');
  assert.throws(() => parseAbArgs(['--build', 'only=node bin/tsetcd.js']), /two --build flags at least/);
  assert.throws(() => parseAbArgs(['--build', 'node bin/tsetcd.js', '--build', 'b=x']), /label=command/);
  assert.throws(() => parseAbArgs(['--build', 'a=x', '--build', 'b=y', '--op', 'get']), /--op must be one of/);
});
