/**
 * tsetcdctl against etcdctl: the same command lines run through /usr/bin/etcdctl against one
 * real etcd (the reference), through tsetcdctl against a second real etcd, and through tsetcdctl
 * against tsetcd; stdout, stderr and the exit code must agree once member, cluster and lease IDs,
 * ports and timings are normalised.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { runCommand, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { protobufText } from '../support/proto-text.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, tsetcdctlBinPath } from '../support/sut.js';
import { loadCtl } from '../../ctl/bundle-loader.cjs';
import { ctlCases, referenceReruns, type CtlCase } from './cases.js';

// tsetcdctl as bin/tsetcdctl.cjs loads it: the bundle when the build made one, so the cases check
// the bundled code path (test/ctl/startup-modules.test.ts checks the bundle is what runs).
const { runCaptured } = await loadCtl();

/** What varies between two members (and two runs) without being a difference in behaviour. */
interface Identity {
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

function normalise(result: CommandResult, identity: Identity, testCase: CtlCase): CommandResult {
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
        // A lease's remaining TTL depends on when the member was asked.
        .replace(/remaining\(\d+s\)/g, 'remaining(<ttl>s)')
        .replace(/"ttl":\d+,"granted-ttl"/g, '"ttl":<ttl>,"granted-ttl"')
        .replace(/"TTL" : \d+\n"GrantedTTL"/g, '"TTL" : <ttl>\n"GrantedTTL"')
        .replace(/took = [0-9.]+(ns|µs|ms|s)/g, 'took = <took>')
        .replace(/"took":"[^"]*"/g, '"took":"<took>"')
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
      : protobufText(protobufType, result.stdoutBytes ?? Buffer.from(result.stdout));
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

/** Remembers the ID a case's answer names (as hex), for later command lines and for normalising. */
function capture(testCase: CtlCase, result: CommandResult, identity: Identity): void {
  if (testCase.capture === undefined) return;
  const { name, pattern, radix } = testCase.capture;
  const found = pattern.exec(result.stdout)?.[1];
  assert.ok(found !== undefined, `expected ${String(pattern)} in ${result.stdout}${result.stderr}`);
  const value = BigInt(radix === 10 ? found : `0x${found}`);
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
]);
/** Command triples in flight at once; etcdctl's start-up dominates, and the machine is shared. */
const pairsInFlightMax = 3;

/** etcdctl against etcd, tsetcdctl against etcd, tsetcdctl against tsetcd. */
type Runs = readonly [expected: CommandResult, againstEtcd: CommandResult, againstTsetcd: CommandResult];

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
function schedule(run: (testCase: CtlCase) => Promise<Runs>): Map<CtlCase, Promise<Runs>> {
  const limit = limiter(pairsInFlightMax);
  const scheduled = new Map<CtlCase, Promise<Runs>>();
  let barrier: Promise<unknown> = Promise.resolve();
  let sinceBarrier: Promise<unknown>[] = [];
  for (const testCase of ctlCases) {
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

describe('tsetcdctl prints what etcdctl prints', () => {
  let reference: Member;
  let etcdSubject: Member;
  let tsetcdSubject: Member;
  let identities: [reference: Identity, etcd: Identity, tsetcd: Identity];
  let runs: Map<CtlCase, Promise<Runs>>;

  before(async () => {
    const tsetcd = sutCommand().command;
    assert.ok(tsetcd !== undefined, 'expected tsetcd to be built');
    [reference, etcdSubject, tsetcdSubject] = await Promise.all([
      Member.start({ command: etcdCommand() }),
      Member.start({ command: etcdCommand() }),
      Member.start({ command: tsetcd }),
    ]);
    identities = await Promise.all([identityOf(reference), identityOf(etcdSubject), identityOf(tsetcdSubject)]);
    runs = schedule(async (testCase) => {
      // tsetcdctl runs in this process (its whole code path but Node's start, which other tests
      // cover), unless the case needs a process of its own.
      const tsetcdctl = async (identity: Identity): Promise<CommandResult> => {
        const args = argsFor(testCase, identity);
        const env = envFor(testCase, identity);
        const options = { stdin: testCase.stdin, env };
        if (testCase.ownProcess === true) return runCommand(process.execPath, [tsetcdctlBinPath, ...args], options);
        const ran = await runCaptured(args, { env: { ...process.env, ...env }, stdin: testCase.stdin });
        const result = { stdout: ran.stdout.toString('utf8'), stderr: ran.stderr.toString('utf8'), code: ran.code };
        return Object.defineProperty(result, 'stdoutBytes', { value: ran.stdout, enumerable: false });
      };
      // The middle leg, tsetcdctl against a second etcd, tells a tsetcdctl difference from a server one.
      const results = await Promise.all([
        runCommand(etcdctlBinaryPath, argsFor(testCase, identities[0]), {
          stdin: testCase.stdin,
          env: envFor(testCase, identities[0]),
        }),
        tsetcdctl(identities[1]),
        tsetcdctl(identities[2]),
      ]);
      results.forEach((result, index) => capture(testCase, result, identities[index] ?? identities[0]));
      return results;
    });
  });

  after(async () => {
    if (runs !== undefined) await Promise.allSettled(runs.values());
    await Promise.all([reference?.destroy(), etcdSubject?.destroy(), tsetcdSubject?.destroy()]);
  });

  for (const testCase of ctlCases) {
    const title = `etcdctl ${testCase.args.join(' ')}${testCase.stdin !== undefined ? ` <<< ${JSON.stringify(testCase.stdin)}` : ''}`;
    const compare = async (index: 1 | 2): Promise<void> => {
      const scheduled = runs.get(testCase);
      assert.ok(scheduled !== undefined, 'expected every case to be scheduled in before()');
      // Later cases may capture IDs this answer shows, so every answer is in before any is compared.
      await Promise.allSettled(runs.values());
      const results = await scheduled;
      const [expected, actual] = [results[0], results[index]];
      const [referenceIdentity, subjectIdentity] = [identities[0], identities[index]];
      const answer = normalise(actual, subjectIdentity, testCase);
      if (
        testCase.referenceVaries !== undefined &&
        !isDeepStrictEqual(answer, normalise(expected, referenceIdentity, testCase))
      ) {
        const options = { stdin: testCase.stdin, env: envFor(testCase, referenceIdentity) };
        for (let rerun = 0; rerun < referenceReruns; rerun += 1) {
          const again = await runCommand(etcdctlBinaryPath, argsFor(testCase, referenceIdentity), options);
          if (isDeepStrictEqual(answer, normalise(again, referenceIdentity, testCase))) return;
        }
      }
      assert.deepEqual(answer, normalise(expected, referenceIdentity, testCase));
    };
    it(`answers like ${title} (against etcd)`, () => compare(1));
    if (testCase.tsetcdDiffers === undefined) it(`answers like ${title} (against tsetcd)`, () => compare(2));
    else void it.skip(`answers like ${title} (against tsetcd: ${testCase.tsetcdDiffers})`);
  }
});
