/**
 * tsetcdctl: an etcdctl (v3 API) compatible command line client. Finds the command the way
 * etcdctl's cobra does (prefix matching, suggestions), parses flags, runs it and exits with
 * etcdctl's exit codes.
 */
import { globalFlags, helpFlag, rootCommands, rootHelpCommands, type CommandSpec } from './command-tree.js';
import { helpCommand } from './command-tree-tools.js';
import type { CommandContext } from './context.js';
import { adoptDeferredExtraCaCerts } from './extra-ca-certs.js';
import { FlagValues, applyEnvironment, parseFlags, type FlagSpec } from './flags.js';
import { goQuote } from './go-format.js';
import { CtlExit, ExitCode, exitWithError, flushProcessOutput, processOutput, type Output } from './output.js';
import { StdinReader } from './stdin.js';
import { renderUsage } from './usage.js';

// Command modules load gRPC and the protos, so they are imported only when a command runs:
// help and usage errors then answer without paying for either.
const kvCommands = (): Promise<typeof import('./kv-commands.js')> => import('./kv-commands.js');
const endpointCommands = (): Promise<typeof import('./endpoint-commands.js')> => import('./endpoint-commands.js');
const snapshotCommands = (): Promise<typeof import('./snapshot-commands.js')> => import('./snapshot-commands.js');
const leaseCommands = (): Promise<typeof import('./lease-commands.js')> => import('./lease-commands.js');
const memberCommands = (): Promise<typeof import('./member-commands.js')> => import('./member-commands.js');
const maintenanceCommands = (): Promise<typeof import('./maintenance-commands.js')> =>
  import('./maintenance-commands.js');
const authCommands = (): Promise<typeof import('./auth-commands.js')> => import('./auth-commands.js');
type Runner = (context: CommandContext) => Promise<void>;

/** Nesting depth of etcdctl's command tree is two; anything deeper is a bug in the tree. */
const commandDepthMax = 4;

const root: CommandSpec = {
  name: 'etcdctl',
  use: 'etcdctl',
  short: 'A simple command line client for etcd3.',
  flags: [],
  persistentFlags: globalFlags,
  children: rootCommands({
    get: async (context) => (await kvCommands()).runGet(context),
    put: async (context) => (await kvCommands()).runPut(context),
    del: async (context) => (await kvCommands()).runDel(context),
    txn: async (context) => (await import('./txn-command.js')).runTxn(context),
    watch: async (context) => (await import('./watch-command.js')).runWatch(context),
    lock: async (context) => (await import('./concurrency-commands.js')).runLock(context),
    elect: async (context) => (await import('./concurrency-commands.js')).runElect(context),
    migrate: async (context) => (await import('./migrate-command.js')).runMigrate(context),
    'check perf': async (context) => (await import('./check-commands.js')).runCheckPerf(context),
    'check datascale': async (context) => (await import('./check-commands.js')).runCheckDatascale(context),
    'make-mirror': async (context) => (await import('./make-mirror-command.js')).runMakeMirror(context),
    ...Object.fromEntries(
      (['bash', 'zsh', 'fish', 'powershell'] as const).map((shell) => [
        `completion ${shell}`,
        async (context: CommandContext) =>
          (await import('./completion-command.js')).completionRunner(shell, () => root, globalFlags)(context),
      ]),
    ),
    compaction: async (context) => (await kvCommands()).runCompaction(context),
    version: async (context) => (await kvCommands()).runVersion(context),
    'endpoint health': async (context) => (await endpointCommands()).runEndpointHealth(context),
    'endpoint status': async (context) => (await endpointCommands()).runEndpointStatus(context),
    'endpoint hashkv': async (context) => (await endpointCommands()).runEndpointHashKv(context),
    'snapshot save': async (context) => (await snapshotCommands()).runSnapshotSave(context),
    'snapshot status': async (context) => (await snapshotCommands()).runSnapshotStatus(context),
    'snapshot restore': async (context) => (await snapshotCommands()).runSnapshotRestore(context),
    'lease grant': async (context) => (await leaseCommands()).runLeaseGrant(context),
    'lease revoke': async (context) => (await leaseCommands()).runLeaseRevoke(context),
    'lease timetolive': async (context) => (await leaseCommands()).runLeaseTimeToLive(context),
    'lease list': async (context) => (await leaseCommands()).runLeaseList(context),
    'lease keep-alive': async (context) => (await leaseCommands()).runLeaseKeepAlive(context),
    'member add': async (context) => (await memberCommands()).runMemberAdd(context),
    'member remove': async (context) => (await memberCommands()).runMemberRemove(context),
    'member update': async (context) => (await memberCommands()).runMemberUpdate(context),
    'member list': async (context) => (await memberCommands()).runMemberList(context),
    'member promote': async (context) => (await memberCommands()).runMemberPromote(context),
    'move-leader': async (context) => (await memberCommands()).runMoveLeader(context),
    'alarm disarm': async (context) => (await maintenanceCommands()).runAlarmDisarm(context),
    'alarm list': async (context) => (await maintenanceCommands()).runAlarmList(context),
    defrag: async (context) => (await maintenanceCommands()).runDefrag(context),
    'auth enable': async (context) => (await authCommands()).runAuthEnable(context),
    'auth disable': async (context) => (await authCommands()).runAuthDisable(context),
    'user add': async (context) => (await authCommands()).runUserAdd(context),
    'user delete': async (context) => (await authCommands()).runUserDelete(context),
    'user get': async (context) => (await authCommands()).runUserGet(context),
    'user list': async (context) => (await authCommands()).runUserList(context),
    'user passwd': async (context) => (await authCommands()).runUserPasswd(context),
    'user grant-role': async (context) => (await authCommands()).runUserGrantRole(context),
    'user revoke-role': async (context) => (await authCommands()).runUserRevokeRole(context),
    'role add': async (context) => (await authCommands()).runRoleAdd(context),
    'role delete': async (context) => (await authCommands()).runRoleDelete(context),
    'role get': async (context) => (await authCommands()).runRoleGet(context),
    'role list': async (context) => (await authCommands()).runRoleList(context),
    'role grant-permission': async (context) => (await authCommands()).runRoleGrantPermission(context),
    'role revoke-permission': async (context) => (await authCommands()).runRoleRevokePermission(context),
  } satisfies Record<string, Runner>),
};

/** Runs tsetcdctl with the arguments after the program name and sets process.exitCode. */
export async function run(argv: string[]): Promise<void> {
  // grpc-js names the server by IP in the TLS handshake, which Node flags as deprecated (RFC 6066);
  // etcdctl prints nothing of the kind, and neither should its users see Node's runtime notes.
  process.noDeprecation = true;
  adoptDeferredExtraCaCerts(process.env, processOutput.err);
  const stdin = new LazyStdin();
  let code: number;
  try {
    code = await runWith(argv, processOutput, stdin, process.env);
  } finally {
    stdin.release();
  }
  await flushProcessOutput();
  // etcdctl ends with os.Exit: a connection still being dialled (to an address that never
  // answers, say) must not hold the process for the minutes TCP takes to give up.
  process.exit(code);
}

/** What one tsetcdctl command line printed and its exit code. */
export interface CapturedRun {
  readonly stdout: Buffer;
  readonly stderr: Buffer;
  readonly code: number;
}

/**
 * Runs one tsetcdctl command line inside this process, with `stdin` as its standard input and
 * `env` as its environment, and returns what it printed: the same code path as the program
 * without a Node start per command, for callers that run hundreds of them (the tests).
 */
export async function runCaptured(
  argv: readonly string[],
  options: { readonly env?: NodeJS.ProcessEnv; readonly stdin?: string } = {},
): Promise<CapturedRun> {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const chunk = (data: string | Uint8Array): Buffer =>
    typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
  const output: Output = { out: (data) => void stdout.push(chunk(data)), err: (data) => void stderr.push(chunk(data)) };
  const input = Buffer.from(options.stdin ?? '');
  const stdin = new StdinReader(() =>
    (async function* () {
      yield input;
    })(),
  );
  const code = await runWith(argv, output, stdin, options.env ?? {});
  return { stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr), code };
}

/** Runs the command line and maps how it ended to etcdctl's exit code. */
async function runWith(
  argv: readonly string[],
  output: Output,
  stdin: StdinReader,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  try {
    await execute(argv, output, stdin, env);
    return ExitCode.success;
  } catch (error) {
    if (error instanceof CtlExit) return error.code;
    if (error instanceof Error && error.name === 'CtlDialError') {
      // etcdctl reports a client it could not set up (a refused authentication) with exit code 2.
      output.err(`Error: ${error.message}\n`);
      return ExitCode.badConnection;
    }
    output.err(`Error: ${error instanceof Error ? error.message : String(error)}\n`);
    return ExitCode.error;
  }
}

/** Only touches process.stdin when a command reads it, so a terminal is never held open. */
class LazyStdin extends StdinReader {
  private started = false;

  constructor() {
    super(() => {
      this.started = true;
      return (process.stdin as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    });
  }

  release(): void {
    if (this.started) process.stdin.destroy();
  }
}

/** Finds the command, parses its flags and runs it. */
async function execute(
  argv: readonly string[],
  output: Output,
  stdin: StdinReader,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const api = env.ETCDCTL_API;
  if (api !== undefined && api !== '' && api !== '3') {
    output.err(`unsupported API version ${api}\n`);
    throw new CtlExit(ExitCode.error);
  }
  const { path, args } = findCommand(argv);
  const command = path[path.length - 1] ?? root;
  if (command === root) checkRootArgs(output, args);
  const local = localFlags(command);
  const inherited = inheritedFlags(path);
  const flags = new FlagValues([...local, ...inherited]);
  const parsed = parseFlags(args, flags);
  if (!parsed.ok) usageError(output, path, parsed.error);
  if (command === helpCommand && !parsed.help) return help(output, parsed.args);
  if (parsed.help || (command.run === undefined && command.missing !== true)) return output.out(usageOf(path));
  if (command.noArgs === true && parsed.args.length > 0)
    usageError(
      output,
      path,
      `unknown command ${goQuote(Buffer.from(parsed.args[0]!))} for "etcdctl ${commandPath(path)}"`,
    );
  if (command.run === undefined)
    exitWithError(output, ExitCode.error, `tsetcdctl does not implement "${commandPath(path)}" yet`);
  if (command.offline !== true)
    applyEnvironment(
      flags,
      inherited.map((spec) => spec.name),
      env,
    );
  const { CommandContext } = await import('./context.js');
  // Looked up before the command runs, reported (if at all) when the command first makes a client.
  const discovery =
    flags.string('discovery-srv') === '' ? undefined : await (await import('./discovery.js')).discoveryFromFlags(flags);
  // etcdctl's watch declares the ETCDCTL_WATCH_* variables as inherited flags (so --debug lists them too).
  const inheritedNames = inherited.map((spec) => spec.name);
  if (command.name === 'watch') inheritedNames.push('watch-key', 'watch-range-end');
  const rawArgs = ['etcdctl', ...argv];
  const context = new CommandContext(parsed.args, flags, output, stdin, rawArgs, env, discovery, inheritedNames);
  try {
    await command.run(context);
  } finally {
    context.close();
  }
}

/** cobra's answer to a bad flag or argument: the error, the usage, then the error again. */
function usageError(output: Output, path: readonly CommandSpec[], message: string): never {
  output.err(`Error: ${message}\n`);
  output.out(usageOf(path));
  output.err('\n');
  exitWithError(output, ExitCode.error, message);
}

/** cobra's Find: walks subcommand names (exact, else a unique prefix) among non-flag words. */
function findCommand(argv: readonly string[]): { path: CommandSpec[]; args: string[] } {
  const path: CommandSpec[] = [root];
  let args = [...argv];
  for (let depth = 0; depth < commandDepthMax; depth++) {
    const current = path[path.length - 1] ?? root;
    const words = stripFlags(args, [...localFlags(current), ...inheritedFlags(path)]);
    const word = words[0];
    const next = word === undefined ? undefined : findChild(current, word);
    if (word === undefined || next === undefined) break;
    args = withoutFirst(args, word);
    path.push(next);
  }
  return { path, args };
}

function findChild(command: CommandSpec, word: string): CommandSpec | undefined {
  const children = command.children ?? [];
  const exact = children.find((child) => child.name === word);
  if (exact !== undefined) return exact;
  const prefixed = children.filter((child) => child.name.startsWith(word));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

function withoutFirst(args: readonly string[], word: string): string[] {
  const index = args.indexOf(word);
  return index < 0 ? [...args] : [...args.slice(0, index), ...args.slice(index + 1)];
}

/** cobra's stripFlags: the non-flag words, guessing which flags consume the next word. */
function stripFlags(args: readonly string[], specs: readonly FlagSpec[]): string[] {
  const words: string[] = [];
  const rest = [...args];
  const isBool = (name: string): boolean => specs.some((spec) => spec.name === name && spec.kind === 'bool');
  const isShortBool = (letter: string): boolean =>
    specs.some((spec) => spec.shorthand === letter && spec.kind === 'bool');
  while (rest.length > 0) {
    const arg = rest.shift() ?? '';
    if (arg === '--') break;
    const longTakesValue = arg.startsWith('--') && !arg.includes('=') && !isBool(arg.slice(2));
    const shortTakesValue =
      arg.startsWith('-') &&
      !arg.startsWith('--') &&
      !arg.includes('=') &&
      arg.length === 2 &&
      !isShortBool(arg.slice(1));
    if (longTakesValue || shortTakesValue) {
      if (rest.length <= 1) break;
      rest.shift();
      continue;
    }
    if (arg !== '' && !arg.startsWith('-')) words.push(arg);
  }
  return words;
}

/** cobra rejects a word the root does not know, suggesting close command names. */
function checkRootArgs(output: Output, args: readonly string[]): void {
  const word = stripFlags(args, [...globalFlags, helpFlag('etcdctl')])[0];
  if (word === undefined) return;
  const suggestions = (root.children ?? [])
    .filter((child) => child.name !== 'help')
    .filter(
      (child) =>
        levenshtein(word.toLowerCase(), child.name.toLowerCase()) <= 2 ||
        child.name.toLowerCase().startsWith(word.toLowerCase()),
    )
    .map((child) => `\t${child.name}\n`);
  const hint = suggestions.length > 0 ? `\n\nDid you mean this?\n${suggestions.join('')}` : '';
  const message = `unknown command ${goQuote(Buffer.from(word))} for "etcdctl"${hint}`;
  output.err(`Error: ${message}\nRun 'etcdctl --help' for usage.\n`);
  exitWithError(output, ExitCode.error, message);
}

function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function localFlags(command: CommandSpec): FlagSpec[] {
  return [...command.flags, ...(command.persistentFlags ?? []), helpFlag(command.name)];
}

function inheritedFlags(path: readonly CommandSpec[]): FlagSpec[] {
  return path.slice(0, -1).flatMap((ancestor) => ancestor.persistentFlags ?? []);
}

function commandPath(path: readonly CommandSpec[]): string {
  return path
    .slice(1)
    .map((command) => command.name)
    .join(' ');
}

/**
 * cobra's help command: the help of the command the words name, or, when they name none, the
 * root's usage (which leaves out the root's own -h flag) after "Unknown help topic".
 */
function help(output: Output, words: readonly string[]): void {
  const found = findCommand(words);
  const unknown = found.path.length === 1 && stripFlags(found.args, globalFlags).length > 0;
  if (!unknown) return output.out(usageOf(found.path));
  const quoted = words.map((word) => (word.includes('`') ? goQuote(Buffer.from(word)) : `\`${word}\``));
  output.err(`Unknown help topic [${quoted.join(' ')}]\n`);
  output.out(usageOf(found.path, false));
}

/** etcdctl's help page for the command at the end of `path`. */
function usageOf(path: readonly CommandSpec[], withHelpFlag = true): string {
  const command = path[path.length - 1] ?? root;
  const subcommands: Array<[string, string]> = [];
  const collect = (parent: CommandSpec, prefix: string): void => {
    for (const child of [...(parent.children ?? [])].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (child.children === undefined) subcommands.push([`${prefix}${child.name}`, child.short]);
      collect(child, `${prefix}${child.name} `);
    }
  };
  if (command === root) subcommands.push(...rootHelpCommands.map(([name, short]): [string, string] => [name, short]));
  else collect(command, '');
  return renderUsage({
    path: commandPath(path),
    use: command.use,
    short: command.short,
    long: command.long,
    runnable: command.run !== undefined,
    disableFlagsInUseLine: command.disableFlagsInUseLine,
    subcommands,
    localFlags: withHelpFlag ? localFlags(command) : localFlags(command).filter((spec) => spec.name !== 'help'),
    inheritedFlags: inheritedFlags(path),
  });
}
