/** Keeps bench/snapshot.ts from rotting: a tiny run against etcd and tsetcd; only the report's shape is asserted. */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../support/etcdctl.js';
import { sutCommand } from '../support/sut.js';

const benchMain = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'snapshot.js');
const sut = sutCommand();

test(
  'the snapshot benchmark saves a snapshot on both systems and reports puts around it',
  sut.command === undefined ? { skip: sut.skipReason } : {},
  async () => {
    const result = await runCommand(
      process.execPath,
      [benchMain, '--keys', '300', '--baseline-seconds', '0.2', '--json'],
      {
        timeoutMs: 120_000,
      },
    );
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      system: string;
      keys: number;
      fileMiB: number;
      putsBefore: { puts: number };
    }[];
    assert.deepEqual(
      report.map((row) => row.system),
      ['etcd', 'tsetcd'],
    );
    for (const row of report) {
      assert.equal(row.keys, 300);
      assert.ok(row.fileMiB > 0 && row.putsBefore.puts > 0, JSON.stringify(row));
    }
  },
);
