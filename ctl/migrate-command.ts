/**
 * `etcdctl migrate`: moves a v2 store's keys into the mvcc store of a stopped member's data dir.
 * tsetcd serves only the v3 API and keeps no v2 store, so a tsetcd data dir has no v2 keys to
 * move; the command checks the data dir as etcdctl does and reports etcdctl's messages.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandContext } from './context.js';
import { ExitCode, exitWithError } from './output.js';

/** `etcdctl migrate [--data-dir dir] [--wal-dir dir] [--transformer program] [--no-ttl]`. */
export async function runMigrate(context: CommandContext): Promise<void> {
  const { output, flags } = context;
  if (flags.string('transformer') === '') output.out('using default transformer\n');
  const dataDir = flags.string('data-dir');
  // etcdctl loads the member's snapshots first, then reads its WAL.
  const snapDir = join(dataDir, 'member', 'snap');
  const walDir = flags.string('wal-dir') !== '' ? flags.string('wal-dir') : join(dataDir, 'member', 'wal');
  for (const dir of [snapDir, walDir]) {
    try {
      statSync(dir);
    } catch {
      exitWithError(output, ExitCode.error, `open ${dir}: no such file or directory`);
    }
  }
  output.out('finished transforming keys\n');
}
