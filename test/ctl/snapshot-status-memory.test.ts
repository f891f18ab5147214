/**
 * `tsetcdctl snapshot status` reads a snapshot a few pages at a time: on a 128 MiB database its
 * peak RSS stays below the file's size (reading the file whole cannot), and it prints what etcdctl
 * prints for it. The peak RSS is GNU time's; without /usr/bin/time the test skips, saying so.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/lib/paths.js';
import type { BoltItem } from '../../src/snap/bbolt/format.js';
import { writeBoltBytes } from '../../src/snap/bbolt/writer.js';
import { runCommand } from '../support/etcdctl.js';
import { etcdctlBinaryPath } from '../support/sut.js';

const timeBinaryPath = '/usr/bin/time';
const databaseBytesMin = 128 * 1024 * 1024;
const valueBytes = 2000;

/** A "key" bucket of revision-shaped keys whose values add up to databaseBytesMin. */
function largeDatabase(): Uint8Array {
  const value = new Uint8Array(valueBytes).fill(0x76);
  const items: BoltItem[] = [];
  for (let main = 1; main * valueBytes <= databaseBytesMin; main++) {
    const key = Buffer.alloc(17);
    key.writeUInt32BE(main, 4);
    key[8] = 0x5f;
    items.push({ key, value });
  }
  return writeBoltBytes([{ key: Buffer.from('key'), bucket: items }]);
}

test(
  'tsetcdctl snapshot status of a 128 MiB database peaks below the file in RSS and prints what etcdctl prints',
  existsSync(timeBinaryPath) ? {} : { skip: `${timeBinaryPath} (GNU time) is not installed` },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tsetcdctl-status-memory-'));
    try {
      const file = join(dir, 'large.db');
      const database = largeDatabase();
      await writeFile(file, database);
      const args = ['snapshot', 'status', file, '-w', 'json'];
      const ctl = join(packageRoot(), 'bin', 'tsetcdctl.js');
      const timed = await runCommand(timeBinaryPath, ['-f', 'peak-rss-kb %M', process.execPath, ctl, ...args], {
        timeoutMs: 120_000,
      });
      assert.equal(timed.code, 0, timed.stderr);
      const peak = /peak-rss-kb (\d+)\s*$/.exec(timed.stderr);
      assert.ok(peak !== null, `GNU time printed no peak RSS: ${timed.stderr}`);
      const peakBytes = Number(peak[1]) * 1024;
      t.diagnostic(`status of ${database.length} bytes peaked at ${(peakBytes / 2 ** 20).toFixed(0)} MiB RSS`);
      assert.ok(peakBytes < database.length, `peak RSS ${peakBytes} bytes, the file ${database.length}`);
      const theirs = await runCommand(etcdctlBinaryPath, args, { timeoutMs: 120_000 });
      assert.deepEqual({ code: timed.code, stdout: timed.stdout }, { code: theirs.code, stdout: theirs.stdout });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
