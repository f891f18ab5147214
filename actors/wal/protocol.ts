/**
 * Messages between a member and its WAL thread, as one discriminated union on `type`
 * (to be merged into actors/supervisor/thread-protocol.ts). Entries travel by structured clone: measured on the
 * member thread, cloning 64 entries of 256 bytes costs about 0.5 us per entry, while encoding
 * them into frames there first (to transfer one ArrayBuffer) costs 2-3 us per entry, so the
 * member sends plain entries and the WAL thread does the encoding and checksums.
 */
import type { Entry, HardState } from '../../src/raft/types.js';
import type { WalMetadata, WalSnapshotMarker } from '../../src/wal/format.js';
import type { WalState } from '../../src/wal/reader.js';

/** Handed to the thread as workerData: open the WAL in `dir`, or create it with `metadata`. */
export interface WalThreadInit {
  dir: string;
  metadata: WalMetadata;
  segmentBytes: number | undefined;
}

/** Member to WAL thread. `seq` increases by one per request; replies name the request they cover. */
export type WalRequest =
  | { type: 'wal.append'; seq: number; entries: Entry[]; hardState: HardState | undefined; snapshot: WalSnapshotMarker | undefined }
  /** A hard state whose loss is harmless (only its commit index moved): written, not waited for, never fsynced on its own. */
  | { type: 'wal.state'; hardState: HardState }
  | { type: 'wal.release'; seq: number; index: number }
  | { type: 'wal.close'; seq: number };

/** WAL thread to member. */
export type WalReply =
  | { type: 'wal.opened'; state: WalState; created: boolean }
  /** Every append with seq at or below `seq` is durable; `syncCount` counts fdatasyncs so far. */
  | { type: 'wal.synced'; seq: number; syncCount: number }
  | { type: 'wal.released'; seq: number }
  | { type: 'wal.closed'; seq: number; syncCount: number }
  | { type: 'wal.log'; message: string }
  /** The WAL is unusable (a failed write or fsync cannot be retried safely); the thread exits. */
  | { type: 'wal.failed'; message: string };

export type WalMessage = WalRequest | WalReply;
