/**
 * etcdctl's watch argument rules, as pure functions: which words name the watched key and range
 * end, which follow `--` as a command to run per event, and the errors etcdctl reports for the
 * combinations it refuses (ETCDCTL_WATCH_KEY and ETCDCTL_WATCH_RANGE_END included).
 */
import { watchFlags } from './command-tree.js';
import { FlagValues, parseFlags } from './flags.js';
import { prefixRangeEnd } from './kv-commands.js';

export const watchErrors = {
  badArgsNum: 'bad number of arguments',
  conflictEnv: 'bad number of arguments (found conflicting environment key)',
  separator: 'bad number of arguments (found separator --, but no commands)',
  interactiveWatch: "args[0] must be 'watch' for interactive calls",
  prefixAndRangeEnd: '`range_end` and `--prefix` are mutually exclusive',
} as const;

/** The flags one watch is made with (from the command line, or from an interactive line). */
export interface WatchOptions {
  readonly prefix: boolean;
  readonly rev: bigint;
  readonly prevKv: boolean;
}

export interface WatchEnvironment {
  readonly key: string;
  readonly rangeEnd: string;
}

export type WatchArgs =
  { ok: true; watchArgs: string[]; execArgs: string[]; options: WatchOptions } | { ok: false; error: string };

/** The words after the first `watch` on the raw command line (all of them when there is none). */
function afterWatchWord(rawArgs: readonly string[]): string[] {
  const index = rawArgs.indexOf('watch');
  return index < 0 ? [...rawArgs] : rawArgs.slice(index + 1);
}

/**
 * etcdctl's parseWatchArgs for the command line: `rawArgs` is the whole argv (the `--` still in
 * it), `commandArgs` the positional words the flag parser kept.
 */
export function parseCommandLineWatchArgs(
  rawArgs: readonly string[],
  commandArgs: readonly string[],
  env: WatchEnvironment,
  options: WatchOptions,
): WatchArgs {
  const raw = afterWatchWord(rawArgs);
  const separator = raw.indexOf('--');
  const hasSeparator = separator >= 0;
  if (hasSeparator && separator === raw.length - 1) return { ok: false, error: watchErrors.separator };
  if (!hasSeparator && raw.length < 1 && env.key === '') return { ok: false, error: watchErrors.badArgsNum };
  if (hasSeparator && env.key !== '' && conflictsWithEnvironment(commandArgs, raw, separator))
    return { ok: false, error: watchErrors.conflictEnv };
  if (!hasSeparator && commandArgs.length > 0 && env.key !== '') return { ok: false, error: watchErrors.conflictEnv };
  return finish([...commandArgs], raw, separator, env, options);
}

/** Words before `--` beside ETCDCTL_WATCH_KEY: etcdctl walks both lists from the end to find them. */
function conflictsWithEnvironment(commandArgs: readonly string[], raw: readonly string[], separator: number): boolean {
  let rawIndex = raw.length - 1;
  for (let index = commandArgs.length - 1; index >= 0; index--) {
    if (commandArgs[index] === raw[rawIndex]) {
      rawIndex--;
      continue;
    }
    if (rawIndex === separator) return true;
  }
  return false;
}

/** etcdctl's parseWatchArgs for one `watch ...` line of interactive mode (already split into words). */
export function parseInteractiveWatchArgs(words: readonly string[], env: WatchEnvironment): WatchArgs {
  if (words[0] !== 'watch') return { ok: false, error: watchErrors.interactiveWatch };
  const watchArgs = words.slice(1);
  const separator = watchArgs.indexOf('--');
  const hasSeparator = separator >= 0;
  if (hasSeparator && separator === watchArgs.length - 1) return { ok: false, error: watchErrors.separator };
  const flags = new FlagValues(watchFlags);
  const parsed = parseFlags(watchArgs, flags);
  if (!parsed.ok) return { ok: false, error: parsed.error };
  if (!hasSeparator && env.key === '' && parsed.args.length < 1) return { ok: false, error: watchErrors.badArgsNum };
  if (!hasSeparator && parsed.args.length > 0 && env.key !== '') return { ok: false, error: watchErrors.conflictEnv };
  const options = { prefix: flags.bool('prefix'), rev: flags.int64('rev'), prevKv: flags.bool('prev-kv') };
  return finish(parsed.args, watchArgs, separator, env, options);
}

/** Splits off the command after `--` and puts the environment's key and range end in front. */
function finish(
  positional: string[],
  withSeparator: readonly string[],
  separator: number,
  env: WatchEnvironment,
  options: WatchOptions,
): WatchArgs {
  const execArgs = separator >= 0 ? withSeparator.slice(separator + 1) : [];
  let watchArgs = positional;
  if (env.key !== '') watchArgs = [env.key, ...(env.rangeEnd !== '' ? [env.rangeEnd] : []), ...watchArgs];
  if (separator < 0) return { ok: true, watchArgs, execArgs, options };
  // The positional words run on into the command's words; cut them where the command starts.
  const firstCommandWord = withSeparator[separator + 1];
  const end = watchArgs.lastIndexOf(firstCommandWord ?? '');
  return { ok: true, watchArgs: watchArgs.slice(0, Math.max(end, 0)), execArgs, options };
}

/** The key span clientv3 watches for these words and flags, or etcdctl's error. */
export function watchSpan(
  watchArgs: readonly string[],
  options: WatchOptions,
): { ok: true; key: Buffer; rangeEnd: Buffer } | { ok: false; error: string } {
  if (watchArgs.length < 1) return { ok: false, error: watchErrors.badArgsNum };
  let key: Buffer = Buffer.from(watchArgs[0] ?? '');
  let rangeEnd: Buffer = Buffer.alloc(0);
  if (watchArgs.length === 2) {
    if (options.prefix) return { ok: false, error: watchErrors.prefixAndRangeEnd };
    rangeEnd = Buffer.from(watchArgs[1] ?? '');
  }
  if (options.prefix) {
    if (key.length === 0) [key, rangeEnd] = [Buffer.from([0]), Buffer.from([0])];
    else rangeEnd = prefixRangeEnd(key);
  }
  return { ok: true, key, rangeEnd };
}
