/**
 * The control plane between the supervisor (main thread) and member actors (worker threads),
 * carried by comlink: the supervisor calls these methods on a member's proxy. Data-path
 * messages (WAL appends, peer frames) have their own typed unions beside their threads.
 */
import type { MessagePort } from 'node:worker_threads';
import type { MemberConfig } from '../../src/config/config.js';

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
  /** Resolves once the member serves clients. */
  ready(): Promise<MemberStatus>;
  status(): Promise<MemberStatus>;
  /** Stops serving, flushes and closes storage; the worker exits after. */
  stop(): Promise<void>;
}

/** Posted by a member worker when it cannot go on; the supervisor exits non-zero. */
export interface MemberFatalMessage {
  type: 'fatal';
  message: string;
}
