/**
 * CPU seconds of a process and everything it started, read from Linux's /proc, so run-suite can
 * tell a test file that computes from one that waits. Elsewhere (no /proc) the readings are
 * undefined and run-suite keeps the shares it has recorded.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** /proc reports times in clock ticks of USER_HZ, which Linux fixes at 100 per second for user space. */
const ticksPerSecond = 100;
/** Processes read under one root at most, so a runaway fork cannot make a reading unbounded. */
const treeProcessesMax = 10_000;

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // The process ended between listing and reading.
  }
}

/** The pids a process has started and not yet reaped, from every one of its threads. */
export function childPids(pid: number): number[] {
  let threads: string[];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return threads.flatMap((thread) =>
    (readText(`/proc/${pid}/task/${thread}/children`) ?? '')
      .split(' ')
      .filter((field) => field !== '')
      .map(Number),
  );
}

/** A process's arguments, or undefined when it has ended. */
export function commandLine(pid: number): string[] | undefined {
  return readText(`/proc/${pid}/cmdline`)?.split('\0');
}

/**
 * User and system seconds of one process, its reaped children included (utime, stime, cutime and
 * cstime: /proc/<pid>/stat's fields 14 to 17, counted after the parenthesised command name, which
 * may itself hold spaces).
 */
function ownCpuSeconds(pid: number): number | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = fields.slice(11, 15).reduce((sum, field) => sum + Number(field), 0);
  return Number.isFinite(ticks) ? ticks / ticksPerSecond : undefined;
}

/**
 * CPU seconds used so far by `pid` and all its descendants: each live process's own time plus
 * what its reaped children used. Undefined when `pid` has ended or /proc is not there.
 */
export function treeCpuSeconds(pid: number): number | undefined {
  const root = ownCpuSeconds(pid);
  if (root === undefined) return undefined;
  let total = root;
  const pending = childPids(pid);
  for (let seen = 0; pending.length > 0 && seen < treeProcessesMax; seen++) {
    const child = pending.pop()!;
    total += ownCpuSeconds(child) ?? 0;
    pending.push(...childPids(child));
  }
  return total;
}
