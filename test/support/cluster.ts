/**
 * Starts, crashes and restarts the members of a multi-member cluster (real etcd or tsetcd) on free
 * loopback ports with temporary data dirs, and asks the members who leads through etcdctl.
 * test/support/member.ts covers single-member tests; a cluster needs every peer URL before any
 * member starts and cannot wait for one member's health before the next one is spawned.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { etcdctlTlsArgs, type TlsFiles } from './certificates.js';
import { runEtcdctl } from './etcdctl.js';
import { healthWaitMsDefault, probeHealth, stopGraceMsDefault, type MemberExit } from './member.js';
import { freePorts, loopbackHost } from './ports.js';
import type { MemberCommand } from './sut.js';

/** Members a test cluster may have; tests need three, five is the most anyone runs locally. */
export const clusterSizeMax = 5;
/** How long the members may take to elect a leader that all of them acknowledge. */
export const leaderWaitMsDefault = 15_000;
/** Pause between polls of health, status or data. */
export const pollIntervalMs = 100;
/** etcdctl's own per-request timeout for status probes, so one dead member does not stall a poll. */
const statusCommandTimeout = '1s';
/** Characters of a member's log shown in failure messages. */
const logTailCharsMax = 3_000;

export interface ClusterOptions {
  readonly command: MemberCommand;
  /** Number of voting members; 3 unless told. */
  readonly size?: number;
  /** Extra etcd flags for every member, e.g. ['--snapshot-count', '100']. */
  readonly extraFlags?: readonly string[];
  readonly healthWaitMs?: number;
  /** Client and peer URLs over https: the members serve `server`'s certificate and ask every client and peer for one (--client-cert-auth, --peer-client-cert-auth); probes present `client`'s. */
  readonly tls?: ClusterTls;
  /** Environment variables for each member's process (on top of this process's), from its name and work dir. */
  readonly env?: (member: { name: string; workDir: string }) => Record<string, string>;
  /**
   * Members start() leaves stopped, to be spawned later with spawn(); with any named, start() waits
   * for no member's health (a minority cannot elect a leader).
   */
  readonly deferred?: readonly string[];
}

/** The certificates of a TLS cluster; both signed by the one CA named in their trustedCaFile. */
export interface ClusterTls {
  readonly server: TlsFiles;
  readonly client: TlsFiles;
}

/** What `etcdctl endpoint status` reports for one member; IDs as lowercase hex like etcdctl's table. */
export interface EndpointStatus {
  readonly endpoint: string;
  readonly memberId: string;
  readonly leaderId: string;
  readonly raftTerm: number;
  readonly raftIndex: number;
  readonly raftAppliedIndex: number;
  readonly revision: number;
}

/** Processes still running; killed if the test process exits without stopping them. */
const liveMembers = new Set<ClusterMember>();
process.once('exit', () => {
  for (const member of liveMembers) member.killNow();
});
// 'exit' does not run when a signal ends the test process (the runner timing out, a closed
// pipe); kill the members, then die of the same signal as before.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    for (const member of liveMembers) member.killNow();
    process.kill(process.pid, signal);
  });
}

/** One member process of a cluster; restart() reuses its ports, data dir and flags. */
export class ClusterMember {
  /** Environment variables for the next start, on top of this process's. */
  env: Record<string, string> = {};
  /** How the last process of this member ended; null fields until one has. */
  lastExit: MemberExit = { code: null, signal: null };
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly command: MemberCommand,
    readonly name: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly workDir: string,
    private readonly initialCluster: string,
    private readonly extraFlags: readonly string[],
    readonly healthWaitMs: number,
    readonly tls?: ClusterTls,
  ) {}

  get clientUrl(): string {
    return `${schemeOf(this.tls)}://${loopbackHost}:${this.clientPort}`;
  }

  get peerUrl(): string {
    return `${schemeOf(this.tls)}://${loopbackHost}:${this.peerPort}`;
  }

  get dataDir(): string {
    return join(this.workDir, 'data');
  }

  get logPath(): string {
    return join(this.workDir, 'member.log');
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The OS process id of the running member; throws when it is not running. */
  get pid(): number {
    const pid = this.child?.pid;
    if (pid === undefined || !this.running)
      throw new Error(`member ${this.name} (${this.command.label}) is not running`);
    return pid;
  }

  /** The etcd flags this member starts with; identical for etcd and tsetcd. */
  flags(): string[] {
    return [
      '--name',
      this.name,
      '--data-dir',
      this.dataDir,
      '--listen-client-urls',
      this.clientUrl,
      '--advertise-client-urls',
      this.clientUrl,
      '--listen-peer-urls',
      this.peerUrl,
      '--initial-advertise-peer-urls',
      this.peerUrl,
      '--initial-cluster',
      this.initialCluster,
      '--initial-cluster-state',
      'new',
      '--initial-cluster-token',
      `tsetcd-test-${this.command.label}`,
      ...tlsFlags(this.tls),
      ...this.extraFlags,
    ];
  }

  /** Spawns the process without waiting; pair with waitHealthy(). `moreFlags` apply to this start only. */
  spawn(moreFlags: readonly string[] = []): void {
    if (this.running) throw new Error(`spawn expects a stopped member, ${this.name} is running`);
    const logFd = openSync(this.logPath, 'a');
    try {
      const child = spawn(this.command.command, [...this.command.args, ...this.flags(), ...moreFlags], {
        stdio: ['ignore', logFd, logFd],
        env: { ...process.env, ...this.env },
      });
      this.child = child;
      this.exited = new Promise((resolve) =>
        child.once('exit', (code, signal) => {
          this.lastExit = { code, signal };
          resolve();
        }),
      );
      child.once('error', () => undefined);
    } finally {
      closeSync(logFd);
    }
    liveMembers.add(this);
    void this.exited.then(() => liveMembers.delete(this));
  }

  /** Waits until GET /health says true, which for a cluster member means it knows a leader. */
  async waitHealthy(waitMs = this.healthWaitMs): Promise<void> {
    const deadline = Date.now() + waitMs;
    let lastProblem = 'no probe yet';
    while (Date.now() < deadline) {
      if (!this.running)
        throw new Error(`${this.describe()} exited before becoming healthy; log tail:\n${this.logTail()}`);
      lastProblem = await probeHealth(this.clientUrl, '', this.tls?.client);
      if (lastProblem === '') return;
      await sleep(pollIntervalMs);
    }
    throw new Error(`${this.describe()} not healthy after ${waitMs} ms (${lastProblem}); log tail:\n${this.logTail()}`);
  }

  /** Stops gracefully with SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = stopGraceMsDefault): Promise<void> {
    if (!this.running) return;
    this.child?.kill('SIGTERM');
    const stopped = await Promise.race([
      this.exited.then(() => true),
      sleep(graceMs, undefined, { ref: false }).then(() => false),
    ]);
    if (!stopped) await this.kill9();
  }

  /** Simulates a crash: SIGKILL, no chance to flush anything. */
  async kill9(): Promise<void> {
    if (!this.running) return;
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** Starts the member again on its ports and data dir (with `moreFlags` this time) and waits for its health. */
  async restart(moreFlags: readonly string[] = []): Promise<void> {
    this.spawn(moreFlags);
    await this.waitHealthy();
  }

  /** Synchronous SIGKILL for the process-exit hook. */
  killNow(): void {
    if (this.running) this.child?.kill('SIGKILL');
  }

  /** The last part of the member's log, for failure messages. */
  logTail(): string {
    try {
      return readFileSync(this.logPath, 'utf8').slice(-logTailCharsMax);
    } catch {
      return '(no log)';
    }
  }

  describe(): string {
    return `${this.command.label} member ${this.name}`;
  }
}

function schemeOf(tls: ClusterTls | undefined): 'http' | 'https' {
  return tls === undefined ? 'http' : 'https';
}

/** The same TLS flags for etcd and tsetcd: server certificate, CA, and client certificates required, on both ports. */
function tlsFlags(tls: ClusterTls | undefined): string[] {
  if (tls === undefined) return [];
  const { certFile, keyFile, trustedCaFile } = tls.server;
  return [
    ...['--cert-file', certFile, '--key-file', keyFile, '--trusted-ca-file', trustedCaFile, '--client-cert-auth'],
    ...['--peer-cert-file', certFile, '--peer-key-file', keyFile, '--peer-trusted-ca-file', trustedCaFile],
    '--peer-client-cert-auth',
  ];
}

/** A set of members bootstrapped together with one --initial-cluster. */
export class Cluster {
  private constructor(
    readonly command: MemberCommand,
    readonly members: readonly ClusterMember[],
    private readonly workDir: string,
  ) {}

  /** Spawns all members at once, then waits until every one is healthy. */
  static async start(options: ClusterOptions): Promise<Cluster> {
    const size = options.size ?? 3;
    if (!Number.isInteger(size) || size < 1 || size > clusterSizeMax)
      throw new Error(`expected a cluster size in 1..${clusterSizeMax}, saw ${size}`);
    const ports = await freePorts(2 * size);
    const workDir = await mkdtemp(join(tmpdir(), `tsetcd-cluster-${options.command.label}-`));
    const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
    const peerPort = (i: number) => ports[2 * i + 1] as number;
    const initialCluster = names
      .map((name, i) => `${name}=${schemeOf(options.tls)}://${loopbackHost}:${peerPort(i)}`)
      .join(',');
    const members = names.map((name, i) => {
      const memberDir = join(workDir, name);
      const healthWaitMs = options.healthWaitMs ?? healthWaitMsDefault;
      return new ClusterMember(
        options.command,
        name,
        ports[2 * i] as number,
        peerPort(i),
        memberDir,
        initialCluster,
        options.extraFlags ?? [],
        healthWaitMs,
        options.tls,
      );
    });
    for (const member of members) member.env = options.env?.(member) ?? {};
    const cluster = new Cluster(options.command, members, workDir);
    try {
      await Promise.all(members.map((m) => mkdir(m.workDir, { recursive: true })));
      const deferred = new Set(options.deferred ?? []);
      for (const member of members) if (!deferred.has(member.name)) member.spawn();
      if (deferred.size === 0) await Promise.all(members.map((m) => m.waitHealthy()));
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  /** Client URLs of the members that are running now. */
  endpoints(): string[] {
    return this.running().map((m) => m.clientUrl);
  }

  running(): ClusterMember[] {
    return this.members.filter((m) => m.running);
  }

  member(name: string): ClusterMember {
    const found = this.members.find((m) => m.name === name);
    if (found === undefined)
      throw new Error(`expected a member named ${name}, saw ${this.members.map((m) => m.name).join(', ')}`);
    return found;
  }

  /**
   * Waits until every running member reports the same leader and that leader is one of them,
   * and returns it. Members that still report the old leader or none make the poll go on.
   */
  async leader(waitMs = leaderWaitMsDefault): Promise<ClusterMember> {
    try {
      // Asked again each poll: a member that stops by itself (removed from the cluster) drops out.
      return await agreedLeader(
        () => this.running(),
        (m) => m.clientUrl,
        (m) => m.name,
        waitMs,
        this.members[0]?.tls?.client,
      );
    } catch (error) {
      throw new Error(`${this.command.label} cluster ${(error as Error).message}`);
    }
  }

  /** The running members that are not `leader`. */
  followers(leader: ClusterMember): ClusterMember[] {
    return this.running().filter((m) => m !== leader);
  }

  /** Stops every member (SIGTERM, then SIGKILL) and removes all data dirs. */
  async destroy(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
    await rm(this.workDir, { recursive: true, force: true });
  }

  /** Log tails of all members, for failure messages. */
  logTails(): string {
    return this.members.map((m) => `--- ${m.describe()} ---\n${m.logTail()}`).join('\n');
  }
}

/**
 * Polls the members `candidates()` lists (asked again each poll) until every one reports the same
 * leader and that leader is among them, and returns it.
 */
export async function agreedLeader<T>(
  candidates: () => readonly T[],
  urlOf: (candidate: T) => string,
  nameOf: (candidate: T) => string,
  waitMs = leaderWaitMsDefault,
  tls?: TlsFiles,
): Promise<T> {
  const deadline = Date.now() + waitMs;
  let lastSeen = 'no status yet';
  while (Date.now() < deadline) {
    const members = candidates();
    const statuses = await Promise.all(
      members.map((m) => endpointStatus(urlOf(m), tls).catch((error: Error) => error)),
    );
    const leaders = new Set(statuses.map((s) => (s instanceof Error ? 'error' : s.leaderId)));
    const [leaderId] = leaders;
    const index = statuses.findIndex((s) => !(s instanceof Error) && s.memberId === leaderId);
    if (leaders.size === 1 && leaderId !== '0' && index >= 0) return members[index] as T;
    lastSeen = statuses
      .map(
        (s, i) =>
          `${nameOf(members[i] as T)}: ${s instanceof Error ? s.message.split('\n')[0] : `leader ${s.leaderId} term ${s.raftTerm}`}`,
      )
      .join('; ');
    await sleep(pollIntervalMs);
  }
  throw new Error(`has no agreed leader after ${waitMs} ms (${lastSeen})`);
}

/** One member's `etcdctl endpoint status -w json`, with 64-bit IDs kept exact. */
export async function endpointStatus(endpoint: string, tls?: TlsFiles): Promise<EndpointStatus> {
  const result = await runEtcdctl(endpoint, [
    ...etcdctlTlsArgs(tls),
    'endpoint',
    'status',
    '-w',
    'json',
    `--command-timeout=${statusCommandTimeout}`,
  ]);
  if (result.code !== 0) throw new Error(`endpoint status of ${endpoint} failed: ${result.stderr.trim()}`);
  const [entry] = parseEtcdctlJson(result.stdout) as Array<{
    Status?: Record<string, unknown> & { header?: Record<string, unknown> };
  }>;
  const status = entry?.Status;
  if (status === undefined) throw new Error(`expected one status from ${endpoint}, saw ${result.stdout}`);
  return {
    endpoint,
    memberId: hexId(status.header?.member_id),
    leaderId: hexId(status.leader),
    raftTerm: Number(status.raftTerm ?? 0),
    raftIndex: Number(status.raftIndex ?? 0),
    raftAppliedIndex: Number(status.raftAppliedIndex ?? 0),
    revision: Number(status.header?.revision ?? 0),
  };
}

/** `http://host:port` as `host:port`, the target form grpc-js clients take. */
export function schemelessEndpoint(endpoint: string): string {
  return endpoint.replace(/^https?:\/\//, '');
}

/**
 * Parses etcdctl's JSON output. Go prints uint64 IDs as bare numbers that lose precision as
 * doubles, so every integer too long for a double is turned into a string first.
 */
export function parseEtcdctlJson(text: string): unknown {
  return JSON.parse(text.replace(/([:[,]\s*)(\d{16,})(?=\s*[,}\]])/g, '$1"$2"'));
}

/** A decimal ID (number or exact string) as etcdctl's lowercase hex; absent means 0. */
export function hexId(value: unknown): string {
  if (value === undefined || value === null) return '0';
  return BigInt(typeof value === 'number' ? Math.round(value) : String(value)).toString(16);
}

/** Polls `check` until it returns '' (done) or the time is up; throws with the last complaint. */
export async function pollUntil(what: string, waitMs: number, check: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + waitMs;
  let complaint = 'not checked yet';
  while (Date.now() < deadline) {
    complaint = await check();
    if (complaint === '') return;
    await sleep(pollIntervalMs);
  }
  throw new Error(`${what} did not happen within ${waitMs} ms: ${complaint}`);
}

/** Waits until `etcdctl endpoint hashkv` over all members reports one hash at one revision. */
export async function assertHashesAgree(
  cluster: Pick<Cluster, 'endpoints' | 'members'>,
  waitMs: number,
): Promise<void> {
  await pollUntil('agreeing hashkv across members', waitMs, async () => {
    const result = await runEtcdctl(cluster.endpoints().join(','), ['endpoint', 'hashkv', '-w', 'json']);
    if (result.code !== 0) return `hashkv failed: ${result.stderr.trim()}`;
    const entries = parseEtcdctlJson(result.stdout) as Array<{
      Endpoint: string;
      HashKV: { hash?: number; header: { revision?: number } };
    }>;
    if (entries.length !== cluster.members.length)
      return `expected ${cluster.members.length} hashes, saw ${result.stdout}`;
    const distinct = new Set(
      entries.map((e) => `hash ${e.HashKV.hash ?? 0} at revision ${e.HashKV.header.revision ?? 0}`),
    );
    return distinct.size === 1
      ? ''
      : entries
          .map((e) => `${e.Endpoint}: hash ${e.HashKV.hash ?? 0} at revision ${e.HashKV.header.revision ?? 0}`)
          .join('; ');
  });
}
