/**
 * The WAL thread's append throughput and how well group commit groups: appenders that each await
 * their own append, for a fixed time, on a fresh WAL in a temporary directory. Prints appends/s,
 * fsyncs/s and appends per fsync; nothing is asserted (the properties are in test/wal/).
 *
 *   node dist/bench/wal-throughput.js [--appenders 1,64] [--ms 1000] [--entry-bytes 256] [--dir D]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WalClient } from '../actors/wal/client.js';
import type { Entry } from '../src/raft/types.js';

const metadata = { memberId: 1n, clusterId: 2n };

export interface WalThroughput {
  readonly appenders: number;
  readonly entryBytes: number;
  readonly appendsPerSecond: number;
  readonly syncsPerSecond: number;
  readonly appendsPerSync: number;
}

function entry(index: number, entryBytes: number): Entry {
  return { term: 1, index, type: 0, data: new Uint8Array(entryBytes).fill(index & 0xff) };
}

/** Runs `appenders` concurrent appenders for `measureMs` against a fresh WAL under `parentDir`. */
export async function measureWal(
  appenders: number,
  measureMs: number,
  entryBytes: number,
  parentDir = tmpdir(),
): Promise<WalThroughput> {
  const dir = mkdtempSync(join(parentDir, 'tsetcd-wal-bench-'));
  const { client } = await WalClient.open(dir, { metadata });
  try {
    let nextIndex = 1;
    const started = performance.now();
    const deadline = started + measureMs;
    const appender = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const index = nextIndex++;
        await client.append([entry(index, entryBytes)], { term: 1, vote: 1n, commit: index });
      }
    };
    await Promise.all(Array.from({ length: appenders }, appender));
    const seconds = (performance.now() - started) / 1000;
    const { syncCount, appendCount } = client.stats();
    return {
      appenders,
      entryBytes,
      appendsPerSecond: Math.round(appendCount / seconds),
      syncsPerSecond: Math.round(syncCount / seconds),
      appendsPerSync: syncCount === 0 ? 0 : appendCount / syncCount,
    };
  } finally {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the measurement from the command line; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      appenders: { type: 'string', default: '1,64' },
      ms: { type: 'string', default: '1000' },
      'entry-bytes': { type: 'string', default: '256' },
      dir: { type: 'string', default: tmpdir() },
      json: { type: 'boolean', default: false },
    },
  });
  const results: WalThroughput[] = [];
  for (const appenders of values.appenders.split(',').map(Number)) {
    const result = await measureWal(appenders, Number(values.ms), Number(values['entry-bytes']), values.dir);
    results.push(result);
    if (!values.json)
      process.stdout.write(
        `${appenders} appender(s), ${result.entryBytes}-byte entries: ${result.appendsPerSecond} appends/s, ${result.syncsPerSecond} fsyncs/s, ${result.appendsPerSync.toFixed(1)} appends per fsync\n`,
      );
  }
  if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).message}\n`);
      process.exitCode = 2;
    },
  );
}
