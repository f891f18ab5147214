/**
 * Raft snapshot metadata files in `<data-dir>/member/snap/`, named as etcd names them
 * (`%016x-%016x.snap`, term then index). The key-value state itself lives in the backend (as in
 * etcd v3, where the bolt db is the snapshot); this file keeps what Raft needs to restart from the
 * snapshot: its index, term and the membership (ConfState) at that index.
 *
 * Format: [u32 LE crc32c of payload][payload: msgpack {index, term, confState, members}].
 */
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { crc32c } from '../lib/crc32c.js';
import type { ConfState, SnapshotMetadata } from '../raft/types.js';
import type { ClusterMember } from '../membership/member.js';

const packr = new Packr({ useRecords: false, int64AsType: 'bigint' });
const snapNamePattern = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

/** The file name etcd uses for a snapshot at (term, index). */
export function snapFileName(term: number, index: number): string {
  return `${term.toString(16).padStart(16, '0')}-${index.toString(16).padStart(16, '0')}.snap`;
}

/** Writes the snapshot metadata durably (temp file, fsync, rename, directory fsync). */
export function saveSnapFile(dir: string, metadata: SnapshotMetadata, members: readonly ClusterMember[] = []): void {
  const payload = packr.pack({ index: metadata.index, term: metadata.term, confState: metadata.confState, members });
  const header = Buffer.alloc(4);
  header.writeUInt32LE(crc32c(payload), 0);
  const finalPath = join(dir, snapFileName(metadata.term, metadata.index));
  const tempPath = `${finalPath}.tmp`;
  const fd = openSync(tempPath, 'w');
  try {
    writeSync(fd, header);
    writeSync(fd, payload);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tempPath, finalPath);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

function asConfState(value: unknown, path: string): ConfState {
  const state = value as ConfState;
  const isIdList = (list: unknown) => Array.isArray(list) && list.every((id) => typeof id === 'bigint');
  if (
    typeof state !== 'object' || state === null ||
    !isIdList(state.voters) || !isIdList(state.learners) || !isIdList(state.votersOutgoing) ||
    !isIdList(state.learnersNext) || typeof state.autoLeave !== 'boolean'
  ) {
    throw new Error(`snapshot file ${path}: malformed membership`);
  }
  return state;
}

/** Reads the snapshot metadata for (term, index); throws naming the file when it is missing or corrupt. */
export function loadSnapFile(dir: string, term: number, index: number): SnapshotMetadata {
  const { metadata } = readSnapFile(dir, term, index);
  return metadata;
}

/** The members recorded with the snapshot at (term, index). */
export function loadSnapMembers(dir: string, term: number, index: number): ClusterMember[] {
  return readSnapFile(dir, term, index).members;
}

function readSnapFile(dir: string, term: number, index: number): { metadata: SnapshotMetadata; members: ClusterMember[] } {
  const path = join(dir, snapFileName(term, index));
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(`snapshot file ${path} named by the WAL cannot be read: ${(error as Error).message}`);
  }
  if (bytes.length < 5) throw new Error(`snapshot file ${path} is truncated (${bytes.length} bytes)`);
  const payload = bytes.subarray(4);
  const expected = bytes.readUInt32LE(0);
  const actual = crc32c(payload);
  if (expected !== actual) throw new Error(`snapshot file ${path} is corrupt: crc ${actual} != ${expected}`);
  const decoded = packr.unpack(payload) as { index: unknown; term: unknown; confState: unknown; members?: unknown };
  if (decoded.index !== index || decoded.term !== term) {
    throw new Error(`snapshot file ${path} holds index ${String(decoded.index)} term ${String(decoded.term)}`);
  }
  const members = Array.isArray(decoded.members) ? (decoded.members as ClusterMember[]) : [];
  return { metadata: { index, term, confState: asConfState(decoded.confState, path) }, members };
}

/** Deletes all but the newest `keep` snapshot files (etcd's --max-snapshots; 0 keeps all). */
export function purgeSnapFiles(dir: string, keep: number): void {
  if (keep <= 0) return;
  const names = readdirSync(dir).filter((name) => snapNamePattern.test(name)).sort();
  for (const name of names.slice(0, Math.max(0, names.length - keep))) unlinkSync(join(dir, name));
}
