/**
 * The checks a member makes of --initial-cluster before it writes its first WAL, against etcd 3.4
 * (--logger zap): it must be named there, no peer URL may appear twice, and for a new cluster its
 * entry must hold the peer URLs it advertises, where a host name counts as the address it resolves
 * to. A member that already has a WAL is not checked, as in etcd. etcdctl's snapshot restore makes
 * the same checks, so its transcripts are compared too.
 *
 * Each side runs in a network namespace made for the run, whose resolv.conf names a DNS server
 * the test starts there: peer.test resolves to 127.0.0.1, nohost.test does not exist and broken.test
 * answers SERVFAIL. etcd looks a failing name up again every second for 30 s, so those cases take
 * that long, side by side. Needs root and `ip netns` (skips with the reason).
 */
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { DnsZone } from '../support/dns-server.js';
import { runCommand, type CommandResult } from '../support/etcdctl.js';
import { LoopbackNamespace, namespaceSupport } from '../support/loopback-namespace.js';
import { logRecords, startStages, type LogRecord } from '../support/start-milestones.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, tsetcdctlBinPath, type MemberCommand } from '../support/sut.js';

const here = dirname(fileURLToPath(import.meta.url));
const dnsServerMain = join(here, '..', 'support', 'dns-server.js');

const zone: DnsZone = { a: { 'peer.test': ['127.0.0.1'] }, serverFailure: ['broken.test'] };

/** Longer than etcd's 30 s of lookups, for the cases that wait them out. */
const startWaitMs = 60_000;
const logPollMs = 100;

/** One start story: the flags (P stands for the member's peer port, C for its client port), and whether it serves. */
interface StartCase {
  title: string;
  flags: string[];
  serves: boolean;
  /** Its host names never resolve, so each side looks them up for etcd's 30 s. */
  lookupsFail?: boolean;
  /** Starts once with these flags first, stops, then starts with `flags` on the same data dir. */
  firstFlags?: string[];
}

const startCases: readonly StartCase[] = [
  {
    title: 'localhost in --initial-cluster, 127.0.0.1 advertised',
    flags: ['--initial-advertise-peer-urls', 'http://127.0.0.1:P', '--initial-cluster', 'm=http://localhost:P'],
    serves: false,
  },
  {
    title: 'the member is not named in --initial-cluster',
    flags: ['--initial-advertise-peer-urls', 'http://127.0.0.1:P', '--initial-cluster', 'other=http://127.0.0.1:P'],
    serves: false,
  },
  {
    title: 'a peer URL twice in --initial-cluster',
    flags: [
      ...['--initial-advertise-peer-urls', 'http://127.0.0.1:P'],
      ...['--initial-cluster', 'm=http://127.0.0.1:P,other=http://127.0.0.1:P'],
    ],
    serves: false,
  },
  {
    title: 'a second advertised URL missing from --initial-cluster',
    flags: [
      ...['--initial-advertise-peer-urls', 'http://127.0.0.1:P,http://127.0.0.2:P'],
      ...['--initial-cluster', 'm=http://127.0.0.1:P,m=http://127.0.0.3:P'],
    ],
    serves: false,
  },
  {
    title: 'more URLs in --initial-cluster than advertised',
    flags: [
      ...['--initial-advertise-peer-urls', 'http://127.0.0.1:P'],
      ...['--initial-cluster', 'm=http://127.0.0.1:P,m=http://127.0.0.2:P'],
    ],
    serves: false,
  },
  {
    title: 'an advertised host name that resolves to the --initial-cluster address',
    flags: ['--initial-advertise-peer-urls', 'http://peer.test:P', '--initial-cluster', 'm=http://127.0.0.1:P'],
    serves: true,
  },
  {
    title: 'an advertised host name that resolves elsewhere',
    flags: ['--initial-advertise-peer-urls', 'http://peer.test:P', '--initial-cluster', 'm=http://127.0.0.2:P'],
    serves: false,
  },
  {
    title: 'an advertised host name that does not exist',
    flags: ['--initial-advertise-peer-urls', 'http://nohost.test:P', '--initial-cluster', 'm=http://127.0.0.1:P'],
    serves: false,
    lookupsFail: true,
  },
  {
    title: 'a host name in --initial-cluster whose name server fails',
    flags: ['--initial-advertise-peer-urls', 'http://127.0.0.1:P', '--initial-cluster', 'm=http://broken.test:P'],
    serves: false,
    lookupsFail: true,
  },
  {
    title: 'joining an existing cluster with a peer URL twice',
    flags: [
      ...['--initial-cluster-state', 'existing', '--initial-advertise-peer-urls', 'http://127.0.0.1:P'],
      ...['--initial-cluster', 'm=http://127.0.0.1:P,other=http://127.0.0.1:P'],
    ],
    serves: false,
  },
  {
    title: 'a restart with a WAL, whatever --initial-cluster now says',
    firstFlags: ['--initial-advertise-peer-urls', 'http://127.0.0.1:P', '--initial-cluster', 'm=http://127.0.0.1:P'],
    flags: ['--initial-advertise-peer-urls', 'http://127.0.0.1:P', '--initial-cluster', 'm=http://localhost:P'],
    serves: true,
  },
];

/** etcdctl snapshot restore lines: the checks come before the file is opened, so no snapshot is needed. */
const restoreCases: readonly (readonly string[])[] = [
  ['--initial-advertise-peer-urls', 'http://peer.test:2380', '--initial-cluster', 'default=http://127.0.0.1:2380'],
  ['--initial-advertise-peer-urls', 'http://peer.test:2380', '--initial-cluster', 'default=http://127.0.0.2:2380'],
  ['--initial-advertise-peer-urls', 'http://127.0.0.1:2380', '--initial-cluster', 'default=http://localhost:2380'],
  ['--initial-advertise-peer-urls', 'http://127.0.0.1:2380,http://127.0.0.1:2381'],
  ['--initial-cluster', 'default=http://localhost:2380,x=http://localhost:2380'],
  ['--initial-advertise-peer-urls', 'http://nohost.test:2380'],
];

/** What one start showed: how it ended (or that it served), and its log's records. */
interface StartResult {
  served: boolean;
  exitCode: number | null;
  records: LogRecord[];
}

const servingMessages = new Set(
  Object.entries(startStages)
    .filter(([, stage]) => stage === 'serving clients')
    .map(([message]) => message),
);

/** The fields compared: etcd's message and error, and the lookup lines' own fields. */
function comparable(records: readonly LogRecord[]): string[] {
  const lookupLines = records
    .filter((record) => /URL Host/.test(record.msg))
    .map((record) => {
      const { level, msg, url, host, error } = record;
      return JSON.stringify({
        level,
        msg,
        url,
        host,
        error,
        resolved: record['resolved-addr'],
        retry: record['retry-interval'],
      });
    });
  // A failing name is looked up about 30 times; the count depends on timing, so repeats collapse.
  const collapsed = lookupLines.filter((line, index) => line !== lookupLines[index - 1]);
  const failures = records
    .filter((record) => record.msg === 'failed to start etcd' || record.msg === 'discovery failed')
    .map((record) => JSON.stringify({ level: record.level, msg: record.msg, error: record.error }));
  return [...collapsed, ...failures];
}

const sut = sutCommand();
const unsupported = namespaceSupport() || sut.skipReason;

describe('--initial-cluster is checked before the first WAL as etcd checks it', { skip: unsupported || false }, () => {
  /** etcd's side, then tsetcd's: each with its own DNS server and port space. */
  const namespaces: LoopbackNamespace[] = [];
  let workDir = '';
  const starts = new Map<string, [StartResult, StartResult]>();
  const restores = new Map<string, [CommandResult, CommandResult]>();

  /** Starts a member in the namespace and waits until it serves clients or exits; a serving member is stopped. */
  async function startMember(
    ns: LoopbackNamespace,
    command: MemberCommand,
    dataDir: string,
    logPath: string,
    ports: { client: number; peer: number },
    flags: readonly string[],
  ): Promise<StartResult> {
    const logFd = openSync(logPath, 'w');
    let child: ChildProcess;
    try {
      child = ns.spawn(
        command.command,
        [
          ...command.args,
          ...['--logger', 'zap', '--name', 'm', '--data-dir', dataDir],
          ...['--listen-client-urls', `http://127.0.0.1:${ports.client}`],
          ...['--advertise-client-urls', `http://127.0.0.1:${ports.client}`],
          ...['--listen-peer-urls', `http://127.0.0.1:${ports.peer}`],
          ...flags.map((flag) => flag.replace(/:P\b/g, `:${ports.peer}`)),
        ],
        logFd,
      );
    } finally {
      closeSync(logFd);
    }
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const readRecords = (): LogRecord[] => logRecords(readFileSync(logPath, 'utf8'));
    const deadline = Date.now() + startWaitMs;
    while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
      if (readRecords().some((record) => servingMessages.has(record.msg))) {
        child.kill('SIGTERM');
        await exited;
        return { served: true, exitCode: null, records: readRecords() };
      }
      await sleep(logPollMs);
    }
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
      assert.fail(
        `${command.label} neither served nor exited in ${startWaitMs} ms:\n${readFileSync(logPath, 'utf8').slice(-3000)}`,
      );
    }
    return { served: false, exitCode: await exited, records: readRecords() };
  }

  async function runStartCase(
    ns: LoopbackNamespace,
    command: MemberCommand,
    startCase: StartCase,
    position: number,
  ): Promise<StartResult> {
    // Each side has a namespace of its own, so both use the same ports and their logs compare as they are.
    const ports = { client: 20_000 + position * 2, peer: 20_001 + position * 2 };
    const dataDir = join(workDir, `${command.label}-${position}`);
    if (startCase.firstFlags !== undefined) {
      const first = await startMember(ns, command, dataDir, `${dataDir}-first.log`, ports, startCase.firstFlags);
      assert.ok(first.served, `${command.label}'s first start must serve`);
    }
    return startMember(ns, command, dataDir, `${dataDir}.log`, ports, startCase.flags);
  }

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'tsetcd-initial-cluster-'));
    for (let side = 0; side < 2; side++) {
      const made = LoopbackNamespace.create(['127.0.0.1']);
      namespaces.push(made);
      const dns = made.spawn(process.execPath, [dnsServerMain, JSON.stringify(zone)]);
      await new Promise<void>((resolve, reject) => {
        dns.stdout?.once('data', () => resolve());
        dns.once('exit', (code) => reject(new Error(`the DNS server exited (${code}) before it was ready`)));
      });
    }
    const [etcdSide, oursSide] = namespaces as [LoopbackNamespace, LoopbackNamespace];
    const etcd = etcdCommand();
    const tsetcd = sut.command;
    assert.ok(tsetcd !== undefined, sut.skipReason);
    const runStart = async (startCase: StartCase, position: number) => {
      const results = await Promise.all([
        runStartCase(etcdSide, etcd, startCase, position),
        runStartCase(oursSide, tsetcd, startCase, position),
      ]);
      starts.set(startCase.title, results);
    };
    const runRestore = async (flags: readonly string[], position: number) => {
      const run = (ns: LoopbackNamespace, command: string, args: string[], side: string) => {
        const restore = ['snapshot', 'restore', join(workDir, 'no-such.db')];
        const dataDir = ['--data-dir', join(workDir, `restore-${side}-${position}`)];
        const wrapped = ns.wrap(command, [...args, ...restore, ...dataDir, ...flags]);
        return runCommand(wrapped.command, wrapped.args, { env: { ETCDCTL_API: '3' } });
      };
      restores.set(
        flags.join(' '),
        await Promise.all([
          run(etcdSide, etcdctlBinaryPath, [], 'etcd'),
          run(oursSide, process.execPath, [tsetcdctlBinPath], 'ts'),
        ]),
      );
    };
    // The cases whose lookups fail wait out etcd's 30 s side by side, idle; the others run one
    // after another meanwhile, so the suite's other files do not meet a burst of starting members.
    const waiting = [
      ...startCases.flatMap((startCase, position) => (startCase.lookupsFail ? [runStart(startCase, position)] : [])),
      ...restoreCases.flatMap((flags, position) =>
        flags.some((flag) => flag.includes('nohost')) ? [runRestore(flags, position)] : [],
      ),
    ];
    for (const [position, startCase] of startCases.entries())
      if (!startCase.lookupsFail) await runStart(startCase, position);
    for (const [position, flags] of restoreCases.entries())
      if (!flags.some((flag) => flag.includes('nohost'))) await runRestore(flags, position);
    await Promise.all(waiting);
  });

  after(async () => {
    for (const made of namespaces) made.remove();
    if (workDir !== '') await rm(workDir, { recursive: true, force: true });
  });

  for (const startCase of startCases)
    it(`starts or refuses as etcd does: ${startCase.title}`, () => {
      const results = starts.get(startCase.title);
      assert.ok(results !== undefined, 'expected every case to have run in before()');
      const [reference, ours] = results;
      assert.equal(reference.served, startCase.serves, `etcd ${startCase.serves ? 'serves' : 'refuses'} here`);
      assert.equal(ours.served, reference.served);
      assert.equal(ours.exitCode, reference.exitCode);
      assert.deepEqual(comparable(ours.records), comparable(reference.records));
    });

  for (const flags of restoreCases)
    it(`snapshot restore checks as etcdctl does: ${flags.join(' ')}`, () => {
      const results = restores.get(flags.join(' '));
      assert.ok(results !== undefined, 'expected every restore line to have run in before()');
      const clean = (result: CommandResult): CommandResult => {
        const text = (stream: string) =>
          stream
            .replace(/"ts":[0-9.]+/g, '"ts":<ts>')
            .replaceAll(workDir, '<dir>')
            .replace(/restore-(etcd|ts)-/g, 'restore-');
        return { stdout: text(result.stdout), stderr: text(result.stderr), code: result.code };
      };
      // A name that never resolves is looked up about 30 times; the count depends on timing.
      const collapse = (result: CommandResult): CommandResult => ({
        ...result,
        stderr: result.stderr
          .split('\n')
          .filter((line, index, lines) => line !== lines[index - 1])
          .join('\n'),
      });
      assert.deepEqual(collapse(clean(results[1])), collapse(clean(results[0])));
    });
});
