/**
 * tsetcdctl against etcdctl: the same command lines run through /usr/bin/etcdctl against one
 * real etcd and through tsetcdctl against a second, identical one; stdout, stderr and the exit
 * code must agree once member and cluster IDs, ports and timings are normalised.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, etcdctlBinaryPath } from '../support/sut.js';
import { ctlCases, type CtlCase } from './cases.js';

const compiledMain = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ctl', 'main.js');
const loader = `import(${JSON.stringify(compiledMain)}).then((m) => m.run(process.argv.slice(1)))`;

/** What varies between two members (and two runs) without being a difference in behaviour. */
interface Identity {
  readonly endpoint: string;
  readonly ids: readonly string[];
}

function normalise(result: CommandResult, identity: Identity): CommandResult {
  const clean = (text: string): string => {
    let out = text.split(identity.endpoint).join('<endpoint>');
    for (const id of identity.ids) out = out.split(id).join('<id>');
    return (
      out
        // clientv3's retry logs carry timestamps and random client names; tsetcdctl has none.
        .replace(/^\{"level":"warn".*\n/gm, '')
        .replace(/goroutine 1 \[running\]:\n[\s\S]*$/, 'goroutine 1 [running]:\n')
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
  return { stdout: clean(result.stdout), stderr: clean(result.stderr), code: result.code };
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
  return { endpoint, ids };
}

function argsFor(testCase: CtlCase, identity: Identity): string[] {
  return testCase.ownEndpoints === true ? [...testCase.args] : [`--endpoints=${identity.endpoint}`, ...testCase.args];
}

/** Commands that change the keyspace; every other case may run alongside its neighbours. */
const mutatingCommands = new Set(['put', 'del', 'txn', 'compaction']);
/** Command pairs in flight at once; node start-up dominates, and the machine is shared. */
const pairsInFlightMax = 3;

type Pair = readonly [expected: CommandResult, actual: CommandResult];

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
function schedule(run: (testCase: CtlCase) => Promise<Pair>): Map<CtlCase, Promise<Pair>> {
  const limit = limiter(pairsInFlightMax);
  const scheduled = new Map<CtlCase, Promise<Pair>>();
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
  let subject: Member;
  let referenceIdentity: Identity;
  let subjectIdentity: Identity;
  let pairs: Map<CtlCase, Promise<Pair>>;

  before(async () => {
    [reference, subject] = await Promise.all([
      Member.start({ command: etcdCommand() }),
      Member.start({ command: etcdCommand() }),
    ]);
    [referenceIdentity, subjectIdentity] = await Promise.all([identityOf(reference), identityOf(subject)]);
    pairs = schedule(async (testCase) => {
      const env = { ETCDCTL_API: '3', ...testCase.env };
      return Promise.all([
        runCommand(etcdctlBinaryPath, argsFor(testCase, referenceIdentity), { stdin: testCase.stdin, env }),
        runCommand(process.execPath, ['-e', loader, '--', ...argsFor(testCase, subjectIdentity)], {
          stdin: testCase.stdin,
          env,
        }),
      ]);
    });
  });

  after(async () => {
    if (pairs !== undefined) await Promise.allSettled(pairs.values());
    await Promise.all([reference?.destroy(), subject?.destroy()]);
  });

  for (const testCase of ctlCases) {
    const title = `etcdctl ${testCase.args.join(' ')}${testCase.stdin !== undefined ? ` <<< ${JSON.stringify(testCase.stdin)}` : ''}`;
    it(`answers like ${title}`, async () => {
      const pair = pairs.get(testCase);
      assert.ok(pair !== undefined, 'expected every case to be scheduled in before()');
      const [expected, actual] = await pair;
      assert.deepEqual(normalise(actual, subjectIdentity), normalise(expected, referenceIdentity));
    });
  }
});
