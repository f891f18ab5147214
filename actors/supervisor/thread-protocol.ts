/**
 * Everything threads say to each other, as plain types:
 *
 * - the control plane between the supervisor (main thread) and member actors (worker threads),
 *   carried by comlink: the supervisor calls MemberControl's methods on a member's proxy;
 * - the messages between a member and its WAL thread, one discriminated union each way on
 *   `type`, posted on the worker (actors/wal/client.ts and actors/wal/thread.ts speak it);
 * - in single-host mode, the control messages member threads exchange on their peer ports
 *   (actors/peer/port-transport.ts). The Raft frames beside them are bytes, whose format is
 *   src/raft/message-codec.ts.
 */
import type { MessagePort } from 'node:worker_threads';
import type { MemberConfig } from '../../src/config/config.js';
import type { Entry, HardState } from '../../src/raft/types.js';
import type { WalMetadata, WalSnapshotMarker } from '../../src/wal/format.js';
import type { WalState } from '../../src/wal/reader.js';
import type { PeerAnswer, PeerCall } from '../peer/links.js';

// ------------------------------------------------------------------------------------------------
// Supervisor and member threads
// ------------------------------------------------------------------------------------------------

/** What a member worker is started with (structured-cloned as workerData). */
export interface MemberWorkerData {
  config: MemberConfig;
  /** Single-host mode: one MessagePort per peer member, keyed by its ID in decimal. */
  peerPorts?: [string, MessagePort][];
}

/** A member's state as `endpoint status` and the dashboard show it; IDs are hex strings. */
export interface MemberStatus {
  name: string;
  memberId: string;
  clusterId: string;
  leaderId: string;
  role: string;
  raftTerm: number;
  raftIndex: number;
  raftAppliedIndex: number;
  revision: number;
  compactRevision: number;
  backendBytes: number;
  clientUrls: string[];
}

/** The API a member actor exposes to its supervisor. */
export interface MemberControl {
  /** Resolves once the member is published through Raft and serves clients; never when it stops first. */
  ready(): Promise<MemberStatus>;
  status(): Promise<MemberStatus>;
  /**
   * Stops serving, flushes and closes storage (the worker exits after), with etcd's lines; a leader first hands leadership to a peer when
   * `transferLeadership` is set (not when every member of the cluster stops together, in one process).
   */
  stop(transferLeadership: boolean): Promise<void>;
}

/** Posted by a member worker when it cannot go on; the supervisor exits non-zero. */
export interface MemberFatalMessage {
  type: 'fatal';
  message: string;
  /** The member has logged the error itself, in etcd's words, so the supervisor does not repeat it. */
  logged?: boolean;
}

// ------------------------------------------------------------------------------------------------
// Member and WAL thread. Entries travel by structured clone: measured on the member thread,
// cloning 64 entries of 256 bytes costs about 0.5 us per entry, while encoding them into frames
// there first (to transfer one ArrayBuffer) costs 2-3 us per entry, so the member sends plain
// entries and the WAL thread does the encoding and checksums.
// ------------------------------------------------------------------------------------------------

/** Handed to the thread as workerData: open the WAL in `dir`, or create it with `metadata`. */
export interface WalThreadInit {
  dir: string;
  metadata: WalMetadata;
  segmentBytes: number | undefined;
  /** --max-wals (see WalOptions); undefined deletes every segment a snapshot covers. */
  maxWals: number | undefined;
  /** --unsafe-no-fsync. */
  unsafeNoFsync: boolean;
}

/** Member to WAL thread. `seq` increases by one per request; replies name the request they cover. */
export type WalRequest =
  | {
      type: 'wal.append';
      seq: number;
      entries: Entry[];
      hardState: HardState | undefined;
      snapshot: WalSnapshotMarker | undefined;
    }
  /** A hard state whose loss is harmless (only its commit index moved): written, not waited for, never fsynced on its own. */
  | { type: 'wal.state'; hardState: HardState }
  | { type: 'wal.release'; seq: number; index: number }
  | { type: 'wal.close'; seq: number };

/** WAL thread to member. */
export type WalReply =
  | { type: 'wal.opened'; state: WalState; created: boolean }
  /** Every append with seq at or below `seq` is durable; `syncCount` counts fdatasyncs so far; `syncMs` is this sync's time. */
  | { type: 'wal.synced'; seq: number; syncCount: number; syncMs: number; writtenBytes: number }
  | { type: 'wal.released'; seq: number }
  | { type: 'wal.closed'; seq: number; syncCount: number }
  | { type: 'wal.log'; message: string }
  /** The WAL is unusable (a failed write or fsync cannot be retried safely); the thread exits. */
  | { type: 'wal.failed'; message: string };

// ------------------------------------------------------------------------------------------------
// Member and member, single-host mode: one MessagePort per pair of members.
// ------------------------------------------------------------------------------------------------

/** The control messages a peer port carries besides frames (which are bare ArrayBuffers). */
export type PortControl =
  | { kind: 'snapshot'; seq: number; frame: ArrayBuffer; dbPath: string }
  | { kind: 'snapshot-done'; seq: number; error?: string }
  | { kind: 'call'; seq: number; call: PeerCall }
  | { kind: 'call-answer'; seq: number; answer: PeerAnswer };
