/**
 * Short host names through resolv.conf's `search` list and `options ndots:N`, against etcdctl:
 * inside a network namespace made for the run, a DNS server on 127.0.0.1:53 serves A and SRV
 * records only under the search domains (a.test, b.test), plus a decoy A record for a dotted short
 * name itself, which points where nothing listens. The same command lines (endpoints given by
 * short names, --discovery-srv with a short domain) run through etcdctl and tsetcdctl against one
 * etcd, first with ndots:2 (a name with fewer dots tries the search list before the name as
 * given) and then with ndots:1 (a dotted name is tried as given first and meets the decoy): the
 * same endpoints must be reached, with the same output, errors and exit codes. Needs root and
 * `ip netns` (skips with the reason).
 */
import assert from 'node:assert/strict';
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
import { etcdCommand, etcdctlBinaryPath, tsetcdctlBinPath } from '../support/sut.js';

const here = dirname(fileURLToPath(import.meta.url));
const dnsServerMain = join(here, '..', 'support', 'dns-server.js');

/** The namespace has a port space of its own, so fixed ports cannot collide with other runs. */
const clientPort = 12379;
const peerPort = 12380;
/** Probes of the starting member (each an etcdctl run of at most a few seconds) before giving up. */
const healthProbesMax = 150;
const healthProbeIntervalMs = 200;
const searchLine = 'search a.test b.test';

/**
 * m, n and s.short live only under the search domains; m.x under a.test, and as given (m.x.) at
 * 127.0.0.2, where nothing listens. The SRV records of `short` and `two.x` exist only under a
 * search domain; two.x's names the short target m.
 */
const zone: DnsZone = {
  a: {
    'm.b.test': ['127.0.0.1'],
    'n.b.test': ['127.0.0.1'],
    'm.x.a.test': ['127.0.0.1'],
    'm.x': ['127.0.0.2'],
  },
  srv: {
    '_etcd-client._tcp.short.b.test': [{ priority: 0, weight: 0, port: clientPort, target: 'm.b.test' }],
    '_etcd-client._tcp.two.x.a.test': [{ priority: 0, weight: 0, port: clientPort, target: 'm' }],
  },
};

/** Each command line runs under each ndots setting; P stands for the member's client port. */
const commandLines: readonly (readonly string[])[] = [
  ['--endpoints=http://m:P', 'put', 'k', 'v'],
  ['--endpoints=http://m.x:P', 'get', 'k'],
  ['--endpoints=m.x:P', 'get', 'k', '--print-value-only'],
  ['--endpoints=http://m.x.:P', 'get', 'k'],
  ['--endpoints=http://n:P', 'endpoint', 'health'],
  ['--endpoints=http://nothere:P', 'get', 'k'],
  ['--endpoints=http://m.x:P,http://n:P', 'get', 'k', '-w', 'fields'],
  ['--discovery-srv', 'short', 'get', 'k'],
  ['--discovery-srv', 'two.x', 'get', 'k'],
  ['--discovery-srv', 'nothere', 'get', 'k'],
];
const ndotsSettings = [2, 1] as const;

function normalise(result: CommandResult): CommandResult {
  const clean = (text: string): string =>
    text
      // clientv3's retry logs carry timestamps and random client names; tsetcdctl has none.
      .replace(/^\{"level":"warn".*\n/gm, '')
      .replace(/"(ClusterID|MemberID)" : \d+/g, '"$1" : <id>')
      .replace(/took = [0-9.]+(ns|µs|ms|s)/g, 'took = <took>');
  return { stdout: clean(result.stdout), stderr: clean(result.stderr), code: result.code };
}

const unsupported = namespaceSupport();

describe(
  'short names go through the search list as ndots says, as etcdctl has them',
  { skip: unsupported || false },
  () => {
    let namespace: LoopbackNamespace | undefined;
    let workDir = '';
    /** For each ndots setting and command line: etcdctl's result, then tsetcdctl's. */
    const transcripts = new Map<string, [CommandResult, CommandResult]>();
    const key = (ndots: number, line: readonly string[]): string => `ndots:${ndots} ${line.join(' ')}`;

    function inNamespace(ns: LoopbackNamespace, command: string, args: readonly string[]): Promise<CommandResult> {
      const wrapped = ns.wrap(command, args);
      return runCommand(wrapped.command, wrapped.args, { env: { ETCDCTL_API: '3' } });
    }

    before(async () => {
      workDir = await mkdtemp(join(tmpdir(), 'tsetcd-resolv-search-'));
      const ns = LoopbackNamespace.create(['127.0.0.1'], [searchLine, `options ndots:${ndotsSettings[0]}`]);
      namespace = ns;
      const dns = ns.spawn(process.execPath, [dnsServerMain, JSON.stringify(zone)]);
      await new Promise<void>((resolve, reject) => {
        dns.stdout?.once('data', () => resolve());
        dns.once('exit', (code) => reject(new Error(`the DNS server exited (${code}) before it was ready`)));
      });
      const etcd = etcdCommand();
      const peer = `http://127.0.0.1:${peerPort}`;
      const log = join(workDir, 'etcd.log');
      const logFd = openSync(log, 'w');
      const child = ns.spawn(
        etcd.command,
        [
          ...etcd.args,
          ...['--name', 'search', '--data-dir', join(workDir, 'data')],
          ...['--listen-client-urls', `http://127.0.0.1:${clientPort}`],
          ...['--advertise-client-urls', `http://127.0.0.1:${clientPort}`],
          ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer],
          ...['--initial-cluster', `search=${peer}`],
        ],
        logFd,
      );
      closeSync(logFd);
      let healthy = false;
      for (let probe = 0; probe < healthProbesMax && !healthy && child.exitCode === null; probe++) {
        healthy =
          (await inNamespace(ns, etcdctlBinaryPath, [`--endpoints=127.0.0.1:${clientPort}`, 'endpoint', 'health']))
            .code === 0;
        if (!healthy) await sleep(healthProbeIntervalMs);
      }
      assert.ok(healthy, `etcd did not become healthy; its log:\n${readFileSync(log, 'utf8').slice(-3000)}`);
      // In order (the put comes first); each client after the other, so both see the same store.
      for (const ndots of ndotsSettings) {
        ns.writeResolvConf(['127.0.0.1'], [searchLine, `options ndots:${ndots}`]);
        for (const line of commandLines) {
          const args = ['--dial-timeout=2s', ...line.map((arg) => arg.replace(/:P\b/g, `:${clientPort}`))];
          const reference = await inNamespace(ns, etcdctlBinaryPath, args);
          const ours = await inNamespace(ns, process.execPath, [tsetcdctlBinPath, ...args]);
          transcripts.set(key(ndots, line), [reference, ours]);
        }
      }
    });

    after(async () => {
      namespace?.remove();
      if (workDir !== '') await rm(workDir, { recursive: true, force: true });
    });

    for (const ndots of ndotsSettings)
      for (const line of commandLines)
        it(`answers like etcdctl with ndots:${ndots}: ${line.join(' ')}`, () => {
          const results = transcripts.get(key(ndots, line));
          assert.ok(results !== undefined, 'expected every command line to have run in before()');
          assert.deepEqual(normalise(results[1]), normalise(results[0]));
        });

    it('reaches the member through the search list only where ndots puts the list first', () => {
      // Guards the comparison itself: the decoy must decide m.x's fate, one way for each setting.
      const reached = (ndots: number): number | null | undefined =>
        transcripts.get(key(ndots, ['--endpoints=http://m.x:P', 'get', 'k']))?.[0].code;
      assert.equal(reached(2), 0);
      assert.equal(reached(1), 1);
    });
  },
);
