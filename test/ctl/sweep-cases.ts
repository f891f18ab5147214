/**
 * The generated sweep: for every command path etcdctl's help lists, command lines in every
 * output format, with --hex, with each of the command's own flags given a plausible and a bad
 * value (in both --flag=value and --flag value forms), with an argument missing and one too many,
 * with an unknown flag, and with the format from ETCDCTL_WRITE_OUT; and every global flag on one
 * read, as a flag and as its ETCDCTL_* variable. What a command needs to run (its arguments, the
 * state to prepare and to undo around a command that changes the cluster) is the only thing
 * written here by hand; the commands and flags come from etcdctl's help (etcdctl-help.ts).
 */
import assert from 'node:assert/strict';
import type { CtlCase } from './cases.js';
import type { FlagKind, HelpCommand, HelpFlag, HelpTree } from './etcdctl-help.js';

/** etcdctl's output formats; commands refuse some, and those refusals are compared too. */
export const outputFormats = ['simple', 'json', 'fields', 'protobuf', 'table'] as const;

/** One generated command line, with the command path and the form it tries. */
export interface SweepCase extends CtlCase {
  /** The command path, joined with spaces ('' for the fixtures). */
  readonly command: string;
  /** What the line tries: 'format json', 'flag --limit bad', 'missing argument', ... */
  readonly form: string;
  /** Parts of the answer masked before comparing, as the command's inputs say. */
  readonly masks?: readonly RegExp[];
  /** The generated line this case belongs to: its own number, shared by the cases around it. */
  readonly line: number;
  /** A case run only to prepare or undo state around another (not counted as covering anything). */
  readonly setup?: true;
}

/** What a command needs beyond what its help says. */
interface CommandInputs {
  /** Plausible positional arguments (their count is checked against the usage line). */
  readonly args: readonly string[];
  readonly stdin?: string;
  /** The message `-w protobuf` prints, to compare it decoded. */
  readonly protobuf?: string;
  /** Run before and after each line that can succeed, so that every line starts from the same state. */
  readonly before?: readonly CtlCase[];
  readonly after?: readonly CtlCase[];
  /** Why only its usage and flag-error forms run: it would run on (or for long) once started. */
  readonly runsLong?: string;
  /** Plausible values for flags whose kind alone does not give one. */
  readonly flagValues?: Readonly<Record<string, string>>;
  /** Flags given no plausible value, with why (their bad values still run). */
  readonly flagsUnvalued?: Readonly<Record<string, string>>;
  /** A word made unique for each line (a directory the command must create afresh). */
  readonly perLine?: string;
  /** The arguments take any number of words, so one more is not "too many". */
  readonly variadic?: true;
  readonly membersUnordered?: true;
  readonly tsetcdDiffers?: string;
  /** Parts of the answer that differ between any two members (a hash over a member's own file). */
  readonly masks?: readonly RegExp[];
}

const responseHeader = 'etcdserverpb.ResponseHeader';
const learnerUrl = 'http://127.0.0.1:1';
const addLearner: CtlCase = { args: ['member', 'add', 'sweep-learner', `--peer-urls=${learnerUrl}`, '--learner'] };
/** Removes whichever unstarted learner the line before left (none: the remove is refused alike). */
const removeLearner: readonly CtlCase[] = [
  {
    args: ['member', 'list'],
    capture: { name: 'learner', pattern: /^([0-9a-f]+), unstarted/m, optional: true },
  },
  { args: ['member', 'remove', '${learner}'] },
];
const grantLease = (name: string): CtlCase => ({
  args: ['lease', 'grant', '1000'],
  capture: { name, pattern: /^lease ([0-9a-f]{16}) granted/ },
});
const watchUnusable = 'it watches until interrupted';
/**
 * tsetcdctl's completion scripts are its own (they complete etcdctl's words): completion.test.ts
 * checks them by what bash offers with them, so here they take only usage and flag-error forms.
 */
const completionScripts = 'its script is checked by what bash completes with it, in completion.test.ts';

/** Per command path; a path etcdctl lists but this table lacks fails the generation. */
const inputs: Readonly<Record<string, CommandInputs>> = {
  'alarm disarm': { args: [], protobuf: 'etcdserverpb.AlarmResponse' },
  'alarm list': { args: [], protobuf: 'etcdserverpb.AlarmResponse' },
  'auth disable': { args: [], protobuf: 'etcdserverpb.AuthDisableResponse' },
  'auth enable': {
    args: [],
    protobuf: 'etcdserverpb.AuthEnableResponse',
    after: [{ args: ['auth', 'disable', '--user=root:rootpw'] }],
  },
  'check datascale': { args: [], runsLong: 'it writes for minutes', flagValues: { load: 's', prefix: '/sweep/' } },
  'check perf': { args: [], runsLong: 'it writes for a minute', flagValues: { load: 's', prefix: '/sweep/' } },
  compaction: {
    args: ['${rev}'],
    protobuf: 'etcdserverpb.CompactionResponse',
    before: [
      {
        args: ['put', 'sweep-compact', 'v', '-w', 'json'],
        capture: { name: 'rev', pattern: /"revision":(\d+)/, unmasked: true },
      },
    ],
  },
  'completion bash': { args: [], runsLong: completionScripts },
  'completion fish': { args: [], runsLong: completionScripts },
  'completion powershell': { args: [], runsLong: completionScripts },
  'completion zsh': { args: [], runsLong: completionScripts },
  defrag: {
    args: [],
    protobuf: 'etcdserverpb.DefragmentResponse',
    flagsUnvalued: { 'data-dir': 'etcdctl 3.4 panics on a directory without a backend, in two goroutines at random' },
  },
  del: {
    args: ['sweep-del'],
    protobuf: 'etcdserverpb.DeleteRangeResponse',
    before: [{ args: ['put', 'sweep-del', 'v'] }],
  },
  elect: { args: ['sweep-election'], runsLong: 'it campaigns or observes until interrupted', variadic: true },
  'endpoint hashkv': { args: [], protobuf: 'etcdserverpb.HashKVResponse', flagValues: { rev: '1' } },
  'endpoint health': { args: [] },
  'endpoint status': { args: [], protobuf: 'etcdserverpb.StatusResponse' },
  get: {
    args: ['sweep-key'],
    protobuf: 'etcdserverpb.RangeResponse',
    flagValues: { consistency: 's', order: 'DESCEND', 'sort-by': 'KEY', limit: '1', rev: '2' },
  },
  help: { args: [] },
  'lease grant': { args: ['1000'], protobuf: responseHeader },
  'lease keep-alive': {
    args: ['--once', '${lease}'],
    protobuf: responseHeader,
    flagsUnvalued: { once: 'without --once it keeps the lease alive until interrupted' },
  },
  'lease list': { args: [], protobuf: responseHeader },
  'lease revoke': { args: ['${doomed}'], protobuf: responseHeader, before: [grantLease('doomed')] },
  'lease timetolive': { args: ['${lease}'], protobuf: responseHeader },
  lock: { args: ['sweep-lock'], runsLong: 'it holds the lock until interrupted', variadic: true },
  'make-mirror': { args: ['127.0.0.1:1'], runsLong: 'it mirrors until interrupted' },
  'member add': {
    args: ['sweep-learner', `--peer-urls=${learnerUrl}`, '--learner'],
    protobuf: 'etcdserverpb.MemberAddResponse',
    flagValues: { 'peer-urls': learnerUrl },
    after: removeLearner,
    membersUnordered: true,
  },
  'member list': { args: [], protobuf: 'etcdserverpb.MemberListResponse', membersUnordered: true },
  'member promote': {
    args: ['${learner}'],
    protobuf: 'etcdserverpb.MemberPromoteResponse',
    before: [addLearner, ...removeLearner.slice(0, 1)],
    after: removeLearner,
  },
  'member remove': {
    args: ['${learner}'],
    protobuf: 'etcdserverpb.MemberRemoveResponse',
    before: [addLearner, ...removeLearner.slice(0, 1)],
    after: removeLearner,
  },
  'member update': {
    args: ['${learner}'],
    protobuf: 'etcdserverpb.MemberUpdateResponse',
    flagValues: { 'peer-urls': 'http://127.0.0.1:2' },
    before: [addLearner, ...removeLearner.slice(0, 1)],
    after: removeLearner,
    membersUnordered: true,
  },
  migrate: {
    args: [],
    runsLong: 'it converts the data directory it is given (or ./default.etcd)',
    flagValues: { 'data-dir': '/nonexistent/sweep', 'wal-dir': '/nonexistent/sweep', transformer: '/bin/true' },
  },
  'move-leader': { args: ['${self}'], protobuf: 'etcdserverpb.MoveLeaderResponse' },
  put: {
    args: ['sweep-key', 'v'],
    protobuf: 'etcdserverpb.PutResponse',
    flagValues: { lease: '${lease}' },
  },
  'role add': {
    args: ['sweep-added-role'],
    protobuf: 'etcdserverpb.AuthRoleAddResponse',
    after: [{ args: ['role', 'delete', 'sweep-added-role'] }],
  },
  'role delete': {
    args: ['sweep-doomed-role'],
    protobuf: 'etcdserverpb.AuthRoleDeleteResponse',
    before: [{ args: ['role', 'add', 'sweep-doomed-role'] }],
  },
  'role get': { args: ['sweep-role'], protobuf: 'etcdserverpb.AuthRoleGetResponse' },
  'role grant-permission': {
    args: ['sweep-role', 'readwrite', 'sweep-key'],
    protobuf: 'etcdserverpb.AuthRoleGrantPermissionResponse',
  },
  'role list': { args: [], protobuf: 'etcdserverpb.AuthRoleListResponse' },
  'role revoke-permission': {
    args: ['sweep-role', 'sweep-revoked'],
    protobuf: 'etcdserverpb.AuthRoleRevokePermissionResponse',
    before: [{ args: ['role', 'grant-permission', 'sweep-role', 'read', 'sweep-revoked'] }],
  },
  'snapshot restore': {
    args: ['${dir}/sweep.db', '--data-dir=${dir}/restored'],
    flagValues: {
      'data-dir': '${dir}/restored',
      'wal-dir': '${dir}/restored-wal',
      'initial-advertise-peer-urls': 'http://127.0.0.1:2380',
      'initial-cluster': 'sweep=http://127.0.0.1:2380',
      name: 'sweep',
    },
    perLine: '${dir}/restored',
  },
  'snapshot save': { args: ['${dir}/saved.db'] },
  'snapshot status': {
    args: ['${dir}/sweep.db'],
    before: [{ args: ['snapshot', 'save', '${dir}/sweep.db'] }],
    // The file holds the member's own IDs, so its hash differs between any two members (etcd's too).
    // Its size counts the pages etcd's last batch commits freed, which depends on their timing.
    masks: [
      /^[0-9a-f]{1,8}(?=, )/gm,
      /"hash":\d+/g,
      /"Hash" : \d+/g,
      /^\| [0-9a-f]{1,8} \|/gm,
      /"totalSize":\d+/g,
      /"TotalSize" : \d+/g,
    ],
  },
  txn: {
    args: [],
    stdin: 'value("sweep-key") = "v"\n\nput sweep-txn yes\n\nput sweep-txn no\n\n',
    protobuf: 'etcdserverpb.TxnResponse',
  },
  'user add': {
    args: ['sweep-added-user:pw'],
    protobuf: 'etcdserverpb.AuthUserAddResponse',
    flagValues: { 'new-user-password': 'pw' },
    after: [{ args: ['user', 'delete', 'sweep-added-user'] }],
  },
  'user delete': {
    args: ['sweep-doomed-user'],
    protobuf: 'etcdserverpb.AuthUserDeleteResponse',
    before: [{ args: ['user', 'add', 'sweep-doomed-user:pw'] }],
  },
  'user get': { args: ['sweep-user'], protobuf: 'etcdserverpb.AuthUserGetResponse' },
  'user grant-role': {
    args: ['sweep-user', 'sweep-granted'],
    protobuf: 'etcdserverpb.AuthUserGrantRoleResponse',
    after: [{ args: ['user', 'revoke-role', 'sweep-user', 'sweep-granted'] }],
  },
  'user list': { args: [], protobuf: 'etcdserverpb.AuthUserListResponse' },
  'user passwd': {
    args: ['sweep-user', '--interactive=false'],
    stdin: 'pw2\n',
    protobuf: 'etcdserverpb.AuthUserChangePasswordResponse',
    flagsUnvalued: { interactive: 'interactive asks on the terminal, which the sweep has not' },
  },
  'user revoke-role': {
    args: ['sweep-user', 'sweep-granted'],
    protobuf: 'etcdserverpb.AuthUserRevokeRoleResponse',
    before: [{ args: ['user', 'grant-role', 'sweep-user', 'sweep-granted'] }],
  },
  version: { args: [] },
  watch: { args: ['sweep-key'], runsLong: watchUnusable, variadic: true },
};

/** State every command's lines may rely on, made first, in this order. */
export const sweepFixtures: readonly CtlCase[] = [
  { args: ['put', 'sweep-key', 'v'] },
  grantLease('lease'),
  addLearner,
  ...removeLearner,
  { args: ['user', 'add', 'root:rootpw'] },
  { args: ['user', 'add', 'sweep-user:pw'] },
  { args: ['role', 'add', 'sweep-role'] },
  { args: ['role', 'add', 'sweep-granted'] },
  { args: ['snapshot', 'save', '${dir}/sweep.db'] },
];

/** A plausible value for a flag of this kind, or undefined when its kind gives none. */
function plausibleValue(flag: HelpFlag, own: CommandInputs): string | undefined {
  const given = own.flagValues?.[flag.name];
  if (given !== undefined) return given;
  const byKind: Record<FlagKind, string | undefined> = {
    bool: 'true',
    int: '3',
    duration: '3s',
    string: flag.defaultValue === '' ? undefined : flag.defaultValue,
    list: flag.defaultValue === '' ? undefined : flag.defaultValue,
  };
  return byKind[flag.kind];
}

/** A value the flag's parser refuses, or a value outside what the command accepts. */
function badValue(flag: HelpFlag): string {
  return { bool: 'maybe', int: 'x', duration: 'x', string: 'bogus', list: 'bogus' }[flag.kind];
}

/** The forms of one own flag: a plausible value both ways (bools bare and =false), and a bad one. */
function flagForms(flag: HelpFlag, own: CommandInputs): Array<{ form: string; words: string[] }> {
  const name = `--${flag.name}`;
  const forms: Array<{ form: string; words: string[] }> = [];
  const value = own.flagsUnvalued?.[flag.name] === undefined ? plausibleValue(flag, own) : undefined;
  if (value !== undefined && own.runsLong === undefined) {
    if (flag.kind === 'bool') {
      forms.push({ form: `flag ${name}`, words: [name] }, { form: `flag ${name}=false`, words: [`${name}=false`] });
    } else {
      forms.push(
        { form: `flag ${name}=value`, words: [`${name}=${value}`] },
        { form: `flag ${name} value`, words: [name, value] },
      );
    }
    if (flag.shorthand !== undefined)
      forms.push({ form: `flag -${flag.shorthand}`, words: flag.kind === 'bool' ? [`-${flag.shorthand}`] : [] });
  }
  // A free-form string has no bad value; a long-running command is only refused by a bad value of an int,
  // a duration, a bool, or an enum (which its own check refuses before it starts).
  const refused = flag.kind !== 'string' || /\b(or|Accepted)\b/.test(flag.description);
  if (refused) forms.push({ form: `flag ${name} bad`, words: [`${name}=${badValue(flag)}`] });
  return forms.filter((form) => form.words.length > 0);
}

/** The generated lines for one command path, each wrapped in the state it needs. */
function commandCases(command: HelpCommand, own: CommandInputs, nextLine: () => number): SweepCase[] {
  const path = [...command.path];
  const name = path.join(' ');
  const args = [...own.args];
  const positional = args.filter((arg) => !arg.startsWith('--')).length;
  assert.ok(
    positional >= command.requiredArgs.length &&
      (own.variadic === true || positional <= command.requiredArgs.length + command.optionalArgs.length),
    `expected ${name}'s arguments to fit its usage "${command.usage}", saw ${JSON.stringify(args)}`,
  );
  const lines: Array<{ form: string; words: string[]; env?: Record<string, string> }> = [];
  const line = (form: string, words: string[], env?: Record<string, string>): void => {
    lines.push({ form, words, ...(env === undefined ? {} : { env }) });
  };
  line('help', [...path, '--help']);
  if (own.runsLong === undefined) {
    for (const format of outputFormats) line(`format ${format}`, [...path, ...args, '-w', format]);
    line('--hex', [...path, ...args, '--hex']);
    line('ETCDCTL_WRITE_OUT', [...path, ...args], { ETCDCTL_WRITE_OUT: 'json' });
    line('ETCDCTL_HEX', [...path, ...args], { ETCDCTL_HEX: 'true' });
  }
  for (const flag of command.flags)
    for (const { form, words } of flagForms(flag, own)) line(form, [...path, ...args, ...words]);
  if (positional > 0) {
    const lastPositional = args.map((arg) => !arg.startsWith('--')).lastIndexOf(true);
    line('missing argument', [...path, ...args.filter((_arg, index) => index !== lastPositional)]);
  }
  // A long-running command may take one more word, or a format it never prints, and start (check
  // datascale does, in etcdctl too).
  if (own.variadic !== true && own.runsLong === undefined)
    line('one argument too many', [...path, ...args, 'sweep-extra']);
  line('unknown flag', [...path, ...args, '--sweep-bogus']);
  if (own.runsLong === undefined) line('bad format', [...path, ...args, '-w', 'xml']);
  return lines.flatMap(({ form, words, env }, index) => {
    const unique = own.perLine;
    const line = nextLine();
    const main: SweepCase = {
      command: name,
      form,
      line,
      args: unique === undefined ? words : words.map((word) => word.split(unique).join(`${unique}-${index}`)),
      ...(own.stdin === undefined ? {} : { stdin: own.stdin }),
      ...(env === undefined ? {} : { env }),
      ...(form === 'format protobuf' && own.protobuf !== undefined ? { protobuf: own.protobuf } : {}),
      ...(own.membersUnordered === true ? { membersUnordered: true } : {}),
      ...(own.tsetcdDiffers === undefined ? {} : { tsetcdDiffers: own.tsetcdDiffers }),
      ...(own.masks === undefined ? {} : { masks: own.masks }),
    };
    const wrap = (cases: readonly CtlCase[] | undefined): SweepCase[] =>
      // Prepared and undone around every line but help, even one meant to be refused: a line
      // refused only after it acted (auth enable with an unknown format enables first) would
      // otherwise leave its state to the lines after it.
      form === 'help'
        ? []
        : (cases ?? []).map((setup) => ({ ...setup, command: name, form, line, setup: true as const }));
    return [...wrap(own.before), main, ...wrap(own.after)];
  });
}

/** Every global flag on `get`, as a flag (both forms) and as its ETCDCTL_* variable, plausible and bad. */
function globalFlagCases(flags: readonly HelpFlag[], nextLine: () => number): SweepCase[] {
  // Left out: the DNS discovery flags (they query the resolver, which the network-namespace tests
  // cover) and --endpoints (the harness gives each side its own).
  const leftOut = new Set(['discovery-srv', 'discovery-srv-name', 'endpoints', 'write-out']);
  const values: Readonly<Record<string, string>> = {
    cacert: '/nonexistent/sweep-ca.pem',
    cert: '/nonexistent/sweep-cert.pem',
    key: '/nonexistent/sweep-key.pem',
    user: 'sweep-user:pw',
    password: 'pw',
  };
  return flags
    .filter((flag) => !leftOut.has(flag.name))
    .flatMap((flag) => {
      const value = values[flag.name] ?? (flag.kind === 'duration' ? '3s' : flag.kind === 'bool' ? 'true' : undefined);
      const variable = `ETCDCTL_${flag.name.toUpperCase().replace(/-/g, '_')}`;
      const get = ['get', 'sweep-key'];
      const cases: SweepCase[] = [];
      const add = (form: string, args: string[], env?: Record<string, string>): void => {
        cases.push({ command: 'global', form, line: nextLine(), args, ...(env === undefined ? {} : { env }) });
      };
      if (value !== undefined) {
        add(`--${flag.name}=value`, [...get, `--${flag.name}=${value}`]);
        if (flag.kind !== 'bool') add(`--${flag.name} value`, [`--${flag.name}`, value, ...get]);
        add(`${variable}=value`, get, { [variable]: value });
      }
      if (flag.kind !== 'string') {
        add(`--${flag.name} bad`, [...get, `--${flag.name}=${badValue(flag)}`]);
        add(`${variable} bad`, get, { [variable]: badValue(flag) });
      }
      return cases;
    });
}

/** The whole sweep, fixtures first, from etcdctl's help tree. */
export function sweepCases(tree: HelpTree): SweepCase[] {
  const known = new Set(tree.commands.map((command) => command.path.join(' ')));
  const stale = Object.keys(inputs).filter((name) => !known.has(name));
  assert.deepEqual(stale, [], 'expected every command the sweep knows to be in etcdctl help');
  const fixtures = sweepFixtures.map((fixture) => ({
    ...fixture,
    command: '',
    form: 'fixture',
    line: 0,
    setup: true as const,
  }));
  let lines = 0;
  const nextLine = (): number => (lines += 1);
  const perCommand = tree.commands.flatMap((command) => {
    const own = inputs[command.path.join(' ')];
    assert.ok(own !== undefined, `expected the sweep to know what etcdctl ${command.path.join(' ')} needs`);
    return commandCases(command, own, nextLine);
  });
  return [...fixtures, ...perCommand, ...globalFlagCases(tree.globalFlags, nextLine)];
}
