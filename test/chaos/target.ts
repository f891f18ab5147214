/**
 * The cluster a chaos run works on, in either mode: three tsetcd processes (test/support/cluster.ts),
 * where every fault hits one member, or `tsetcd cluster --members 3`, three worker threads in one
 * process on etcd's Procfile ports, where a kill or a pause hits the process and so every member.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, endpointStatus, pollUntil, type ClusterMember } from '../support/cluster.js';
import { healthWaitMsDefault, probeHealth } from '../support/member.js';
import { failpointEnv } from '../support/failpoints.js';
import { partitionSupport, PartitionedCluster, startPartitionedCluster } from '../support/partitions.js';
import { busyPorts, freePort, loopbackHost } from '../support/ports.js';
import type { MemberCommand } from '../support/sut.js';

export type ChaosMode = 'processes' | 'single-host';

/** Bound on finding which member leads while faults come and go. */
const leaderLookupMs = 5_000;
/** Characters of a log shown in a report. */
const logTailCharsMax = 3_000;

export interface ChaosTarget {
  readonly mode: ChaosMode;
  /** Member names, in the order of endpoints(). */
  readonly names: readonly string[];
  /** Every member's client URL, running or not. */
  endpoints(): string[];
  /** The index of the member every running member names as leader, or undefined when there is none now. */
  leaderIndex(): Promise<number | undefined>;
  /** What a fault on member `index` hits: that member, or in single-host mode all of them. */
  scopeOf(index: number): string;
  kill9(index: number): Promise<void>;
  /** Starts it again on its data dir and waits until it is healthy. */
  restart(index: number): Promise<void>;
  pause(index: number): void;
  resume(index: number): void;
  running(index: number): boolean;
  /** Where member `index`'s failpoints are set, when the target started its members with them on. */
  failpointEndpoint(index: number): string | undefined;
  /** The network between the members, when they run in network namespaces (partition faults). */
  network(): PartitionedCluster | undefined;
  logTails(): string;
  destroy(): Promise<void>;
}

/** Starts a three-member target in `mode`. */
/** What the processes target needs for the faults drawn: failpoint endpoints, network namespaces. */
export interface TargetNeeds {
  readonly failpoints: boolean;
  readonly partitions: boolean;
}

export async function startTarget(mode: ChaosMode, command: MemberCommand, needs: TargetNeeds): Promise<ChaosTarget> {
  if (mode === 'single-host') return SingleHostTarget.start(command);
  if (!needs.partitions) return ProcessesTarget.start(command, needs.failpoints);
  if (needs.failpoints) throw new Error('failpoint and partition faults cannot be drawn in one run yet');
  const unsupported = partitionSupport();
  if (unsupported !== '') throw new Error(unsupported);
  return new ProcessesTarget(await startPartitionedCluster({ command }), new Map());
}

class ProcessesTarget implements ChaosTarget {
  readonly mode = 'processes';

  constructor(
    private readonly cluster: Cluster | PartitionedCluster,
    private readonly failpointPorts: ReadonlyMap<string, number>,
  ) {}

  network(): PartitionedCluster | undefined {
    return this.cluster instanceof PartitionedCluster ? this.cluster : undefined;
  }

  /** With `failpoints`, every member serves gofail's endpoint on a port of its own (GOFAIL_HTTP). */
  static async start(command: MemberCommand, failpoints: boolean): Promise<ProcessesTarget> {
    const ports = new Map<string, number>();
    if (failpoints) for (const name of ['m1', 'm2', 'm3']) ports.set(name, await freePort());
    const env = ({ name }: { name: string }) => {
      const port = ports.get(name);
      return port === undefined ? {} : failpointEnv(port);
    };
    return new ProcessesTarget(await Cluster.start({ command, env }), ports);
  }

  failpointEndpoint(index: number): string | undefined {
    const port = this.failpointPorts.get(this.member(index).name);
    return port === undefined ? undefined : `http://${loopbackHost}:${port}`;
  }

  get names(): string[] {
    return this.cluster.members.map((m) => m.name);
  }

  endpoints(): string[] {
    return this.cluster.members.map((m) => m.clientUrl);
  }

  async leaderIndex(): Promise<number | undefined> {
    try {
      const members: readonly ClusterMember[] = this.cluster.members;
      const leader =
        this.cluster instanceof PartitionedCluster
          ? await this.cluster.leader(undefined, leaderLookupMs)
          : await this.cluster.leader(leaderLookupMs);
      return members.indexOf(leader);
    } catch {
      return undefined;
    }
  }

  scopeOf(index: number): string {
    return this.names[index] as string;
  }

  async kill9(index: number): Promise<void> {
    await this.member(index).kill9();
  }

  async restart(index: number): Promise<void> {
    await this.member(index).restart();
  }

  pause(index: number): void {
    process.kill(this.member(index).pid, 'SIGSTOP');
  }

  resume(index: number): void {
    process.kill(this.member(index).pid, 'SIGCONT');
  }

  running(index: number): boolean {
    return this.member(index).running;
  }

  logTails(): string {
    return this.cluster.logTails();
  }

  async destroy(): Promise<void> {
    for (const member of this.cluster.members) if (member.running) process.kill(member.pid, 'SIGCONT');
    if (this.cluster instanceof PartitionedCluster) await this.cluster.stop();
    else await this.cluster.destroy();
  }

  private member(index: number) {
    const member = this.cluster.members[index];
    if (member === undefined)
      throw new Error(`expected a member index below ${this.cluster.members.length}, saw ${index}`);
    return member;
  }
}

/** etcd's Procfile client ports, which `tsetcd cluster` serves; peer ports follow with 2380. */
const singleHostClientPorts = [2379, 22379, 32379];
const singleHostPeerPorts = [2380, 22380, 32380];

/** Single-host processes still running; killed if the chaos process exits without stopping them. */
const liveSingleHosts = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of liveSingleHosts) child.kill('SIGKILL');
});

class SingleHostTarget implements ChaosTarget {
  readonly mode = 'single-host';
  readonly names = ['infra1', 'infra2', 'infra3'];
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    private readonly command: MemberCommand,
    private readonly workDir: string,
  ) {}

  static async start(command: MemberCommand): Promise<SingleHostTarget> {
    const busy = await busyPorts([...singleHostClientPorts, ...singleHostPeerPorts]);
    if (busy.length > 0) throw new Error(`single-host mode needs ports ${busy.join(', ')}, which are in use`);
    const target = new SingleHostTarget(command, await mkdtemp(join(tmpdir(), 'tsetcd-chaos-single-host-')));
    try {
      await target.restart();
    } catch (error) {
      await target.destroy();
      throw error;
    }
    return target;
  }

  endpoints(): string[] {
    return singleHostClientPorts.map((port) => `http://127.0.0.1:${port}`);
  }

  async leaderIndex(): Promise<number | undefined> {
    try {
      const statuses = await Promise.all(this.endpoints().map((e) => endpointStatus(e)));
      const index = statuses.findIndex((s) => s.memberId === s.leaderId);
      return index >= 0 && statuses.every((s) => s.leaderId === statuses[index]?.leaderId) ? index : undefined;
    } catch {
      return undefined;
    }
  }

  failpointEndpoint(): undefined {
    return undefined;
  }

  network(): undefined {
    return undefined;
  }

  scopeOf(): string {
    return `the single-host process (${this.names.join(', ')})`;
  }

  async kill9(): Promise<void> {
    if (!this.running()) return;
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  async restart(): Promise<void> {
    if (this.running()) throw new Error('restart expects the single-host process to be stopped');
    const logFd = openSync(join(this.workDir, 'cluster.log'), 'a');
    try {
      const child = spawn(this.command.command, [...this.command.args, 'cluster', '--members', '3'], {
        cwd: this.workDir,
        stdio: ['ignore', logFd, logFd],
      });
      this.child = child;
      liveSingleHosts.add(child);
      this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
      void this.exited.then(() => liveSingleHosts.delete(child));
      child.once('error', () => undefined);
    } finally {
      closeSync(logFd);
    }
    for (const endpoint of this.endpoints())
      await pollUntil(`${endpoint} healthy`, healthWaitMsDefault, async () => {
        if (!this.running()) throw new Error(`the single-host process exited; log tail:\n${this.logTails()}`);
        return probeHealth(endpoint);
      });
  }

  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  logTails(): string {
    try {
      return readFileSync(join(this.workDir, 'cluster.log'), 'utf8').slice(-logTailCharsMax);
    } catch {
      return '(no log)';
    }
  }

  async destroy(): Promise<void> {
    if (this.running()) {
      this.child?.kill('SIGCONT');
      this.child?.kill('SIGKILL');
      await this.exited;
    }
    await rm(this.workDir, { recursive: true, force: true });
  }
}
