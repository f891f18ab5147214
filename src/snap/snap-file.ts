/**
 * Raft snapshot files in `<data-dir>/member/snap/`, named as etcd names them (`%016x-%016x.snap`,
 * term then index). The key-value state itself lives in the backend (as in etcd v3, where the bolt
 * db is the snapshot, sent to a follower as `%016x.snap.db`); this file keeps what Raft needs to
 * restart from the snapshot: its index, term, ConfState, and the snapshot's data, which is the
 * membership at that index (the members, the IDs removed for good and the cluster version, what
 * etcd 3.4's v2 store snapshot keeps).
 *
 * Format: [u32 LE crc32c of payload][payload: msgpack {index, term, confState, data}].
 */
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { crc32c } from '../lib/crc32c.js';
import { fsyncDirectory } from '../wal/fs-sync.js';
import type { ConfState, Snapshot } from '../raft/types.js';
import type { ClusterMember } from '../membership/cluster-member.js';
import { isVersion } from '../membership/cluster-version.js';

const packr = new Packr({ useRecords: false, int64AsType: 'bigint' });
const snapNamePattern = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

/** The membership a snapshot carries as its data. */
export interface SnapshotMembership {
  members: ClusterMember[];
  /** Members removed from the cluster; their IDs may never come back. */
  removed: bigint[];
  /** The cluster version applied by then ("3.4.0"); absent while none was. */
  clusterVersion?: string;
}

/** A snapshot's data: the membership, as msgpack. */
export function encodeMembership(membership: SnapshotMembership): Uint8Array {
  const { members, removed, clusterVersion } = membership;
  return packr.pack(clusterVersion === undefined ? { members, removed } : { members, removed, clusterVersion });
}

/** Reads encodeMembership's bytes; throws naming `where` when they are not a membership. */
export function decodeMembership(data: Uint8Array, where: string): SnapshotMembership {
  if (data.length === 0) return { members: [], removed: [] };
  const decoded = packr.unpack(data) as { members?: unknown; removed?: unknown; clusterVersion?: unknown };
  const isMember = (value: unknown): value is ClusterMember => {
    const member = value as ClusterMember;
    return (
      typeof member === 'object' &&
      member !== null &&
      typeof member.id === 'bigint' &&
      typeof member.name === 'string' &&
      isStringList(member.peerUrls) &&
      isStringList(member.clientUrls) &&
      typeof member.isLearner === 'boolean'
    );
  };
  const { members, removed, clusterVersion } = decoded;
  if (
    !Array.isArray(members) ||
    !members.every(isMember) ||
    !Array.isArray(removed) ||
    !removed.every((id) => typeof id === 'bigint') ||
    (clusterVersion !== undefined && (typeof clusterVersion !== 'string' || !isVersion(clusterVersion)))
  ) {
    throw new Error(`${where}: malformed membership`);
  }
  const membership: SnapshotMembership = { members, removed: removed as bigint[] };
  if (clusterVersion !== undefined) membership.clusterVersion = clusterVersion;
  return membership;
}

function isStringList(value: unknown): boolean {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

/** The file name etcd uses for a snapshot at (term, index). */
export function snapFileName(term: number, index: number): string {
  return `${hex16(term)}-${hex16(index)}.snap`;
}

/** The file name etcd gives the backend database received with the snapshot at `index`. */
export function snapDbFileName(index: number): string {
  return `${hex16(index)}.snap.db`;
}

function hex16(value: number): string {
  return value.toString(16).padStart(16, '0');
}

/**
 * Writes the snapshot durably (temp file, fsync, rename, directory fsync). `timedWrite` runs the
 * file's write and fsync, so the caller can time them as etcd's etcd_snap_fsync_duration_seconds does.
 */
export function saveSnapFile(
  dir: string,
  snapshot: Snapshot,
  timedWrite: (write: () => void) => void = (write) => write(),
): void {
  const { index, term, confState } = snapshot.metadata;
  const payload = packr.pack({ index, term, confState, data: snapshot.data });
  const header = Buffer.alloc(4);
  header.writeUInt32LE(crc32c(payload), 0);
  const finalPath = join(dir, snapFileName(term, index));
  const tempPath = `${finalPath}.tmp`;
  timedWrite(() => {
    const fd = openSync(tempPath, 'w');
    try {
      writeSync(fd, header);
      writeSync(fd, payload);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
  renameSync(tempPath, finalPath);
  fsyncDirectory(dir);
}

function asConfState(value: unknown, path: string): ConfState {
  const state = value as ConfState;
  const isIdList = (list: unknown) => Array.isArray(list) && list.every((id) => typeof id === 'bigint');
  if (
    typeof state !== 'object' ||
    state === null ||
    !isIdList(state.voters) ||
    !isIdList(state.learners) ||
    !isIdList(state.votersOutgoing) ||
    !isIdList(state.learnersNext) ||
    typeof state.autoLeave !== 'boolean'
  ) {
    throw new Error(`snapshot file ${path}: malformed membership`);
  }
  return state;
}

/** Reads the snapshot at (term, index); throws naming the file when it is missing or corrupt. */
export function loadSnapFile(dir: string, term: number, index: number): Snapshot {
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
  const decoded = packr.unpack(payload) as { index: unknown; term: unknown; confState: unknown; data?: unknown };
  if (decoded.index !== index || decoded.term !== term) {
    throw new Error(`snapshot file ${path} holds index ${String(decoded.index)} term ${String(decoded.term)}`);
  }
  if (!(decoded.data instanceof Uint8Array)) throw new Error(`snapshot file ${path}: no snapshot data`);
  decodeMembership(decoded.data, `snapshot file ${path}`);
  return { data: decoded.data, metadata: { index, term, confState: asConfState(decoded.confState, path) } };
}

/** Deletes all but the newest `keep` snapshot files (etcd's --max-snapshots; 0 keeps all). */
export function purgeSnapFiles(dir: string, keep: number): void {
  if (keep <= 0) return;
  const names = readdirSync(dir)
    .filter((name) => snapNamePattern.test(name))
    .sort();
  for (const name of names.slice(0, Math.max(0, names.length - keep))) unlinkSync(join(dir, name));
}
