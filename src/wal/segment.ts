/** Segment file names and directory listing: `%016x-%016x.wal` (sequence, first Raft index). */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface SegmentFile {
  seq: number;
  /** Raft index of the first entry expected in the segment (the name's second field). */
  firstIndex: number;
  path: string;
}

const segmentNamePattern = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
/** Suffix of a segment being prepared; renamed into place once its header is durable. */
export const segmentTempSuffix = '.tmp';

export function segmentName(seq: number, firstIndex: number): string {
  return `${seq.toString(16).padStart(16, '0')}-${firstIndex.toString(16).padStart(16, '0')}.wal`;
}

function parseHex(text: string, name: string): number {
  const value = Number.parseInt(text, 16);
  if (!Number.isSafeInteger(value)) throw new Error(`WAL segment name ${name} holds ${text}, beyond 2^53`);
  return value;
}

/** Parses a segment file name, or returns undefined for anything else. */
export function parseSegmentName(name: string): { seq: number; firstIndex: number } | undefined {
  const match = segmentNamePattern.exec(name);
  if (match === null) return undefined;
  return { seq: parseHex(match[1]!, name), firstIndex: parseHex(match[2]!, name) };
}

/** The segments in `dir` in sequence order; throws if the sequence has a hole. */
export function listSegments(dir: string): SegmentFile[] {
  const segments: SegmentFile[] = [];
  for (const name of readdirSync(dir)) {
    const parsed = parseSegmentName(name);
    if (parsed !== undefined) segments.push({ ...parsed, path: join(dir, name) });
  }
  segments.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < segments.length; i++) {
    const previous = segments[i - 1]!;
    const current = segments[i]!;
    if (current.seq !== previous.seq + 1) {
      throw new Error(
        `WAL ${dir}: segment ${current.path} follows ${previous.path}; expected sequence ${previous.seq + 1}`,
      );
    }
  }
  return segments;
}

/** Names of half-written segments left by a crash during a cut. */
export function listTempSegments(dir: string): string[] {
  return readdirSync(dir)
    .filter(
      (name) =>
        name.endsWith(segmentTempSuffix) && parseSegmentName(name.slice(0, -segmentTempSuffix.length)) !== undefined,
    )
    .map((name) => join(dir, name));
}
