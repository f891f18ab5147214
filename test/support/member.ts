/**
 * Starts, stops, crashes and restarts one single-node member (real etcd or tsetcd) on free
 * loopback ports with its own temporary data dir, so tests can treat both the same way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import https from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePorts, loopbackHost } from './ports.js';
import type { TlsFiles } from './certificates.js';
import type { MemberCommand } from './sut.js';

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
}

/** Members still running; killed if the test process exits without stopping them. */
const liveMembers = new Set<Member>();
process.once('exit', () => {
  for (const member of liveMembers) member.killNow();
});

/** One running (or stopped) member process; restart() reuses its ports and data dir. */
export class Member {
  /** Appended to /health when waiting for the member, e.g. '?exclude=NOSPACE' while that alarm stands. */
  healthQuery = '';
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly command: MemberCommand,
    readonly name: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly workDir: string,
    readonly extraFlags: readonly string[],
    readonly healthWaitMs: number,
  ) {}

  /** Spawns a fresh member and waits until its /health answers. */
  static async start(options: MemberOptions): Promise<Member> {
    const [clientPort, peerPort] = await freePorts(2);
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
    );
    await options.beforeStart?.(member);
    await member.launch();
    return member;
  }

  get clientUrl(): string {
    return `http://${loopbackHost}:${this.clientPort}`;
  }

  get peerUrl(): string {
    return `http://${loopbackHost}:${this.peerPort}`;
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
      `${this.name}=${this.peerUrl}`,
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
      });
      this.child = child;
      this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
      child.once('error', () => undefined);
    } finally {
      closeSync(logFd);
    }
    liveMembers.add(this);
    void this.exited.then(() => liveMembers.delete(this));
    await this.waitHealthy();
  }

  private async waitHealthy(): Promise<void> {
    const deadline = Date.now() + this.healthWaitMs;
    let lastProblem = 'no probe yet';
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new Error(`${this.command.label} exited before becoming healthy; log tail:\n${this.logTail()}`);
      }
      lastProblem = await probeHealth(this.clientUrl, this.healthQuery);
      if (lastProblem === '') return;
      await sleep(healthProbeIntervalMs);
    }
    await this.kill9();
    throw new Error(
      `${this.command.label} not healthy after ${this.healthWaitMs} ms (${lastProblem}); log tail:\n${this.logTail()}`,
    );
  }
}

/** How long one /health probe may take. */
const healthProbeMsMax = 1_000;

/**
 * Returns '' when GET /health says {"health":"true"}, else what was wrong. An https URL is probed
 * with `tls`'s CA and client certificate (fetch cannot present one).
 */
export async function probeHealth(clientUrl: string, query = '', tls?: TlsFiles): Promise<string> {
  try {
    const url = `${clientUrl}/health${query}`;
    const { status, body } =
      tls === undefined
        ? await fetch(url, { signal: AbortSignal.timeout(healthProbeMsMax) }).then(async (response) => ({
            status: response.status,
            body: await response.text(),
          }))
        : await httpsGet(url, tls);
    if (status !== 200) return `status ${status}: ${body}`;
    const parsed = JSON.parse(body) as { health?: unknown };
    return parsed.health === 'true' ? '' : `unhealthy body ${body}`;
  } catch (error) {
    return (error as Error).message;
  }
}

/** GET over https presenting `tls`'s client certificate; resolves with the status and body. */
function httpsGet(url: string, tls: TlsFiles): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.get(
      url,
      {
        ca: readFileSync(tls.trustedCaFile),
        cert: readFileSync(tls.certFile),
        key: readFileSync(tls.keyFile),
        timeout: healthProbeMsMax,
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.once('end', () => resolve({ status: response.statusCode ?? 0, body }));
        response.once('error', reject);
      },
    );
    request.once('timeout', () => request.destroy(new Error(`no answer within ${healthProbeMsMax} ms`)));
    request.once('error', reject);
  });
}
