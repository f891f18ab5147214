/**
 * Moving a snapshot's backend database from the leader to a follower that fell behind the
 * leader's log (etcd's snapshot sender and handler). The Raft MsgSnap travels as an ordinary peer
 * frame (cluster and member IDs checked as for any frame) at the head of a stream that goes on
 * with the database bytes:
 *
 *   [u32 BE frame length][frame: encodeFrame of the one MsgSnap][database bytes ...]
 *
 * Over the peer port this stream is the body of `POST /raft/snapshot`. In single-host mode both
 * members share the disk, so the frame travels over the MessagePort with the database's path.
 * The follower stores the database as `<snap-dir>/%016x.snap.db` (fsynced) before Raft sees the
 * message, so a snapshot Raft accepts always has its data on disk.
 */
import { createReadStream } from 'node:fs';
import { copyFile, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { backendDbBytesMax } from '../../src/lib/limits.js';
import { fsyncDirectory } from '../../src/wal/fs-sync.js';
import { failpointAsync, failpointsOn } from '../shared/failpoints.js';

/** Bytes of the frame length prefix. */
const frameLengthBytes = 4;
/** The peer path a snapshot stream is posted to (etcd's RaftSnapshotPrefix). */
export const snapshotPath = '/raft/snapshot';

/** How a snapshot's database reaches the follower: streamed, or as a file on the shared disk. */
export type SnapshotBody = { kind: 'stream'; chunks: AsyncIterable<Uint8Array> } | { kind: 'file'; path: string };

/** The bytes that precede the database in a snapshot stream. */
export function snapshotStreamHeader(frame: Uint8Array): Uint8Array {
  const header = new Uint8Array(frameLengthBytes + frame.length);
  new DataView(header.buffer).setUint32(0, frame.length);
  header.set(frame, frameLengthBytes);
  return header;
}

/** The whole stream a leader posts: header, then the database file. */
export async function* snapshotStream(frame: Uint8Array, dbPath: string): AsyncGenerator<Uint8Array> {
  yield snapshotStreamHeader(frame);
  for await (const chunk of createReadStream(dbPath)) yield chunk as Uint8Array;
}

/**
 * Splits a snapshot stream into its frame and the database bytes after it. Throws when the
 * stream ends inside the header or announces a frame over `frameBytesMax`.
 */
export async function readSnapshotHeader(
  chunks: AsyncIterable<Uint8Array>,
  frameBytesMax: number,
): Promise<{ frame: Uint8Array; rest: AsyncIterable<Uint8Array> }> {
  const iterator = chunks[Symbol.asyncIterator]();
  let buffered: Uint8Array = new Uint8Array(0);
  let frameBytes: number | undefined;
  for (;;) {
    if (frameBytes === undefined && buffered.length >= frameLengthBytes) {
      frameBytes = new DataView(buffered.buffer, buffered.byteOffset, frameLengthBytes).getUint32(0);
      if (frameBytes > frameBytesMax) throw new Error(`snapshot frame of ${frameBytes} bytes exceeds ${frameBytesMax}`);
    }
    if (frameBytes !== undefined && buffered.length >= frameLengthBytes + frameBytes) break;
    const next = await iterator.next();
    if (next.done === true) throw new Error(`snapshot stream ended inside its header (${buffered.length} bytes)`);
    buffered = concat(buffered, next.value);
  }
  const frame = buffered.slice(frameLengthBytes, frameLengthBytes + frameBytes);
  const leftover = buffered.subarray(frameLengthBytes + frameBytes);
  async function* rest(): AsyncGenerator<Uint8Array> {
    if (leftover.length > 0) yield leftover;
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value;
  }
  return { frame, rest: rest() };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a, 0);
  joined.set(b, a.length);
  return joined;
}

/** Told how long a received database took to fsync and to store in all, in seconds (etcd's etcd_snap_db_* histograms). */
export interface SnapshotDbTimings {
  fsynced(seconds: number): void;
  saved(seconds: number): void;
}

const untimed: SnapshotDbTimings = { fsynced: () => undefined, saved: () => undefined };

/**
 * Stores a received database at `finalPath` durably: written to a temp file, fsynced, renamed,
 * and the directory fsynced. A stream over `bytesMax` is refused and nothing is left behind; by
 * default that is the largest database the backend can open. `timings` hears how long the fsync
 * and the whole store took, once the database is stored.
 */
export async function storeSnapshotDb(
  body: SnapshotBody,
  finalPath: string,
  bytesMax = backendDbBytesMax,
  timings = untimed,
): Promise<number> {
  const startedAt = performance.now();
  const tempPath = `${finalPath}.tmp`;
  try {
    if (failpointsOn) await failpointAsync('snapshotBeforeReceive');
    const bytes =
      body.kind === 'file'
        ? await copyDb(body.path, tempPath, timings)
        : await writeDb(body.chunks, tempPath, bytesMax, timings);
    await rename(tempPath, finalPath);
    fsyncDirectory(dirname(finalPath));
    timings.saved(secondsSince(startedAt));
    return bytes;
  } catch (error) {
    await rm(tempPath, { force: true });
    throw error;
  }
}

function secondsSince(startedAt: number): number {
  return (performance.now() - startedAt) / 1000;
}

async function timedSync(file: FileHandle, timings: SnapshotDbTimings): Promise<void> {
  const startedAt = performance.now();
  await file.sync();
  timings.fsynced(secondsSince(startedAt));
}

async function writeDb(
  chunks: AsyncIterable<Uint8Array>,
  path: string,
  bytesMax: number,
  timings: SnapshotDbTimings,
): Promise<number> {
  const file = await open(path, 'w');
  let bytes = 0;
  try {
    for await (const chunk of chunks) {
      bytes += chunk.length;
      if (bytes > bytesMax) throw new Error(`snapshot database exceeds ${bytesMax} bytes`);
      await file.write(chunk);
    }
    await timedSync(file, timings);
  } finally {
    await file.close();
  }
  return bytes;
}

async function copyDb(source: string, path: string, timings: SnapshotDbTimings): Promise<number> {
  await copyFile(source, path);
  const file = await open(path, 'r+');
  try {
    await timedSync(file, timings);
    return (await file.stat()).size;
  } finally {
    await file.close();
  }
}
