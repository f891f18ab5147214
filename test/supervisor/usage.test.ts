/**
 * `--help` and `--version` answer on every form of the command and start nothing: a user asking
 * `tsetcd cluster --help` must not find three members bound to 2379, 22379 and 32379.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/lib/paths.js';

const bin = join(packageRoot(), 'bin', 'tsetcd.js');
/** A member that did start would keep running; the call is cut off long before that matters. */
const answerMsMax = 30_000;

function tsetcd(args: string[], cwd: string) {
  return spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', timeout: answerMsMax });
}

for (const args of [['--help'], ['cluster', '--help'], ['cluster', '--members', '1', '--help']]) {
  test(`tsetcd ${args.join(' ')} prints the usage of every command and starts no member`, () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tsetcd-usage-'));
    try {
      const result = tsetcd(args, cwd);
      assert.equal(result.signal, null, 'it answered and exited by itself');
      assert.equal(result.status, 0, result.stderr);
      for (const form of ['tsetcd [flags]', 'tsetcd cluster', 'tsetcd inspect', 'tsetcd machines --export DIR']) {
        assert.ok(result.stdout.includes(form), `usage names ${form}`);
      }
      assert.match(result.stdout, /--listen-client-urls/);
      assert.deepEqual(readdirSync(cwd), [], 'no data dir was made');
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
}

test('tsetcd cluster --version prints the version and starts no member', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'tsetcd-usage-'));
  try {
    const result = tsetcd(['cluster', '--version'], cwd);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^tsetcd Version: /);
    assert.deepEqual(readdirSync(cwd), []);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
