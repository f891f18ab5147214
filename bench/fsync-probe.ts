/**
 * The disk's own floor for a durable write: how long a small write plus fdatasync takes on the
 * filesystem the members' data dirs live on, measured in the same run as the load. Two cases:
 * rewriting blocks of a preallocated file (what a WAL does inside a preallocated segment, as etcd's
 * and ours do) and appending to a growing file (which also updates the file's size on disk).
 *
 *   node dist/bench/fsync-probe.js [--dir D] [--samples N] [--json]
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

/** etcd's WAL page size, and the size of a small record batch. */
export const probeBlockBytes = 4096;
export const probeSamplesDefault = 200;

export interface FsyncLatency {
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface FsyncProbeResult {
  readonly dir: string;
  readonly samples: number;
  /** A 4 KiB rewrite inside a preallocated file, then fdatasync: the floor for a WAL append. */
  readonly preallocated: FsyncLatency;
  /** A 4 KiB append to a growing file, then fdatasync. */
  readonly append: FsyncLatency;
}

/** The value at percentile `p` (0-100) of ascending `sorted`, nearest rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error('percentile of no samples');
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

function latencyOf(samplesMs: number[]): FsyncLatency {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
}

/** Times `samples` rounds of write-at-`offsetOf(i)` plus fdatasync on `fd`. */
function timeSyncedWrites(fd: number, samples: number, offsetOf: (i: number) => number): number[] {
  const block = Buffer.alloc(probeBlockBytes, 0x5a);
  const timesMs: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = process.hrtime.bigint();
    writeSync(fd, block, 0, block.length, offsetOf(i));
    fdatasyncSync(fd);
    timesMs.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return timesMs;
}

/** Runs both cases in a fresh directory under `parentDir` and removes it afterwards. */
export function probeFsync(parentDir = tmpdir(), samples = probeSamplesDefault): FsyncProbeResult {
  if (!Number.isInteger(samples) || samples < 1) throw new Error(`samples must be a positive integer, saw ${samples}`);
  const dir = mkdtempSync(join(parentDir, 'tsetcd-fsync-probe-'));
  try {
    const preallocatedFd = openSync(join(dir, 'preallocated'), 'w+');
    let preallocatedMs: number[];
    try {
      // Fill the file and make its blocks durable first, so the timed writes change no metadata.
      writeSync(preallocatedFd, Buffer.alloc(samples * probeBlockBytes));
      fdatasyncSync(preallocatedFd);
      preallocatedMs = timeSyncedWrites(preallocatedFd, samples, (i) => i * probeBlockBytes);
    } finally {
      closeSync(preallocatedFd);
    }
    const appendFd = openSync(join(dir, 'append'), 'w+');
    let appendMs: number[];
    try {
      appendMs = timeSyncedWrites(appendFd, samples, (i) => i * probeBlockBytes);
    } finally {
      closeSync(appendFd);
    }
    return { dir: parentDir, samples, preallocated: latencyOf(preallocatedMs), append: latencyOf(appendMs) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One line for reports: both cases' p50 and p99. */
export function describeProbe(result: FsyncProbeResult): string {
  const ms = (value: number) => value.toFixed(3);
  return (
    `fsync probe (${probeBlockBytes}-byte write + fdatasync, ${result.samples} samples in ${result.dir}): ` +
    `preallocated p50 ${ms(result.preallocated.p50Ms)} ms p99 ${ms(result.preallocated.p99Ms)} ms; ` +
    `append p50 ${ms(result.append.p50Ms)} ms p99 ${ms(result.append.p99Ms)} ms`
  );
}

/** Runs the probe from the command line; returns the exit code. */
export function main(argv: readonly string[]): number {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      dir: { type: 'string', default: tmpdir() },
      samples: { type: 'string', default: String(probeSamplesDefault) },
      json: { type: 'boolean', default: false },
    },
  });
  const result = probeFsync(values.dir, Number(values.samples));
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${describeProbe(result)}\n`);
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 2;
  }
}
