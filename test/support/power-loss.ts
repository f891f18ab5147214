/**
 * What the power-loss tests share: writers that record every acknowledged put, a cut of one
 * member's data dir from the copy kill -9 left, the check that every acknowledged put is served,
 * and telling a refusal to start on unsynced damage from a loss of synced bytes.
 */
import type { TestContext } from 'node:test';
import { cpSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { KvConnection } from '../../bench/kv-client.js';
import { memberDataPaths } from '../../src/lib/paths.js';
import { pollUntil } from './cluster.js';
import type { SutLookup } from './sut.js';
import { powerLossJournalEnv } from '../../actors/wal/power-loss-journal.js';
import { powerCut, type PowerCutOptions, type PowerCutReport } from './power-cut.js';

/**
 * Why a power-cut test cannot run against the system under test (`journaled`: what it journals,
 * e.g. "its WAL"), or undefined when it can: the journal is tsetcd's own test switch.
 */
export function powerCutSkipReason(sut: SutLookup, journaled: string): string | undefined {
  if (sut.command === undefined) return sut.skipReason;
  if (sut.command.label !== 'tsetcd')
    return `${powerLossJournalEnv} is tsetcd's test switch; ${sut.command.label} does not journal ${journaled}`;
  return undefined;
}

export const powerLossKeyPrefix = 'power/';
/** Bound on puts per writer, in case the server is very fast. */
const putsPerWriterMax = 4_000;
const putDeadlineMs = 5_000;
/** Lines etcd logs on a restart, in its words, which tsetcd logs too. */
export const restartMilestones = [
  'restarting member',
  'published local member to cluster through raft',
  'serving client traffic insecurely; this is strongly discouraged!',
];

/** A cut: the seed's random choices, or every unsynced change lost. */
export type Cut = Pick<PowerCutOptions, 'seed' | 'mode'>;

/**
 * Runs `writersCount` writers putting unique keys to `endpoint`, and calls `kill` (which kills the
 * member) once `acksTarget` puts were acknowledged or `writeMsMax` passed, whichever comes first,
 * while the writers are still going; returns the puts acknowledged. A put whose answer never came
 * is not acknowledged.
 */
export async function writeUntilKilled(
  endpoint: string,
  load: { writersCount: number; acksTarget: number; writeMsMax: number },
  kill: () => Promise<void>,
): Promise<Map<string, string>> {
  const acknowledged = new Map<string, string>();
  const connection = new KvConnection(endpoint);
  let stopped = false;
  let reachTarget: () => void = () => undefined;
  const targetReached = new Promise<void>((resolve) => (reachTarget = resolve));
  const writer = async (writerIndex: number): Promise<void> => {
    for (let seq = 0; seq < putsPerWriterMax && !stopped; seq += 1) {
      const key = `${powerLossKeyPrefix}w${String(writerIndex).padStart(2, '0')}/${String(seq).padStart(5, '0')}`;
      const value = `value-${writerIndex}-${seq}-${'x'.repeat(seq % 200)}`;
      try {
        await connection.put(Buffer.from(key), Buffer.from(value), putDeadlineMs);
      } catch {
        return; // The member is gone; this put may or may not have landed, so it is not acknowledged.
      }
      acknowledged.set(key, value);
      if (acknowledged.size >= load.acksTarget) reachTarget();
    }
  };
  const writers = Array.from({ length: load.writersCount }, (_, i) => writer(i));
  await Promise.race([targetReached, sleep(load.writeMsMax, undefined, { ref: false })]);
  await kill();
  stopped = true;
  await Promise.all(writers);
  connection.close();
  return acknowledged;
}

/** Waits `ms`, for the writers to get going before the kill. */
export function writeFor(ms: number): Promise<void> {
  return sleep(ms);
}

/** Puts a killed member's files back from `killedCopy` into `dataDir` and cuts power to them. */
export function cutDataDir(journalDir: string, dataDir: string, killedCopy: string, cut: Cut): PowerCutReport {
  rmSync(dataDir, { recursive: true, force: true });
  cpSync(killedCopy, dataDir, { recursive: true });
  const paths = memberDataPaths(dataDir, '');
  return powerCut({ journalDir, walDir: paths.walDir, backendPath: paths.backendPath, ...cut });
}

/** One line of diagnostics about a cut. */
export function diagnoseCut(t: TestContext, what: string, report: PowerCutReport): void {
  t.diagnostic(
    `${what}: unsynced writes ${report.writesUnsynced} (${report.bytesUnsynced} bytes): ` +
      `dropped ${report.writesDropped}, torn ${report.writesTorn}, kept ${report.writesKept}, ${report.bytesLost} bytes lost; ` +
      `truncates lost ${report.truncatesLost}/${report.truncatesUnsynced}; ` +
      `directory changes lost ${report.directoryChangesLost}/${report.directoryChangesUnsynced}; ` +
      `backend ${report.backendCopy ?? 'none synced'}; WAL files ${report.walFiles.join(' ')}`,
  );
}

/** The size of a log file (0 when missing), to read only what a restart appends. */
export function logBytes(logPath: string): number {
  try {
    return statSync(logPath).size;
  } catch {
    return 0;
  }
}

/**
 * After a start that failed: the WAL's error when it refused on damage at or past the synced
 * bytes of a segment (nothing acknowledged lies there); throws `startError` for anything else, and
 * says so when the damage is in synced bytes.
 */
export function unsyncedDamageRefusal(log: string, report: PowerCutReport, startError: unknown): string {
  const found = /WAL corrupt: (\S+) at byte offset (\d+): [^"\\]*/.exec(log);
  if (found === null) throw startError;
  const synced = report.syncedDataBytes.get(basename(found[1]!));
  if (synced === undefined || Number(found[2]) < synced) {
    throw new Error(`refused to start on damage in synced WAL bytes (synced up to ${synced}): ${found[0]}`);
  }
  return found[0];
}

/** How long a restarted member may take to log all its milestones (publishing goes through Raft). */
const milestonesWaitMs = 15_000;

/** Waits until the log at `logPath` gained etcd's restart milestones since `offset`. */
export async function waitForMilestones(logPath: string, offset: number, who: string): Promise<void> {
  await pollUntil(`${who} logging etcd's restart milestones`, milestonesWaitMs, () => {
    const log = logSince(logPath, offset);
    const missing = restartMilestones.filter((line) => !log.includes(`"msg":"${line}"`));
    return Promise.resolve(missing.length === 0 ? '' : `missing ${missing.join('; ')}`);
  });
}

/** The acknowledged puts `endpoints` do not serve with their value. */
export async function missingPuts(endpoints: string[], acknowledged: ReadonlyMap<string, string>): Promise<string[]> {
  const client = new Etcd3({ hosts: endpoints });
  try {
    const stored = await client.getAll().prefix(powerLossKeyPrefix).strings();
    const missing: string[] = [];
    for (const [key, value] of acknowledged)
      if (stored[key] !== value) missing.push(`${key}: expected ${value}, saw ${String(stored[key])}`);
    return missing;
  } finally {
    client.close();
  }
}

/** Puts one key through `endpoint` and waits for the answer. */
export async function putOnce(endpoint: string, key: string): Promise<void> {
  const connection = new KvConnection(endpoint);
  try {
    await connection.put(Buffer.from(`${powerLossKeyPrefix}${key}`), Buffer.from('written'), putDeadlineMs);
  } finally {
    connection.close();
  }
}

/** Reads what a log file gained since `offset`. */
export function logSince(logPath: string, offset: number): string {
  return readFileSync(logPath, 'utf8').slice(offset);
}
