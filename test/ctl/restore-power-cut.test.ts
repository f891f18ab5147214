/**
 * A power cut during or right after `tsetcdctl snapshot restore`, which kill -9 alone does not
 * show (the page cache survives it). The restore runs with its file calls journaled
 * (TSETCD_UNSAFE_POWERLOSS_JOURNAL, ctl/restore-files.ts); then its data dir is rebuilt as a cut
 * after each of those calls could have left it (test/support/power-cut.ts: directory changes after
 * the directory's last fsync lost, files as their last fsync left them, LMDB's unsynced ones
 * empty). After any cut the data dir is absent or holds the whole restored database; after a cut
 * once the restore said it succeeded, it is there, and a member started on it serves every key at
 * the snapshot's revision, as one restored without a cut does.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { powerLossJournalEnv } from '../../actors/wal/power-loss-journal.js';
import { packageRoot, memberDataPaths } from '../../src/lib/paths.js';
import { runCommand, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { restorePowerCut, type RestoreCutReport } from '../support/power-cut.js';
import { powerCutSkipReason } from '../support/power-loss.js';
import { endpointOf, keyValues, ok, restoreInto } from '../support/snapshots.js';
import { sutCommand, type MemberCommand } from '../support/sut.js';

const compiledMain = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ctl', 'main.js');
const loader = `import(${JSON.stringify(compiledMain)}).then((m) => m.run(process.argv.slice(1)))`;
const snapshotFile = join(packageRoot(), 'test', 'snap', 'testdata', 'etcd-3.4.23.db');
/** Seeds of the random cuts made after each call of the restore. */
const seeds = [1, 2, 3];

const sut = sutCommand();
const skip = powerCutSkipReason(sut, 'its restore');

function tsetcdctl(args: readonly string[], env: Record<string, string> = {}): Promise<CommandResult> {
  return runCommand(process.execPath, ['--input-type=module', '-e', loader, ...args], { env });
}

/** The restored database's file under a data dir. */
function databaseOf(dataDir: string): string {
  return join(memberDataPaths(dataDir, '').backendPath, 'data.mdb');
}

/** The journal's copy of the database as the restore's fsync left it: the whole restored database. */
function syncedDatabase(journalDir: string, report: RestoreCutReport): Buffer {
  const copy = [...report.files].find(([path]) => path.endsWith('/data.mdb'))?.[1];
  assert.ok(copy !== undefined && copy !== 'empty', `the restored database was never synced (${describe(report)})`);
  return readFileSync(join(journalDir, copy));
}

/** The files a cut put back, and from what. */
function describe(report: RestoreCutReport): string {
  return (
    [...report.files].map(([path, from]) => `${path.split('/').slice(-2).join('/')} <- ${from}`).join(', ') || 'none'
  );
}

test(
  'a power cut during or after tsetcdctl snapshot restore leaves no data dir or the whole one, and after success the member serves every key',
  skip === undefined ? {} : { skip },
  async (t) => {
    const reference = await Member.start({
      command: sut.command as MemberCommand,
      name: 'restored',
      beforeStart: async (member) => void (await ok(tsetcdctl(restoreInto(snapshotFile, member)))),
    });
    let expected: unknown;
    try {
      expected = await keyValues(endpointOf(reference));
    } finally {
      await reference.destroy();
    }

    const member = await Member.create({ command: sut.command as MemberCommand, name: 'restored' });
    try {
      const journalDir = join(member.workDir, 'journal');
      await ok(tsetcdctl(restoreInto(snapshotFile, member), { [powerLossJournalEnv]: journalDir }));
      // Power goes right after the restore said it succeeded, every unsynced change lost: the
      // data dir is there and a member started on it serves every key, at the snapshot's revision.
      const whole = restorePowerCut({ journalDir, seed: 0, mode: 'drop-unsynced' });
      t.diagnostic(`the restore made ${whole.calls} journaled calls; files after the cut: ${describe(whole)}`);
      assert.ok(existsSync(member.dataDir), 'the data dir of a restore that succeeded is gone after the cut');
      await member.restart();
      assert.deepEqual(await keyValues(endpointOf(member)), expected);
      await member.stop();

      // Power goes after each of the restore's calls: no data dir, or the whole restored database.
      const database = syncedDatabase(journalDir, restorePowerCut({ journalDir, seed: 0, mode: 'drop-unsynced' }));
      const cuts = [
        { seed: 0, mode: 'drop-unsynced' as const },
        ...seeds.map((seed) => ({ seed, mode: 'random' as const })),
      ];
      for (let callsDone = 0; callsDone <= whole.calls; callsDone++) {
        for (const cut of cuts) {
          const report = restorePowerCut({ journalDir, callsDone, ...cut });
          const what = `a cut ${cut.mode} seed ${cut.seed} after ${callsDone} of ${whole.calls} calls (${describe(report)})`;
          if (!existsSync(member.dataDir)) {
            assert.notEqual(callsDone, whole.calls, `${what}: the data dir of a restore that succeeded is gone`);
            continue;
          }
          assert.ok(existsSync(databaseOf(member.dataDir)), `${what}: the data dir is there without its database`);
          assert.ok(
            readFileSync(databaseOf(member.dataDir)).equals(database),
            `${what}: the data dir is there but its database is not the restored one`,
          );
        }
      }
    } finally {
      await member.destroy();
    }
  },
);
