/**
 * `etcdctl migrate`: moves a v2 store's keys into the mvcc store of a stopped member's data dir.
 * tsetcd serves only the v3 API and keeps no v2 store, so a tsetcd data dir has no v2 keys to
 * move. The command checks the transformer, the snapshot directory and the WAL as etcdctl does,
 * with etcdctl's messages; an etcd data dir (etcd's WAL format) is refused with a clear error,
 * since tsetcdctl does not rebuild etcd's v2 store from it.
 */
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { readWal } from '../src/wal/reader.js';
import type { CommandContext } from './context.js';
import { ExitCode, exitWithError } from './output.js';

/** Why Go's exec.Command(program).Start() would fail, in its words, or undefined when it would start. */
function transformerStartError(program: string, env: NodeJS.ProcessEnv): string | undefined {
  const runnable = (path: string): 'ok' | 'missing' | 'denied' => {
    try {
      if (!statSync(path).isFile()) return 'denied';
      accessSync(path, constants.X_OK);
      return 'ok';
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'denied';
    }
  };
  if (!program.includes('/')) {
    const found = (env.PATH ?? '')
      .split(delimiter)
      .some((dir) => runnable(join(dir === '' ? '.' : dir, program)) === 'ok');
    return found ? undefined : `exec: "${program}": executable file not found in $PATH`;
  }
  const state = runnable(program);
  if (state === 'ok') return undefined;
  return `fork/exec ${program}: ${state === 'missing' ? 'no such file or directory' : 'permission denied'}`;
}

/** `etcdctl migrate [--data-dir dir] [--wal-dir dir] [--transformer program] [--no-ttl]`. */
export async function runMigrate(context: CommandContext): Promise<void> {
  const { output, flags } = context;
  const transformer = flags.string('transformer');
  if (transformer === '') output.out('using default transformer\n');
  else {
    const startError = transformerStartError(transformer, context.env);
    if (startError !== undefined) exitWithError(output, ExitCode.error, startError);
  }
  const dataDir = flags.string('data-dir');
  // etcdctl loads the member's snapshots first, then reads its WAL.
  const snapDir = join(dataDir, 'member', 'snap');
  const walDir = flags.string('wal-dir') !== '' ? flags.string('wal-dir') : join(dataDir, 'member', 'wal');
  let walNames: string[] = [];
  for (const dir of [snapDir, walDir]) {
    try {
      walNames = readdirSync(dir);
    } catch {
      exitWithError(output, ExitCode.error, `open ${dir}: no such file or directory`);
    }
  }
  if (!walNames.some((name) => name.endsWith('.wal'))) exitWithError(output, ExitCode.error, 'wal: file not found');
  try {
    readWal(walDir);
  } catch {
    exitWithError(
      output,
      ExitCode.error,
      `${walDir} is not a tsetcd WAL: tsetcdctl does not rebuild etcd's v2 store; run etcdctl 3.4's migrate on this data dir`,
    );
  }
  output.out('no v2 keys to migrate\n');
}
