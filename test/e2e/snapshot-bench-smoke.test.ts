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
  'the snapshot benchmark saves and restores a snapshot on both systems and reports puts around the save',
  sut.command === undefined ? { skip: sut.skipReason } : {},
  async () => {
    const result = await runCommand(
      process.execPath,
      [benchMain, '--keys', '300', '--rounds', '1', '--clients', '2', '--baseline-seconds', '0.2', '--json'],
      {
        timeoutMs: 120_000,
      },
    );
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      system: string;
      keys: number;
      rounds: { fileMiB: number; restoreSeconds: number; putsBefore: { puts: number } }[];
    }[];
    assert.deepEqual(
      report.map((row) => row.system),
      ['etcd', 'tsetcd'],
    );
    for (const row of report) {
      assert.equal(row.keys, 300);
      assert.equal(row.rounds.length, 1);
      const [round] = row.rounds;
      assert.ok(round!.fileMiB > 0 && round!.restoreSeconds > 0 && round!.putsBefore.puts > 0, JSON.stringify(row));
    }
  },
);
