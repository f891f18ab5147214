/** CPU time and peak memory of a server process and its descendants, read from Linux /proc. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let clockTicksPerSec: number | undefined;

/** The kernel's clock ticks per second (USER_HZ), for the utime/stime fields of /proc/<pid>/stat. */
function ticksPerSec(): number {
  if (clockTicksPerSec === undefined) {
    const text = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim();
    clockTicksPerSec = Number(text) > 0 ? Number(text) : 100;
  }
  return clockTicksPerSec;
}

export interface ProcessStats {
  /** User plus system CPU of the process tree so far. */
  readonly cpuMs: number;
  /** Sum of VmHWM (peak resident set) over the process tree. */
  readonly peakRssKb: number;
  /** Sum of VmRSS (current resident set) over the process tree. */
  readonly rssKb: number;
}

/** The machine's CPU time so far, over all CPUs, from the first line of /proc/stat. */
export interface HostCpuTicks {
  readonly total: number;
  /** Time the hypervisor ran something else while this machine's CPUs wanted to run. */
  readonly steal: number;
}

/** Parses the aggregate "cpu" line of /proc/stat (user nice system idle iowait irq softirq steal ...). */
export function parseHostCpuTicks(procStat: string): HostCpuTicks {
  const line = procStat.split('\n').find((candidate) => candidate.startsWith('cpu '));
  if (line === undefined) throw new Error('no aggregate "cpu" line in /proc/stat');
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (fields.length < 8 || fields.some((field) => !Number.isFinite(field)))
    throw new Error(`unreadable /proc/stat cpu line: ${line}`);
  return { total: fields.reduce((sum, field) => sum + field, 0), steal: fields[7] as number };
}

export function readHostCpuTicks(): HostCpuTicks {
  return parseHostCpuTicks(readFileSync('/proc/stat', 'utf8'));
}

/**
 * The share of the machine's CPU time stolen by the hypervisor between two readings, in percent.
 * On a shared VM host it moves run to run, and latency with it: quote it beside the figures.
 */
export function stealPercent(before: HostCpuTicks, after: HostCpuTicks): number {
  const total = after.total - before.total;
  return total > 0 ? Math.round((1000 * (after.steal - before.steal)) / total) / 10 : 0;
}

/** Reads the stats of `pid` and every live descendant. */
export function readProcessStats(pid: number): ProcessStats {
  let cpuTicks = 0;
  let peakRssKb = 0;
  let rssKb = 0;
  for (const member of processTree(pid)) {
    const stat = parseStat(member);
    if (stat === undefined) continue;
    cpuTicks += stat.utime + stat.stime;
    const status = readStatus(member);
    peakRssKb += status.get('VmHWM') ?? 0;
    rssKb += status.get('VmRSS') ?? 0;
  }
  return { cpuMs: (cpuTicks * 1000) / ticksPerSec(), peakRssKb, rssKb };
}

/** `pid` followed by its descendants, found through the ppid field of every /proc/<n>/stat. */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = parseStat(Number(entry));
    if (stat === undefined) continue;
    const siblings = children.get(stat.ppid) ?? [];
    siblings.push(Number(entry));
    children.set(stat.ppid, siblings);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i += 1) tree.push(...(children.get(tree[i] as number) ?? []));
  return tree;
}

function parseStat(pid: number): { ppid: number; utime: number; stime: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses; fields after it are plain.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(fields[1]), utime: Number(fields[11]), stime: Number(fields[12]) };
}

function readStatus(pid: number): Map<string, number> {
  const values = new Map<string, number>();
  let text = '';
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return values;
  }
  for (const line of text.split('\n')) {
    const match = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (match?.[1] !== undefined) values.set(match[1], Number(match[2]));
  }
  return values;
}
