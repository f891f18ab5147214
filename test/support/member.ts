/**
 * Starts, stops, crashes and restarts one single-node member (real etcd or tsetcd) on free
 * loopback ports with its own temporary data dir, so tests can treat both the same way.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePorts, loopbackHost } from './ports.js';
import type { TlsFiles } from './certificates.js';
import type { MemberCommand } from './sut.js';
import type { TlsConfig } from '../../src/config/config.js';

/** How long a member may take to answer /health after it is spawned. */
export const healthWaitMsDefault = 20_000;
/** Pause between /health probes. */
const healthProbeIntervalMs = 100;
/** How long SIGTERM gets before SIGKILL follows. */
export const stopGraceMsDefault = 5_000;
/** Characters of the member's log shown when it fails to start. */
const logTailCharsMax = 3_000;

export interface MemberOptions {
  readonly command: MemberCommand;
  readonly name?: string;
  /** Extra etcd flags, e.g. ['--max-txn-ops', '4']. */
  readonly extraFlags?: readonly string[];
  readonly healthWaitMs?: number;
  /** Runs before the first start with the member's data dir, name and peer URL (e.g. to restore a snapshot there). */
  readonly beforeStart?: (member: Member) => Promise<void>;
  /**
   * Serve the client URL over https: with these files (--cert-file, --key-file, --trusted-ca-file,
   * and --client-cert-auth when clientCertAuth is set); with --auto-tls and --peer-auto-tls (peer
   * URL over https too) when 'auto'; with no TLS flags but those in extraFlags when 'https only'.
   */
  readonly clientTls?: ClientTls;
  /** The client certificate /health is probed with; needed with --client-cert-auth. */
  readonly probeIdentity?: TlsConfig;
  /** Further --listen-client-urls (e.g. unix sockets), made from the client port. */
  readonly extraListenClientUrls?: (clientPort: number) => string[];
  /** Start the process in its work dir (unix socket URLs name files relative to it). */
  readonly runInWorkDir?: boolean;
  /** Environment variables added to the test's own for the member's process (e.g. GOFAIL_FAILPOINTS). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * The client and peer ports instead of free ones: another member's, once it has stopped, so that
   * both advertise the same URLs (which etcd's backend stores in its members bucket).
   */
  readonly ports?: { readonly client: number; readonly peer: number };
}

/** How a member's process ended: its exit code, or the signal that ended it. */
export interface MemberExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** How a member serves its client URL (MemberOptions.clientTls). */
export type ClientTls = TlsConfig | 'auto' | 'https only';

/** Members still running; killed if the test process exits without stopping them. */
const liveMembers = new Set<Member>();
process.once('exit', () => {
  for (const member of liveMembers) member.killNow();
});

/** One running (or stopped) member process; restart() reuses its ports and data dir. */
export class Member {
  /** Appended to /health when waiting for the member, e.g. '?exclude=NOSPACE' while that alarm stands. */
  healthQuery = '';
  /** Environment variables for the next start, on top of this process's (from MemberOptions.env). */
  env: Record<string, string>;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private exitStatus: MemberExit = { code: null, signal: null };

  private constructor(
    readonly command: MemberCommand,
    readonly name: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly workDir: string,
    readonly extraFlags: readonly string[],
    readonly healthWaitMs: number,
    private readonly options: MemberOptions,
  ) {
    this.env = { ...options.env };
  }

  /** Spawns a fresh member and waits until its /health answers. */
  static async start(options: MemberOptions): Promise<Member> {
    const member = await Member.create(options);
    await options.beforeStart?.(member);
    await member.launch();
    return member;
  }

  /** A member with its ports and work dir, not started: for a start that should fail (runUntilExit). */
  static async create(options: MemberOptions): Promise<Member> {
    const [clientPort, peerPort] =
      options.ports === undefined ? await freePorts(2) : [options.ports.client, options.ports.peer];
    if (clientPort === undefined || peerPort === undefined) throw new Error('expected two free ports');
    const workDir = await mkdtemp(join(tmpdir(), `tsetcd-${options.command.label}-`));
    const member = new Member(
      options.command,
      options.name ?? 'm1',
      clientPort,
      peerPort,
      workDir,
      options.extraFlags ?? [],
      options.healthWaitMs ?? healthWaitMsDefault,
      options,
    );
    return member;
  }

  /** Runs the member in the foreground until it exits or `timeoutMs` passes: its exit status and stderr. */
  runUntilExit(timeoutMs: number): { status: number | null; stderr: string } {
    const result = spawnSync(this.command.command, [...this.command.args, ...this.flags()], {
      encoding: 'utf8',
      timeout: timeoutMs,
      env: { ...process.env, ...this.env },
      ...(this.options.runInWorkDir === true ? { cwd: this.workDir } : {}),
    });
    return { status: result.status, stderr: result.stderr ?? '' };
  }

  get clientUrl(): string {
    return `${this.options.clientTls === undefined ? 'http' : 'https'}://${loopbackHost}:${this.clientPort}`;
  }

  get peerUrl(): string {
    return `${this.options.clientTls === 'auto' ? 'https' : 'http'}://${loopbackHost}:${this.peerPort}`;
  }

  get dataDir(): string {
    return join(this.workDir, 'data');
  }

  get logPath(): string {
    return join(this.workDir, 'member.log');
  }

  /** The OS process id of the running member; throws when it is not running. */
  get pid(): number {
    const pid = this.child?.pid;
    if (pid === undefined || !this.running) throw new Error(`member ${this.command.label} is not running`);
    return pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The etcd flags this member starts with; the same for every kind of member. */
  flags(): string[] {
    const listenClientUrls = [this.clientUrl, ...(this.options.extraListenClientUrls?.(this.clientPort) ?? [])];
    return [
      '--name',
      this.name,
      '--data-dir',
      this.dataDir,
      '--listen-client-urls',
      listenClientUrls.join(','),
      '--advertise-client-urls',
      this.clientUrl,
      '--listen-peer-urls',
      this.peerUrl,
      '--initial-advertise-peer-urls',
      this.peerUrl,
      '--initial-cluster',
      `${this.name}=${this.peerUrl}`,
      ...tlsFlags(this.options.clientTls),
      ...this.extraFlags,
    ];
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

  /** Resolves once the member's process has exited by itself (or was stopped), with how it ended. */
  async waitForExit(): Promise<MemberExit> {
    await this.exited;
    return this.exitStatus;
  }

  /** Starts the member again on the same ports and data dir. */
  async restart(): Promise<void> {
    if (this.running) throw new Error(`restart expects a stopped member, ${this.command.label} is running`);
    await this.launch();
  }

  /** Stops the member and removes its data dir and log. */
  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.workDir, { recursive: true, force: true });
  }

  /** The last part of the member's log, for failure messages. */
  logTail(): string {
    try {
      return readFileSync(this.logPath, 'utf8').slice(-logTailCharsMax);
    } catch {
      return '(no log)';
    }
  }

  /** Synchronous SIGKILL for the process-exit hook. */
  killNow(): void {
    if (this.running) this.child?.kill('SIGKILL');
  }

  private async launch(): Promise<void> {
    const logFd = openSync(this.logPath, 'a');
    try {
      const child = spawn(this.command.command, [...this.command.args, ...this.flags()], {
        stdio: ['ignore', logFd, logFd],
        env: { ...process.env, ...this.env },
        ...(this.options.runInWorkDir === true ? { cwd: this.workDir } : {}),
      });
      this.child = child;
      this.exited = new Promise((resolve) =>
        child.once('exit', (code, signal) => {
          this.exitStatus = { code, signal };
          resolve();
        }),
      );
      child.once('error', () => undefined);
    } finally {
      closeSync(logFd);
    }
    liveMembers.add(this);
    void this.exited.then(() => liveMembers.delete(this));
    await this.waitHealthy();
  }

  /** This member's /health, over https when it serves TLS. */
  private probe(): Promise<string> {
    const tls = this.options.clientTls;
    if (tls === undefined) return probeHealth(this.clientUrl, this.healthQuery);
    return probeHealthTls(this.clientUrl, tls, this.options.probeIdentity, this.healthQuery);
  }

  private async waitHealthy(): Promise<void> {
    const deadline = Date.now() + this.healthWaitMs;
    let lastProblem = 'no probe yet';
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new Error(`${this.command.label} exited before becoming healthy; log tail:\n${this.logTail()}`);
      }
      lastProblem = await this.probe();
      if (lastProblem === '') return;
      await sleep(healthProbeIntervalMs);
    }
    await this.kill9();
    throw new Error(
      `${this.command.label} not healthy after ${this.healthWaitMs} ms (${lastProblem}); log tail:\n${this.logTail()}`,
    );
  }
}

/** The client TLS flags of MemberOptions.clientTls. */
function tlsFlags(tls: ClientTls | undefined): string[] {
  if (tls === undefined || tls === 'https only') return [];
  if (tls === 'auto') return ['--auto-tls', '--peer-auto-tls'];
  return [
    ...['--cert-file', tls.certFile, '--key-file', tls.keyFile, '--trusted-ca-file', tls.trustedCaFile],
    ...(tls.clientCertAuth ? ['--client-cert-auth'] : []),
  ];
}

/** probeHealth over https: trusting the member's CA (any certificate with --auto-tls), with a client certificate when given. */
export function probeHealthTls(
  clientUrl: string,
  tls: ClientTls,
  identity: Pick<TlsConfig, 'certFile' | 'keyFile'> | undefined,
  query = '',
): Promise<string> {
  const trust = typeof tls === 'string' ? { rejectUnauthorized: false } : { ca: readFileSync(tls.trustedCaFile) };
  const certificate =
    identity === undefined ? {} : { cert: readFileSync(identity.certFile), key: readFileSync(identity.keyFile) };
  return new Promise((resolve) => {
    const request = httpsGet(
      `${clientUrl}/health${query}`,
      { ...trust, ...certificate, timeout: 1_000 },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve(healthProblem(response.statusCode ?? 0, body)));
        response.on('error', (error) => resolve(error.message));
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', (error) => resolve(error.message));
  });
}

/** '' when a /health answer says {"health":"true"}, else what was wrong. */
function healthProblem(status: number, body: string): string {
  if (status !== 200) return `status ${status}: ${body}`;
  try {
    return (JSON.parse(body) as { health?: unknown }).health === 'true' ? '' : `unhealthy body ${body}`;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Returns '' when GET /health says {"health":"true"}, else what was wrong. An https URL is probed
 * trusting `tls`'s CA and presenting its client certificate (fetch cannot present one).
 */
export async function probeHealth(clientUrl: string, query = '', tls?: TlsFiles): Promise<string> {
  if (tls !== undefined) return probeHealthTls(clientUrl, { ...tls, clientCertAuth: false }, tls, query);
  try {
    const response = await fetch(`${clientUrl}/health${query}`, { signal: AbortSignal.timeout(1_000) });
    return healthProblem(response.status, await response.text());
  } catch (error) {
    return (error as Error).message;
  }
}
