/**
 * How tsetcdctl finds and dials endpoints, against etcdctl: DNS SRV discovery (--discovery-srv,
 * --discovery-srv-name, --insecure-discovery, ETCDCTL_DISCOVERY_SRV) through the system resolver,
 * failover along lists that mix IPv4, IPv6 and host names of either family, and --dial-timeout
 * and --command-timeout towards an endpoint that refuses or never answers (a blackholed address)
 * or whose name the DNS server never answers (tsetcdctl must then exit when it has printed the
 * error, not when the system resolver gives up). Over TLS too: each member also serves https with
 * a certificate of the test CA, found through _etcd-client-ssl SRV records, and the certificate
 * is checked against the SRV target, or with --insecure-discovery=false against the domain.
 *
 * Everything runs inside one network namespace made for the run: a DNS server on 127.0.0.1:53
 * (the namespace's resolv.conf names it), a reference etcd, a second etcd and a tsetcd, each
 * served under a domain of its own. Each case runs etcdctl against the reference, tsetcdctl
 * against the second etcd and tsetcdctl against tsetcd; stdout, stderr and exit codes must agree
 * once the domain, the port and timings are normalised. Needs root (skips with the reason).
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
import type { DnsZone, SrvRecord } from '../support/dns-server.js';
import { runCommand, type CommandResult } from '../support/etcdctl.js';
import { LoopbackNamespace, namespaceSupport } from '../support/loopback-namespace.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, tsetcdctlBinPath, type MemberCommand } from '../support/sut.js';
import { hasOpenssl, makeCertificates, type TestCertificates } from '../support/tls.js';

const here = dirname(fileURLToPath(import.meta.url));
const dnsServerMain = join(here, '..', 'support', 'dns-server.js');

/** Probes of a starting member (each an etcdctl run of at most a few seconds) before giving up. */
const healthProbesMax = 150;
const healthProbeIntervalMs = 200;
/** The blackholed address: its packets leave on a veth whose other end drops them. */
const blackholedAddress = '10.99.0.2';
/**
 * How long the system resolver (getaddrinfo) asks a server that never answers before it gives up:
 * resolv.conf's defaults, 5 s per query and 2 attempts (the namespace's resolv.conf sets neither).
 */
const systemResolverTimeoutMs = 5_000 * 2;

/** One side of the comparison: the client, the member it talks to and the domain serving it. */
interface Side {
  readonly label: string;
  readonly client: 'etcdctl' | 'tsetcdctl';
  readonly member: MemberCommand;
  readonly domain: string;
  readonly port: number;
  /** The member's https client port; its certificate is valid for ok.D, s.ok.D and bare.D only. */
  readonly tlsPort: number;
}

/** A case's command line; D stands for the side's domain, P for its member's client port, CA for the test CA. */
interface EndpointCase {
  readonly args: readonly string[];
  readonly env?: Record<string, string>;
}

const cases: readonly EndpointCase[] = [
  // Discovery: a dead endpoint first (priority 0), the member after it (priority 10).
  { args: ['--discovery-srv', 'D', 'put', 'k', 'v'] },
  { args: ['--discovery-srv', 'D', 'get', 'k'] },
  { args: ['get', 'k'], env: { ETCDCTL_DISCOVERY_SRV: 'D' } },
  // _etcd-client-blue._tcp.D names a host with only an IPv6 address.
  { args: ['--discovery-srv', 'D', '--discovery-srv-name', 'blue', 'get', 'k', '-w', 'fields'] },
  { args: ['--discovery-srv', 'D', '--insecure-discovery=false', '--command-timeout=1s', 'get', 'k'] },
  { args: ['--discovery-srv', 'none.test', 'get', 'k'] },
  { args: ['--discovery-srv', 'none.test', 'get'] },
  { args: ['--discovery-srv', 'none.test', 'version'] },
  { args: ['--discovery-srv', 'fail.test', 'put', 'k', 'v'] },
  // A DNS server that never answers: Go's 5 s per query, 2 attempts, for each of the two services.
  { args: ['--discovery-srv', 'silent.test', 'get', 'k'] },
  { args: ['--discovery-srv', 'D', 'endpoint', 'health', '--cluster'] },
  { args: ['--discovery-srv', 'none.test', '--command-timeout=1s', 'endpoint', 'health'] },
  { args: ['--discovery-srv', 'gone.D', '--user=root:x', '--dial-timeout=1s', 'get', 'k'] },
  { args: ['--discovery-srv', 'hole.D', '--command-timeout=1s', 'get', 'k'] },
  // Timeouts towards an address that never answers.
  { args: [`--endpoints=${blackholedAddress}:P`, '--command-timeout=1s', 'get', 'k'] },
  { args: [`--endpoints=${blackholedAddress}:P`, '--user=root:x', '--dial-timeout=1s', 'get', 'k'] },
  { args: [`--endpoints=${blackholedAddress}:P`, '--dial-timeout=1s', '--command-timeout=2s', 'endpoint', 'status'] },
  // Failover along a list: past a blackholed address, a refusing IPv4 name, refusing literals.
  { args: [`--endpoints=${blackholedAddress}:P,127.0.0.1:P`, 'get', 'k'] },
  { args: ['--endpoints=http://dead.D:1,http://v6.D:P', 'get', 'k'] },
  { args: ['--endpoints=[::1]:1,127.0.0.1:1,[::1]:P', 'put', 'k', 'w'] },
  { args: ['--endpoints=http://v6.D:P,http://m.D:P', 'get', 'k', '--print-value-only'] },
  // A host name the DNS server never answers: the dial gives up at its timeout, long before the resolver.
  { args: ['--endpoints=http://m.silent.test:P', '--dial-timeout=1s', '--command-timeout=1s', 'get', 'k'] },
  // TLS endpoints from _etcd-client-ssl records (https). etcdctl 3.4's --insecure-discovery is on by
  // default: http records are kept and each endpoint's certificate is checked against its SRV
  // target; with --insecure-discovery=false against the domain. ok.D and its target s.ok.D are in
  // the certificate; bare.D is, its target t.bare.D is not; named.D is not, its target s.ok.D is.
  { args: ['--discovery-srv', 'ok.D', '--cacert', 'CA', 'get', 'k'] },
  { args: ['--discovery-srv', 'ok.D', '--cacert', 'CA', '--insecure-discovery=false', 'get', 'k'] },
  { args: ['--discovery-srv', 'ok.D', '--cacert', 'CA', '--discovery-srv-name', 'blue', 'put', 'k', 'tls'] },
  { args: ['--discovery-srv', 'bare.D', '--cacert', 'CA', '--insecure-discovery=false', 'get', 'k', '-w', 'fields'] },
  { args: ['--discovery-srv', 'bare.D', '--cacert', 'CA', '--dial-timeout=1s', 'get', 'k'] },
  {
    args: [
      '--discovery-srv',
      'named.D',
      '--cacert',
      'CA',
      '--insecure-discovery=false',
      '--dial-timeout=1s',
      'get',
      'k',
    ],
  },
  { args: ['--discovery-srv', 'named.D', '--cacert', 'CA', 'get', 'k', '--print-value-only'] },
  // Without the CA the system's roots do not know the certificate; --insecure-skip-tls-verify accepts it.
  { args: ['--discovery-srv', 'ok.D', '--insecure-discovery=false', '--dial-timeout=1s', 'get', 'k'] },
  { args: ['--discovery-srv', 'ok.D', '--insecure-discovery=false', '--insecure-skip-tls-verify', 'get', 'k'] },
  { args: ['--discovery-srv', 'ok.D', '--cacert', 'CA', 'endpoint', 'health', '--cluster'] },
  {
    args: [
      '--discovery-srv',
      'ok.D',
      '--cacert',
      'CA',
      '--insecure-discovery=false',
      'endpoint',
      'health',
      '--cluster',
    ],
  },
  {
    args: ['get', 'k'],
    env: { ETCDCTL_DISCOVERY_SRV: 'bare.D', ETCDCTL_INSECURE_DISCOVERY: 'false', ETCDCTL_CACERT: 'CA' },
  },
];

/** The case whose endpoint's name the DNS server never answers. */
const silentNameCase = cases.find((testCase) => testCase.args.includes('--endpoints=http://m.silent.test:P'));

/** The zone serving one side's domain `d`, whose member listens on `port`. */
function sideZone(d: string, port: number, tlsPort: number): Required<Pick<DnsZone, 'srv' | 'a' | 'aaaa'>> {
  const srv = (priority: number, target: string, at: number): SrvRecord => ({ priority, weight: 0, port: at, target });
  return {
    srv: {
      [`_etcd-client._tcp.${d}`]: [srv(10, `m.${d}`, port), srv(0, `dead.${d}`, 1)],
      [`_etcd-client-blue._tcp.${d}`]: [srv(0, `v6.${d}`, port)],
      [`_etcd-client._tcp.gone.${d}`]: [srv(0, `dead.${d}`, 1)],
      [`_etcd-client._tcp.hole.${d}`]: [srv(0, `hole.${d}`, port)],
      [`_etcd-client-ssl._tcp.ok.${d}`]: [srv(0, `s.ok.${d}`, tlsPort)],
      [`_etcd-client._tcp.ok.${d}`]: [srv(0, `m.${d}`, port)],
      [`_etcd-client-ssl-blue._tcp.ok.${d}`]: [srv(0, `s.ok.${d}`, tlsPort)],
      [`_etcd-client-ssl._tcp.bare.${d}`]: [srv(0, `t.bare.${d}`, tlsPort)],
      [`_etcd-client-ssl._tcp.named.${d}`]: [srv(0, `s.ok.${d}`, tlsPort)],
    },
    a: {
      [`m.${d}`]: ['127.0.0.1'],
      [`dead.${d}`]: ['127.0.0.1'],
      [`hole.${d}`]: [blackholedAddress],
      [`s.ok.${d}`]: ['127.0.0.1'],
      [`t.bare.${d}`]: ['127.0.0.1'],
    },
    aaaa: { [`v6.${d}`]: ['::1'] },
  };
}

function zoneOf(sides: readonly Side[]): DnsZone {
  const zones = sides.map((side) => sideZone(side.domain, side.port, side.tlsPort));
  return {
    srv: Object.assign({}, ...zones.map((zone) => zone.srv)) as DnsZone['srv'],
    a: Object.assign({}, ...zones.map((zone) => zone.a)) as DnsZone['a'],
    aaaa: Object.assign({}, ...zones.map((zone) => zone.aaaa)) as DnsZone['aaaa'],
    serverFailure: ['_etcd-client._tcp.fail.test', '_etcd-client-ssl._tcp.fail.test'],
    unanswered: ['_etcd-client._tcp.silent.test', '_etcd-client-ssl._tcp.silent.test', 'm.silent.test'],
  };
}

function fill(text: string, side: Side, caFile: string): string {
  return text.replace(/\bD\b/g, side.domain).replace(/:P\b/g, `:${side.port}`).replace(/^CA$/, caFile);
}

function normalise(result: CommandResult, side: Side): CommandResult {
  const clean = (text: string): string =>
    text
      // The resolver's UDP socket gets an ephemeral port, another on every run of either client.
      .replace(/read udp ([^ ]+):\d+->/g, 'read udp $1:<ephemeral>->')
      .split(side.domain)
      .join('<domain>')
      .split(String(side.port))
      .join('<port>')
      .split(String(side.tlsPort))
      .join('<tls port>')
      // clientv3's retry logs carry timestamps and random client names; tsetcdctl has none.
      .replace(/^\{"level":"warn".*\n/gm, '')
      .replace(/"(ClusterID|MemberID)" : \d+/g, '"$1" : <id>')
      .replace(/took = [0-9.]+(ns|µs|ms|s)/g, 'took = <took>');
  return { stdout: clean(result.stdout), stderr: clean(result.stderr), code: result.code };
}

/** Starts one single-member cluster in the namespace, listening on 127.0.0.1 and ::1. */
async function startMember(
  namespace: LoopbackNamespace,
  side: Side,
  workDir: string,
  certificates: TestCertificates,
): Promise<{ child: ChildProcess; log: string }> {
  const d = side.domain;
  const tls = certificates.member(side.label, 'ca', [`DNS:ok.${d}`, `DNS:s.ok.${d}`, `DNS:bare.${d}`]);
  const dataDir = join(workDir, side.label);
  const peer = `http://127.0.0.1:${side.port + 1}`;
  const log = join(workDir, `${side.label}.log`);
  const logFd = openSync(log, 'w');
  const child = namespace.spawn(
    side.member.command,
    [
      ...side.member.args,
      ...['--name', side.label, '--data-dir', dataDir],
      ...[
        '--listen-client-urls',
        `http://127.0.0.1:${side.port},http://[::1]:${side.port},https://127.0.0.1:${side.tlsPort}`,
      ],
      ...['--cert-file', tls.certFile, '--key-file', tls.keyFile],
      ...['--advertise-client-urls', `http://127.0.0.1:${side.port}`],
      ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer],
      ...['--initial-cluster', `${side.label}=${peer}`],
    ],
    logFd,
  );
  closeSync(logFd);
  for (let probe = 0; probe < healthProbesMax; probe++) {
    const health = await inNamespace(namespace, etcdctlBinaryPath, [
      `--endpoints=127.0.0.1:${side.port}`,
      'endpoint',
      'health',
    ]);
    if (health.code === 0) return { child, log };
    if (child.exitCode !== null) break;
    await sleep(healthProbeIntervalMs);
  }
  assert.fail(`${side.label} did not become healthy; its log:\n${readFileSync(log, 'utf8').slice(-3000)}`);
}

function inNamespace(
  namespace: LoopbackNamespace,
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CommandResult> {
  const wrapped = namespace.wrap(command, args);
  return runCommand(wrapped.command, wrapped.args, { env: { ETCDCTL_API: '3', ...env } });
}

/** What a client printed, and how long it ran until it exited. */
interface ClientRun {
  readonly result: CommandResult;
  readonly elapsedMs: number;
}

async function runClient(
  namespace: LoopbackNamespace,
  side: Side,
  testCase: EndpointCase,
  caFile: string,
): Promise<ClientRun> {
  const args = testCase.args.map((arg) => fill(arg, side, caFile));
  const env = Object.fromEntries(
    Object.entries(testCase.env ?? {}).map(([name, value]) => [name, fill(value, side, caFile)]),
  );
  const started = performance.now();
  const result =
    side.client === 'etcdctl'
      ? await inNamespace(namespace, etcdctlBinaryPath, args, env)
      : await inNamespace(namespace, process.execPath, [tsetcdctlBinPath, ...args], env);
  return { result, elapsedMs: performance.now() - started };
}

const unsupported = namespaceSupport() || (hasOpenssl() ? false : 'openssl is not installed');

describe('tsetcdctl finds and dials endpoints as etcdctl does', { skip: unsupported || false }, () => {
  let namespace: LoopbackNamespace | undefined;
  let workDir = '';
  let sides: Side[] = [];
  const transcripts = new Map<EndpointCase, ClientRun[]>();
  let certificates: TestCertificates | undefined;

  before(async () => {
    const tsetcd = sutCommand().command;
    assert.ok(tsetcd !== undefined, 'expected tsetcd to be built');
    sides = [
      { label: 'reference', client: 'etcdctl', member: etcdCommand(), domain: 'ref.test', port: 12379, tlsPort: 12389 },
      { label: 'etcd', client: 'tsetcdctl', member: etcdCommand(), domain: 'etcd.test', port: 22379, tlsPort: 22389 },
      { label: 'tsetcd', client: 'tsetcdctl', member: tsetcd, domain: 'tsetcd.test', port: 32379, tlsPort: 32389 },
    ];
    workDir = await mkdtemp(join(tmpdir(), 'tsetcd-endpoints-'));
    namespace = LoopbackNamespace.create(['127.0.0.1']);
    // A veth pair whose far end has no address: what is sent to the blackholed address (its MAC
    // pinned, so no ARP failure ends the wait) arrives nowhere and is never answered.
    namespace.ip(['link', 'add', 'hole0', 'type', 'veth', 'peer', 'name', 'hole1']);
    namespace.ip(['addr', 'add', '10.99.0.1/24', 'dev', 'hole0']);
    namespace.ip(['link', 'set', 'hole0', 'up']);
    namespace.ip(['link', 'set', 'hole1', 'up']);
    namespace.ip(['neigh', 'add', blackholedAddress, 'lladdr', '02:00:00:00:00:99', 'dev', 'hole0']);
    const dns = namespace.spawn(process.execPath, [dnsServerMain, JSON.stringify(zoneOf(sides))]);
    await new Promise<void>((resolve, reject) => {
      dns.stdout?.once('data', () => resolve());
      dns.once('exit', (code) => reject(new Error(`the DNS server exited (${code}) before it was ready`)));
    });
    const ns = namespace;
    const made = makeCertificates();
    certificates = made;
    const caFile = join(made.dir, 'ca.crt');
    await Promise.all(sides.map((side) => startMember(ns, side, workDir, made)));
    // Cases run in order (later ones read what earlier ones wrote); the three sides of a case at once.
    for (const testCase of cases)
      transcripts.set(testCase, await Promise.all(sides.map((side) => runClient(ns, side, testCase, caFile))));
  });

  after(async () => {
    namespace?.remove();
    certificates?.remove();
    if (workDir !== '') await rm(workDir, { recursive: true, force: true });
  });

  for (const testCase of cases) {
    const title = [...testCase.args, ...Object.entries(testCase.env ?? {}).map(([k, v]) => `(${k}=${v})`)].join(' ');
    for (const index of [1, 2] as const)
      it(`answers like etcdctl ${title} (against ${index === 1 ? 'etcd' : 'tsetcd'})`, () => {
        const results = transcripts.get(testCase);
        assert.ok(results !== undefined, 'expected every case to have run in before()');
        const [expected, actual] = [results[0]!.result, results[index]!.result];
        assert.deepEqual(normalise(actual, sides[index]!), normalise(expected, sides[0]!));
      });
  }

  // Not a speed check: a process that waited for the lookup could not end before the resolver gave up.
  it('exits once it has printed the error, without waiting for a look-up the DNS server never answers', () => {
    assert.ok(silentNameCase !== undefined, 'expected the case of a name the DNS server never answers');
    const results = transcripts.get(silentNameCase);
    assert.ok(results !== undefined, 'expected every case to have run in before()');
    for (const [index, run] of results.entries()) {
      assert.match(run.result.stderr, /context deadline exceeded/, `${sides[index]!.label}: ${run.result.stderr}`);
      assert.ok(
        run.elapsedMs < systemResolverTimeoutMs,
        `${sides[index]!.label}: ran ${Math.round(run.elapsedMs)} ms, not less than the resolver's ${systemResolverTimeoutMs} ms`,
      );
    }
  });
});
