/**
 * Network partitions between real member processes (real etcd or tsetcd), each member in its own
 * network namespace. Needs root, `ip netns` and nftables' `nft`; partitionSupport() says why not.
 *
 * The network: a bridge in a namespace this module creates, one veth pair per member from the
 * member's namespace into the bridge, and one from the root namespace into the bridge, so tests
 * and etcdctl reach every member's client URL from the root namespace. Addresses are private,
 * 10.77.S.i/24 (members i = 1..size, the root side .254), with S chosen per cluster among subnets
 * no interface of the root namespace uses; every member listens on 2379 (client) and 2380 (peer).
 * Names start with `tsp<test pid in base 36>-<n>`, so runs in parallel never collide and a later
 * run removes what a killed run left (namespaces whose pid is gone).
 *
 * Blocks are nftables rules in each member's own namespace (table inet tsetcd_partition), rebuilt
 * atomically on every change; client traffic from the root namespace is never blocked.
 *
 * Usage (engineer A's chaos command uses the same calls):
 *
 *   const skip = partitionSupport();              // '' or why partitions cannot run here
 *   const cluster = await startPartitionedCluster({ command, size: 3 });
 *   try {
 *     cluster.endpoints();                        // client URLs, http://10.77.S.i:2379
 *     await cluster.partition([['m1'], ['m2', 'm3']]);  // symmetric: no traffic across groups
 *     await cluster.blockOneWay('m1', 'm2');      // m1's dialed peer connection to m2 only
 *     await cluster.cut('m1', 'm3');              // both directions between two members
 *     await cluster.bridge('m2');                 // every pair cut but those with m2
 *     await cluster.isolate('m1');                // m1 cut from every other member
 *     await cluster.heal();                       // every block removed
 *     await cluster.leader();                     // the leader all members agree on
 *   } finally {
 *     await cluster.stop();                       // members stopped, namespaces and dirs removed
 *   }
 *
 * Peers: each member dials every other member's peer URL and sends only on the connections it
 * dialed, so blocking m1's dialed connection to m2 (both packet directions of TCP from m1 to m2's
 * peer port) stops every raft message from m1 to m2 while m2's messages to m1 still arrive.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agreedLeader, ClusterMember, clusterSizeMax, leaderWaitMsDefault } from './cluster.js';
import { healthWaitMsDefault } from './member.js';
import type { MemberCommand } from './sut.js';
import { processAlive } from '../../src/lib/process-alive.js';

/** The client and peer ports every member listens on, each in its own namespace. */
export const partitionClientPort = 2379;
export const partitionPeerPort = 2380;
/** The first two octets of every address this module gives out. */
const addressPrefix = '10.77';
/** The root namespace's address on each cluster's subnet. */
const hostOctet = 254;
/** The nftables table holding a member's blocks, in the member's own namespace. */
const nftTable = 'tsetcd_partition';
/** Namespace and interface names start with this, then the test process id in base 36. */
const namePrefix = 'tsp';
/** How long one `ip` or `nft` command may take. */
const networkCommandTimeoutMs = 10_000;

export interface PartitionedClusterOptions {
  readonly command: MemberCommand;
  /** Number of voting members, 3 unless told. */
  readonly size?: number;
  /** Extra etcd flags for every member. */
  readonly extraFlags?: readonly string[];
  readonly healthWaitMs?: number;
}

/** '' when this process can build namespaces and nftables rules, else why not (for a skip). */
export function partitionSupport(): string {
  if (process.getuid?.() !== 0) return 'network partitions need root (network namespaces and nftables)';
  for (const [tool, args] of [
    ['ip', ['netns', 'list']],
    ['nft', ['--version']],
  ] as const) {
    const result = spawnSync(tool, args, { encoding: 'utf8', timeout: networkCommandTimeoutMs });
    if (result.error !== undefined || result.status !== 0)
      return `network partitions need \`${tool}\` (${result.error?.message ?? result.stderr.trim()}); test/support/ensure-tools.sh installs nftables`;
  }
  return '';
}

/** A member in its own network namespace, at its own address. */
export class NamespacedMember extends ClusterMember {
  constructor(
    command: MemberCommand,
    name: string,
    workDir: string,
    initialCluster: string,
    extraFlags: readonly string[],
    healthWaitMs: number,
    readonly namespace: string,
    readonly address: string,
  ) {
    // `ip netns exec` execs the member in place, so the process id and signals stay the member's.
    const inNamespace = {
      ...command,
      command: 'ip',
      args: ['netns', 'exec', namespace, command.command, ...command.args],
    };
    super(inNamespace, name, partitionClientPort, partitionPeerPort, workDir, initialCluster, extraFlags, healthWaitMs);
  }

  override get clientUrl(): string {
    return `http://${this.address}:${this.clientPort}`;
  }

  override get peerUrl(): string {
    return `http://${this.address}:${this.peerPort}`;
  }

  /** The whole log this member wrote (all its starts). */
  log(): string {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }
}

/** One blocked direction: every packet between two members, or only `from`'s dialed peer connection to `to`. */
interface Block {
  readonly from: string;
  readonly to: string;
  readonly scope: 'all' | 'dialed peer connection';
}

/** A cluster whose members sit in their own namespaces, with blocks between them. */
export class PartitionedCluster {
  private blocks: Block[] = [];
  private stopped = false;

  constructor(
    readonly command: MemberCommand,
    readonly members: readonly NamespacedMember[],
    private readonly network: ClusterNetwork,
    private readonly workDir: string,
  ) {}

  /** Client URLs of the members that are running now. */
  endpoints(): string[] {
    return this.running().map((m) => m.clientUrl);
  }

  running(): NamespacedMember[] {
    return this.members.filter((m) => m.running);
  }

  member(name: string): NamespacedMember {
    const found = this.members.find((m) => m.name === name);
    if (found === undefined)
      throw new Error(`expected a member named ${name}, saw ${this.members.map((m) => m.name).join(', ')}`);
    return found;
  }

  /** Symmetric partition: members in different groups cannot reach each other; members in no group are isolated. */
  async partition(groups: readonly (readonly string[])[]): Promise<void> {
    const groupOf = new Map<string, string>();
    groups.forEach((group, index) => group.forEach((name) => groupOf.set(this.member(name).name, `group ${index}`)));
    const groupKey = (name: string): string => groupOf.get(name) ?? `alone ${name}`;
    const blocks: Block[] = [];
    for (const a of this.members)
      for (const b of this.members)
        if (a !== b && groupKey(a.name) !== groupKey(b.name)) blocks.push({ from: a.name, to: b.name, scope: 'all' });
    await this.apply(blocks);
  }

  /** Blocks `from`'s dialed peer connection to `to` (both packet directions); `to`'s connection to `from` works. Adds to the blocks in place. */
  async blockOneWay(from: string, to: string): Promise<void> {
    this.member(from);
    this.member(to);
    await this.apply([...this.blocks, { from, to, scope: 'dialed peer connection' }]);
  }

  /** Cuts every packet between two members, both ways. Adds to the blocks in place. */
  async cut(a: string, b: string): Promise<void> {
    this.member(a);
    this.member(b);
    await this.apply([...this.blocks, { from: a, to: b, scope: 'all' }, { from: b, to: a, scope: 'all' }]);
  }

  /** A bridge: every pair of members is cut except the pairs that include `middle`. */
  async bridge(middle: string): Promise<void> {
    this.member(middle);
    const others = this.members.filter((m) => m.name !== middle);
    const blocks = others.flatMap((a) =>
      others.filter((b) => b !== a).map((b): Block => ({ from: a.name, to: b.name, scope: 'all' })),
    );
    await this.apply(blocks);
  }

  /** Cuts `name` from every other member; clients still reach it. */
  async isolate(name: string): Promise<void> {
    await this.partition([[name], this.members.filter((m) => m.name !== name).map((m) => m.name)]);
  }

  /** Removes every block. */
  async heal(): Promise<void> {
    await this.apply([]);
  }

  /** The blocks in force, as `from -> to (scope)` lines, for messages. */
  describeBlocks(): string {
    return this.blocks.map((b) => `${b.from} -> ${b.to} (${b.scope})`).join('; ') || 'none';
  }

  /** The leader that every member in `names` (all members unless told) reports, and which is one of them. */
  async leader(names?: readonly string[], waitMs = leaderWaitMsDefault): Promise<NamespacedMember> {
    const among = names === undefined ? this.members : names.map((n) => this.member(n));
    try {
      return await agreedLeader(
        () => among.filter((m) => m.running),
        (m) => m.clientUrl,
        (m) => m.name,
        waitMs,
      );
    } catch (error) {
      throw new Error(
        `${this.command.label} members ${among.map((m) => m.name).join(', ')} ${(error as Error).message}`,
      );
    }
  }

  /** Stops every member, removes the namespaces, the network and the data dirs. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await Promise.all(this.members.map((m) => m.stop()));
    } finally {
      this.network.remove();
      await rm(this.workDir, { recursive: true, force: true });
    }
  }

  /** Log tails of all members, for failure messages. */
  logTails(): string {
    return this.members.map((m) => `--- ${m.describe()} ---\n${m.logTail()}`).join('\n');
  }

  /** Replaces the blocks in force with `blocks`, in every member's namespace. */
  private async apply(blocks: readonly Block[]): Promise<void> {
    await Promise.all(
      this.members.map((m) =>
        runNetworkCommand('ip', ['netns', 'exec', m.namespace, 'nft', '-f', '-'], nftRuleset(m, blocks, this)),
      ),
    );
    this.blocks = [...blocks];
  }

  /** The address of member `name`. */
  addressOf(name: string): string {
    return this.member(name).address;
  }
}

/**
 * One member's nftables ruleset for `blocks`: its side of each block. A block from A to B of scope
 * 'all' drops A's packets to B and B's packets arriving at A; of scope 'dialed peer connection'
 * only TCP from A to B's peer port and its replies.
 */
function nftRuleset(member: NamespacedMember, blocks: readonly Block[], cluster: PartitionedCluster): string {
  const output: string[] = [];
  const input: string[] = [];
  for (const block of blocks) {
    const mine = block.from === member.name;
    const theirs = block.to === member.name;
    if (!mine && !theirs) continue;
    const other = cluster.addressOf(mine ? block.to : block.from);
    if (block.scope === 'all') {
      output.push(`ip daddr ${other} drop`);
      input.push(`ip saddr ${other} drop`);
    } else if (mine) {
      output.push(`ip daddr ${other} tcp dport ${partitionPeerPort} drop`);
      input.push(`ip saddr ${other} tcp sport ${partitionPeerPort} drop`);
    } else {
      input.push(`ip saddr ${other} tcp dport ${partitionPeerPort} drop`);
      output.push(`ip daddr ${other} tcp sport ${partitionPeerPort} drop`);
    }
  }
  // Declaring the table first makes the delete succeed on the first call too; the whole file is one transaction.
  return [
    `table inet ${nftTable} {}`,
    `delete table inet ${nftTable}`,
    `table inet ${nftTable} {`,
    `  chain output { type filter hook output priority 0; policy accept;`,
    ...[...new Set(output)].map((rule) => `    ${rule}`),
    `  }`,
    `  chain input { type filter hook input priority 0; policy accept;`,
    ...[...new Set(input)].map((rule) => `    ${rule}`),
    `  }`,
    `}`,
    '',
  ].join('\n');
}

/** Runs one network command; throws with its stderr when it fails. */
function runNetworkCommand(command: string, args: readonly string[], stdin?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { timeout: networkCommandTimeoutMs }, (error, _stdout, stderr) => {
      if (error === null) resolve();
      else reject(new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
    });
    child.stdin?.end(stdin ?? '');
  });
}

/** Runs a list of `ip` commands in order, synchronously (setup and cleanup are short). */
function runIpCommands(commands: readonly (readonly string[])[], ignoreFailures = false): void {
  for (const args of commands) {
    const result = spawnSync('ip', args, { encoding: 'utf8', timeout: networkCommandTimeoutMs });
    if (!ignoreFailures && (result.error !== undefined || result.status !== 0))
      throw new Error(`ip ${args.join(' ')} failed: ${result.error?.message ?? result.stderr.trim()}`);
  }
}

/** Networks of this process not yet removed; removed if the test process exits without stop(). */
const liveNetworks = new Set<ClusterNetwork>();
process.once('exit', () => {
  for (const network of liveNetworks) network.remove();
});
let networksMade = 0;

/** The namespaces, bridge and veth pairs of one cluster. */
class ClusterNetwork {
  readonly bridgeNamespace: string;
  readonly hostInterface: string;

  private constructor(
    readonly prefix: string,
    readonly subnet: number,
    readonly size: number,
  ) {
    this.bridgeNamespace = `${prefix}br`;
    this.hostInterface = `${prefix}h`;
  }

  /** Builds the network for `size` members on a subnet nothing in the root namespace uses. */
  static create(size: number): ClusterNetwork {
    removeStaleNetworks();
    networksMade += 1;
    const prefix = `${namePrefix}${process.pid.toString(36)}-${networksMade.toString(36)}`;
    const network = new ClusterNetwork(prefix, freeSubnet(), size);
    liveNetworks.add(network);
    try {
      network.build();
    } catch (error) {
      network.remove();
      throw error;
    }
    return network;
  }

  memberNamespace(index: number): string {
    return `${this.prefix}m${index + 1}`;
  }

  memberAddress(index: number): string {
    return `${addressPrefix}.${this.subnet}.${index + 1}`;
  }

  /** Deletes the namespaces (their veth ends go with them) and the root side's veth. */
  remove(): void {
    if (!liveNetworks.delete(this)) return;
    const namespaces = [...Array.from({ length: this.size }, (_, i) => this.memberNamespace(i)), this.bridgeNamespace];
    runIpCommands([['link', 'del', this.hostInterface], ...namespaces.map((ns) => ['netns', 'del', ns])], true);
  }

  private build(): void {
    const bridge = this.bridgeNamespace;
    const commands: string[][] = [
      ['netns', 'add', bridge],
      ['-n', bridge, 'link', 'add', 'br0', 'type', 'bridge'],
      ['-n', bridge, 'link', 'set', 'br0', 'up'],
      ['link', 'add', this.hostInterface, 'type', 'veth', 'peer', 'name', `${this.prefix}hb`, 'netns', bridge],
      ['-n', bridge, 'link', 'set', `${this.prefix}hb`, 'master', 'br0', 'up'],
      ['addr', 'add', `${addressPrefix}.${this.subnet}.${hostOctet}/24`, 'dev', this.hostInterface],
      ['link', 'set', this.hostInterface, 'up'],
    ];
    for (let i = 0; i < this.size; i++) {
      const namespace = this.memberNamespace(i);
      const [inside, outside] = [`${this.prefix}a${i + 1}`, `${this.prefix}b${i + 1}`];
      commands.push(
        ['netns', 'add', namespace],
        ['-n', namespace, 'link', 'set', 'lo', 'up'],
        ['link', 'add', inside, 'netns', namespace, 'type', 'veth', 'peer', 'name', outside, 'netns', bridge],
        ['-n', namespace, 'addr', 'add', `${this.memberAddress(i)}/24`, 'dev', inside],
        ['-n', namespace, 'link', 'set', inside, 'up'],
        ['-n', bridge, 'link', 'set', outside, 'master', 'br0', 'up'],
      );
    }
    runIpCommands(commands);
  }
}

/** A third octet S such that no root-namespace address lies in 10.77.S.0/24. */
function freeSubnet(): number {
  const addresses = spawnSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }).stdout ?? '';
  const used = new Set([...addresses.matchAll(/inet 10\.77\.(\d+)\./g)].map((m) => Number(m[1])));
  const start = 1 + (process.pid % 250);
  for (let step = 0; step < 250; step++) {
    const subnet = 1 + ((start - 1 + step) % 250);
    if (!used.has(subnet)) return subnet;
  }
  throw new Error(`expected a free subnet in ${addressPrefix}.1-250.0/24, saw all in use`);
}

/** Deletes namespaces an earlier test process made and could not remove (it was killed). */
function removeStaleNetworks(): void {
  const listed = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const match of listed.matchAll(new RegExp(`^(${namePrefix}([0-9a-z]+)-[0-9a-z]+(?:m\\d+|br))`, 'gm'))) {
    const [, namespace = '', pidText = ''] = match;
    if (processAlive(Number.parseInt(pidText, 36))) continue;
    runIpCommands([['netns', 'del', namespace]], true);
  }
}

/** Builds the network, spawns every member in its namespace, and waits until all are healthy. */
export async function startPartitionedCluster(options: PartitionedClusterOptions): Promise<PartitionedCluster> {
  const size = options.size ?? 3;
  if (!Number.isInteger(size) || size < 1 || size > clusterSizeMax)
    throw new Error(`expected a cluster size in 1..${clusterSizeMax}, saw ${size}`);
  const network = ClusterNetwork.create(size);
  const workDir = await mkdtemp(join(tmpdir(), `tsetcd-partitioned-${options.command.label}-`));
  const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
  const initialCluster = names
    .map((name, i) => `${name}=http://${network.memberAddress(i)}:${partitionPeerPort}`)
    .join(',');
  const members = names.map(
    (name, i) =>
      new NamespacedMember(
        options.command,
        name,
        join(workDir, name),
        initialCluster,
        options.extraFlags ?? [],
        options.healthWaitMs ?? healthWaitMsDefault,
        network.memberNamespace(i),
        network.memberAddress(i),
      ),
  );
  const cluster = new PartitionedCluster(options.command, members, network, workDir);
  try {
    await Promise.all(members.map((m) => mkdir(m.workDir, { recursive: true })));
    await cluster.heal();
    for (const member of members) member.spawn();
    await Promise.all(members.map((m) => m.waitHealthy()));
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}
