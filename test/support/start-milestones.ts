/**
 * The lines a member logs on its way to serving clients, read from a zap JSON log (etcd with
 * --logger zap, tsetcd always): which stage each marks, and their order with repeats collapsed,
 * so that etcd's start and ours compare line for line.
 */
import { readFileSync } from 'node:fs';

/** etcd's start milestones by message, each named by the stage it marks. */
export const startStages: Readonly<Record<string, string>> = {
  'serving metrics': 'listening',
  'now serving peer/client/metrics': 'listening',
  'failed to publish local member to cluster through raft': 'publish failed',
  'published local member to cluster through raft': 'published',
  // tsetcd's readiness line (etcd 3.5's; etcd 3.4's zap logger has none) comes with the next one.
  'ready to serve client requests': 'serving clients',
  'serving client traffic insecurely; this is strongly discouraged!': 'serving clients',
  'serving client traffic securely': 'serving clients',
};

/** One JSON log record. */
export type LogRecord = Record<string, unknown> & { msg: string };

/** The JSON records of a log's text; other lines (a Go panic, etcd's capnslog warnings) are left out. */
export function logRecords(text: string): LogRecord[] {
  const records: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const record = JSON.parse(line) as LogRecord;
      if (typeof record.msg === 'string') records.push(record);
    } catch {
      // A line cut short by a kill is no record.
    }
  }
  return records;
}

/** The records of the log file at `path`, those of `member` only when named (single-host mode logs all members to one stream). */
export function logRecordsOf(path: string, member?: string): LogRecord[] {
  const records = logRecords(readFileSync(path, 'utf8'));
  return member === undefined ? records : records.filter((record) => record.member === member);
}

/** The start stages the records pass through, in order, a stage logged several times in a row named once. */
export function startStagesOf(records: readonly LogRecord[]): string[] {
  const stages: string[] = [];
  for (const record of records) {
    const stage = startStages[record.msg];
    if (stage !== undefined && stages[stages.length - 1] !== stage) stages.push(stage);
  }
  return stages;
}

/** Fields that differ by design between etcd and tsetcd lines: the record's frame, not its content. */
const frameFields = new Set(['level', 'ts', 'caller', 'member', 'msg']);

/** The field names of the first record with message `msg`, sorted, or 'not logged'. */
export function fieldNamesOf(records: readonly LogRecord[], msg: string): string {
  const record = records.find((candidate) => candidate.msg === msg);
  return record === undefined ? 'not logged' : fieldNames(record);
}

/** A record's field names, sorted, its frame (level, time, caller, member, message) left out. */
export function fieldNames(record: LogRecord): string {
  return Object.keys(record)
    .filter((name) => !frameFields.has(name))
    .sort()
    .join(', ');
}
