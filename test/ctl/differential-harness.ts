/**
 * The three-way comparison behind the tsetcdctl differential tests: the same command lines run
 * through /usr/bin/etcdctl against one real etcd (the reference), through tsetcdctl against a
 * second real etcd, and through tsetcdctl against tsetcd; stdout, stderr and the exit code must
 * agree once member, cluster and lease IDs, ports and timings are normalised.
 */
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { etcdctlTimeoutMsDefault, runCommand, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { protobufText } from '../support/proto-text.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, tsetcdctlBinPath } from '../support/sut.js';
import { loadCtl } from '../../ctl/bundle-loader.cjs';
import { referenceReruns, type CtlCase } from './cases.js';

// tsetcdctl as bin/tsetcdctl.cjs loads it: the bundle when the build made one, so the cases check
// the bundled code path (test/ctl/startup-modules.test.ts checks the bundle is what runs). Loaded
// on the first case, so a test that only starts members here does not load it.
let ctl: ReturnType<typeof loadCtl> | undefined;

/** What varies between two members (and two runs) without being a difference in behaviour. */
export interface Identity {
  readonly endpoint: string;
  readonly peer: string;
  /** Member and cluster IDs, and the IDs of leases and members the cases created (hex and decimal). */
  readonly ids: string[];
  /** Values captured from earlier answers, substituted for ${name} in later command lines. */
  readonly values: Map<string, string>;
}

/**
 * etcd lists members in Go map order, which differs from run to run: sorts each run of lines
 * between table borders, and the members of a JSON answer.
 */
function sortMembers(text: string): string {
  // Tested by what the answer is rather than by whether sorting changed it: an answer that
  // happens to be in order must not fall through to the line sort.
  if (text.includes('"members":['))
    return text.replace(/"members":\[((?:\{[^{}]*\},?)*)\]/g, (_match, list: string) => {
      const members = (list.match(/\{[^{}]*\}/g) ?? []).sort();
      return `"members":[${members.join(',')}]`;
    });
  if (text.includes('ETCD_INITIAL_CLUSTER="'))
    return text.replace(
      /ETCD_INITIAL_CLUSTER="([^"]*)"/,
      (_match, list: string) => `ETCD_INITIAL_CLUSTER="${list.split(',').sort().join(',')}"`,
    );
  const blocks: string[][] = [[]];
  for (const line of text.split('\n')) {
    if (line.startsWith('+')) blocks.push([line], []);
    else blocks[blocks.length - 1]?.push(line);
  }
  return blocks.map((block) => (block[0]?.startsWith('+') === true ? block : [...block].sort()).join('\n')).join('\n');
}

/** A protobuf answer decoded as `typeName`, or, when it is not one, its text marked so. */
function decodedOrRaw(typeName: string, bytes: Buffer): string {
  try {
    return protobufText(typeName, bytes);
  } catch (error) {
    return `not a ${typeName} (${(error as Error).message}): ${bytes.toString('utf8')}`;
  }
}

export function normalise(result: CommandResult, identity: Identity, testCase: CtlCase): CommandResult {
  const protobufType = testCase.protobuf;
  const clean = (text: string): string => {
    let out = text.split(identity.endpoint).join('<endpoint>').split(identity.peer).join('<peer>');
    // Longest first, so that an ID never leaves part of a longer one behind.
    for (const id of [...identity.ids].sort((a, b) => b.length - a.length)) out = out.split(id).join('<id>');
    return (
      out
        // clientv3's retry logs carry timestamps and random client names; tsetcdctl has none.
        .replace(/^\{"level":"warn".*\n/gm, '')
        // grpc-go's own logs, which etcdctl --debug turns on; tsetcdctl has no gRPC library to log.
        .replace(/^(INFO|WARNING|ERROR): \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d .*\n/gm, '')
        .replace(/goroutine \d+ \[running\]:\n[\s\S]*$/, 'goroutine <n> [running]:\n')
        // capnslog's wall-clock timestamp on etcdctl's log lines.
        .replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} ([WC]) \|/gm, '<time> $1 |')
        // The times on zap's log lines (snapshot save and restore): epoch seconds or ISO 8601.
        .replace(/^(\{"level":"\w+","ts":)(?:[0-9.]+|"[^"]*")/gm, '$1<ts>')
        // A lease's remaining TTL depends on when the member was asked.
        .replace(/remaining\(\d+s\)/g, 'remaining(<ttl>s)')
        .replace(/"ttl":\d+,"granted-ttl"/g, '"ttl":<ttl>,"granted-ttl"')
        .replace(/"TTL" : \d+\n"GrantedTTL"/g, '"TTL" : <ttl>\n"GrantedTTL"')
        .replace(/took = [0-9.]+(ns|µs|ms|s)/g, 'took = <took>')
        .replace(/"took":"[^"]*"/g, '"took":"<took>"')
        // snapshot save's "fetched snapshot" log line gives the time taken as seconds.
        .replace(/"took":[0-9.]+/g, '"took":<took>')
        .replace(/"Took" : \S+/g, '"Took" : <took>')
        .replace(/\| +[0-9.]+(ns|µs|ms|s) \|/g, '| <took> |')
        .replace(/"(dbSize|dbSizeInUse)":\d+/g, '"$1":<size>')
        .replace(/"DBSize" : \d+/g, '"DBSize" : <size>')
        // Raft indexes count etcd's own entries too (cluster version, member attributes), whose
        // number depends on start-up timing rather than on the client.
        .replace(/"(raftIndex|raftAppliedIndex)":\d+/g, '"$1":<index>')
        .replace(/"(RaftIndex|RaftAppliedIndex)" : \d+/g, '"$1" : <index>')
        .replace(/(true|false), (true|false), (\d+), \d+, \d+, /g, '$1, $2, $3, <index>, <index>, ')
        .replace(/\| +(\d+) \| +\d+ \| +\d+ \| +\|$/gm, '| $1 | <index> | <index> | |')
        .replace(/[0-9.]+ (B|kB|MB|GB)\b/g, '<size>')
        // Table borders and padding follow cell widths, which the normalised cells changed.
        .replace(/-{2,}/g, '-')
        .replace(/ {2,}/g, ' ')
    );
  };
  const stdout =
    protobufType === undefined || result.code !== 0
      ? result.stdout
      : decodedOrRaw(protobufType, result.stdoutBytes ?? Buffer.from(result.stdout));
  const cleaned = clean(stdout);
  return {
    stdout: testCase.membersUnordered === true ? sortMembers(cleaned) : cleaned,
    stderr: clean(result.stderr),
    code: result.code,
  };
}

/** The member's cluster and member IDs in decimal and hex, read with etcdctl. */
async function identityOf(member: Member): Promise<Identity> {
  const endpoint = `127.0.0.1:${member.clientPort}`;
  const status = await runCommand(
    etcdctlBinaryPath,
    [`--endpoints=${endpoint}`, 'endpoint', 'status', '-w', 'fields'],
    { env: { ETCDCTL_API: '3' } },
  );
  const decimal = [...status.stdout.matchAll(/"(?:ClusterID|MemberID)" : (\d+)/g)].map((match) => match[1] ?? '');
  assert.ok(decimal.length >= 2, `expected cluster and member IDs from etcdctl, saw ${status.stdout}${status.stderr}`);
  const ids = [...new Set(decimal)].flatMap((id) => [id, BigInt(id).toString(16)]);
  const self = BigInt(decimal[1] ?? '0').toString(16);
  return { endpoint, peer: `127.0.0.1:${member.peerPort}`, ids, values: new Map([['self', self]]) };
}

/** `text` with ${name} replaced by what this side captured earlier (${endpoint} is the side's own). */
function substitute(text: string, identity: Identity): string {
  return text.replace(/\$\{(\w+)\}/g, (_match, name: string) => {
    const value = name === 'endpoint' ? identity.endpoint : identity.values.get(name);
    assert.ok(value !== undefined, `expected an earlier case to capture \${${name}}`);
    return value;
  });
}

/** The case's command line with ${name} replaced by what this side captured earlier. */
function argsFor(testCase: CtlCase, identity: Identity): string[] {
  const args = testCase.args.map((arg) => substitute(arg, identity));
  return testCase.ownEndpoints === true ? args : [`--endpoints=${identity.endpoint}`, ...args];
}

/** The case's environment for this side: ETCDCTL_API=3 and its own variables, ${name} replaced. */
function envFor(testCase: CtlCase, identity: Identity): Record<string, string> {
  const own = Object.entries(testCase.env ?? {}).map(([key, value]) => [key, substitute(value, identity)]);
  return { ETCDCTL_API: '3', ...Object.fromEntries(own) };
}

/**
 * Remembers the value a case's answer names, for later command lines (as ${name}): an ID as hex,
 * also masked in later answers; an unmasked value (a revision) as the decimal it was printed as.
 */
function capture(testCase: CtlCase, result: CommandResult, identity: Identity): void {
  if (testCase.capture === undefined) return;
  const { name, pattern, radix, optional, unmasked } = testCase.capture;
  // A pattern may offer the value in hex (group 1) or, where a format prints it so, decimal (group 2).
  const match = pattern.exec(result.stdout);
  const found = match?.[1] ?? match?.[2];
  const decimal = radix === 10 || (match?.[1] === undefined && match?.[2] !== undefined);
  if (found === undefined && optional === true) return;
  assert.ok(found !== undefined, `expected ${String(pattern)} in ${result.stdout}${result.stderr}`);
  if (unmasked === true) {
    identity.values.set(name, found);
    return;
  }
  const value = BigInt(decimal ? found : `0x${found}`);
  const hex = value.toString(16);
  identity.values.set(name, hex);
  identity.ids.push(value.toString(), hex.padStart(16, '0'), hex);
}

/** Commands that change state; every other case may run alongside its neighbours. */
const mutatingCommands = new Set([
  'put',
  'del',
  'txn',
  'compaction',
  'lease',
  'member',
  'alarm',
  'defrag',
  'move-leader',
  'auth',
  'user',
  'role',
  'snapshot',
]);
/** Command triples in flight at once; etcdctl's start-up dominates, and the machine is shared. */
const pairsInFlightMax = 3;

/** etcdctl against etcd, tsetcdctl against etcd, tsetcdctl against tsetcd. */
export type Runs = readonly [expected: CommandResult, againstEtcd: CommandResult, againstTsetcd: CommandResult];

/** Runs at most `limit` tasks at a time. */
function limiter(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (task) => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running += 1;
    try {
      return await task();
    } finally {
      running -= 1;
      waiting.shift()?.();
    }
  };
}

/**
 * Starts every case in script order: a mutating case waits for everything before it, and
 * everything after it waits for it, so both members see the same history.
 */
function schedule(cases: readonly CtlCase[], run: (testCase: CtlCase) => Promise<Runs>): Map<CtlCase, Promise<Runs>> {
  const limit = limiter(pairsInFlightMax);
  const scheduled = new Map<CtlCase, Promise<Runs>>();
  let barrier: Promise<unknown> = Promise.resolve();
  let sinceBarrier: Promise<unknown>[] = [];
  for (const testCase of cases) {
    const mutates = testCase.args.some((arg) => mutatingCommands.has(arg));
    const ready = mutates ? Promise.all([barrier, ...sinceBarrier]) : barrier;
    const pair = ready.then(() => limit(() => run(testCase)));
    // Failures surface in the case's own test; this only keeps them from being "unhandled".
    pair.catch(() => undefined);
    scheduled.set(testCase, pair);
    if (mutates) [barrier, sinceBarrier] = [pair, []];
    else sinceBarrier.push(pair);
  }
  return scheduled;
}

/** The three members the command lines run against, with what normalising needs to know of each. */
export interface Sides {
  readonly members: readonly [reference: Member, etcd: Member, tsetcd: Member];
  readonly identities: readonly [reference: Identity, etcd: Identity, tsetcd: Identity];
}

/** Starts a reference etcd, a second etcd and tsetcd, one member each. */
export async function startThreeMembers(): Promise<[reference: Member, etcd: Member, tsetcd: Member]> {
  const tsetcd = sutCommand().command;
  assert.ok(tsetcd !== undefined, 'expected tsetcd to be built');
  return Promise.all([
    Member.start({ command: etcdCommand() }),
    Member.start({ command: etcdCommand() }),
    Member.start({ command: tsetcd }),
  ]);
}

/** The three members, with what normalising needs to know of each. */
export async function startSides(): Promise<Sides> {
  const members = await startThreeMembers();
  const identities = await Promise.all(members.map(identityOf));
  return {
    members,
    identities: identities as unknown as readonly [reference: Identity, etcd: Identity, tsetcd: Identity],
  };
}

/** Stops the three members. */
export async function stopSides(sides: Sides | undefined): Promise<void> {
  await Promise.all((sides?.members ?? []).map((member) => member.destroy()));
}

/** Runs tsetcdctl with this side's command line, in this process unless the case needs its own. */
async function runTsetcdctl(testCase: CtlCase, identity: Identity): Promise<CommandResult> {
  const args = argsFor(testCase, identity);
  const env = envFor(testCase, identity);
  const options = { stdin: testCase.stdin, env };
  if (testCase.ownProcess === true) return runCommand(process.execPath, [tsetcdctlBinPath, ...args], options);
  // A command that does not end is reported as etcdctl's would be once killed at its timeout
  // (its run is left behind: tsetcdctl in this process cannot be killed alone).
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), etcdctlTimeoutMsDefault);
  });
  const { runCaptured } = await (ctl ??= loadCtl());
  const ran = await Promise.race([
    runCaptured(args, { env: { ...process.env, ...env }, stdin: testCase.stdin }),
    timedOut,
  ]).finally(() => clearTimeout(timer));
  if (ran === undefined) return { stdout: '', stderr: '', code: null };
  const result = { stdout: ran.stdout.toString('utf8'), stderr: ran.stderr.toString('utf8'), code: ran.code };
  return Object.defineProperty(result, 'stdoutBytes', { value: ran.stdout, enumerable: false });
}

/** Schedules every case in order against the three sides (see schedule). */
export function runCases(cases: readonly CtlCase[], sides: Sides): Map<CtlCase, Promise<Runs>> {
  const { identities } = sides;
  return schedule(cases, async (testCase) => {
    // tsetcdctl runs in this process (its whole code path but Node's start, which other tests
    // cover), unless the case needs a process of its own. The middle leg, tsetcdctl against a
    // second etcd, tells a tsetcdctl difference from a server one.
    const results = await Promise.all([
      runCommand(etcdctlBinaryPath, argsFor(testCase, identities[0]), {
        stdin: testCase.stdin,
        env: envFor(testCase, identities[0]),
      }),
      runTsetcdctl(testCase, identities[1]),
      runTsetcdctl(testCase, identities[2]),
    ]);
    results.forEach((result, index) => capture(testCase, result, identities[index] ?? identities[0]));
    return results;
  });
}

/**
 * One subject's answer and the reference's, both normalised; when they differ and etcdctl's own
 * answer varies (referenceVaries), etcdctl runs again and an equal answer is taken instead.
 */
export async function comparedAnswers(
  testCase: CtlCase,
  results: Runs,
  sides: Sides,
  index: 1 | 2,
): Promise<{ readonly answer: CommandResult; readonly expected: CommandResult }> {
  const [referenceIdentity, subjectIdentity] = [sides.identities[0], sides.identities[index]];
  const answer = normalise(results[index], subjectIdentity, testCase);
  const expected = normalise(results[0], referenceIdentity, testCase);
  if (testCase.referenceVaries === undefined || isDeepStrictEqual(answer, expected)) return { answer, expected };
  const options = { stdin: testCase.stdin, env: envFor(testCase, referenceIdentity) };
  for (let rerun = 0; rerun < referenceReruns; rerun += 1) {
    const again = await runCommand(etcdctlBinaryPath, argsFor(testCase, referenceIdentity), options);
    const normalised = normalise(again, referenceIdentity, testCase);
    if (isDeepStrictEqual(answer, normalised)) return { answer, expected: normalised };
  }
  return { answer, expected };
}
