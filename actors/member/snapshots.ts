/**
 * Snapshots, as etcd's server takes, sends, receives and installs them. Taking: every
 * --snapshot-count applied entries (or once the in-memory log grew by raftLogGrowthBytesMax) the
 * backend is synced to disk, the membership saved in a snap file, the WAL told, and the in-memory log
 * compacted to a tail for followers. Sending: a copy of the backend database goes with a MsgSnap.
 * Receiving: the database is stored durably before Raft steps the message. Installing: the
 * received database becomes the backend and everything is rebuilt from it. These share files,
 * indexes and the backend's life, and none of it is on the path of an ordinary write.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { errors } from '../../src/api/errors.js';
import type { MemberConfig } from '../../src/config/config.js';
import { assert } from '../../src/lib/assert.js';
import { raftLogGrowthBytesMax, snapshotCatchUpBytesMax, snapshotCatchUpEntriesDefault } from '../../src/lib/limits.js';
import { formatId } from '../../src/membership/ids.js';
import type { MemoryStorage } from '../../src/raft/storage.js';
import type { Message, Snapshot } from '../../src/raft/types.js';
import {
  decodeMembership,
  encodeMembership,
  purgeSnapFiles,
  saveSnapFile,
  snapDbFileName,
} from '../../src/snap/snap-file.js';
import type { MemberLifecycle } from '../../machines/member-lifecycle.js';
import type { RawNode } from '../../machines/raw-node.js';
import type { RaftTransport } from '../peer/links.js';
import { storeSnapshotDb, type SnapshotBody, type SnapshotDbTimings } from '../peer/snapshot-transfer.js';
import { failpointAsync, failpointsOn } from '../shared/failpoints.js';
import type { Logger } from '../shared/logger.js';
import type { WalClient } from '../wal/client.js';
import type { Applier } from './apply.js';
import type { MemberPaths } from './bootstrap.js';
import type { KeySpace } from './key-space.js';
import type { Membership } from './membership.js';
import { finishInstall, sendDirFor, stageReceivedDb } from './snapshot-install.js';

/** What snapshots need from the rest of the member, each given at construction. */
export interface SnapshotsParts {
  config: Pick<MemberConfig, 'snapshotCount' | 'maxSnapshots'>;
  paths: Pick<MemberPaths, 'snapDir' | 'backendPath'>;
  storage: MemoryStorage;
  wal: Pick<WalClient, 'saveSnapshot' | 'releaseTo'>;
  raft: Pick<RawNode, 'confState'>;
  keySpace: Pick<KeySpace, 'backend' | 'replaceBackend' | 'store'>;
  membership: Pick<Membership, 'snapshotMembership' | 'restore'>;
  applier: Pick<Applier, 'index' | 'jumpTo'>;
  transport: Pick<RaftTransport<unknown>, 'sendSnapshot'>;
  lifecycle: MemberLifecycle;
  logger: Logger;
  fail: (error: Error) => void;
}

/** Told how long snap files took to write and fsync, and received databases to store (all in seconds). */
export interface SnapshotTimings extends SnapshotDbTimings {
  snapFileSynced(seconds: number): void;
}

export class Snapshots {
  private snapshotIndex: number;
  private timings: SnapshotTimings | undefined;
  /** Whether a snapshot from the leader is being installed (etcd_server_snapshot_apply_in_progress_total). */
  installing = false;
  /** Entry bytes the in-memory log held right after its last compaction (see due()). */
  private logBytesAfterCompaction = 0;
  private taking: Promise<void> | undefined;
  /** Snapshots being sent to followers; the member's stop waits for them. */
  private readonly sending = new Set<Promise<boolean>>();

  /** `snapshotIndex`: the index of the snapshot the WAL holds (0 when none). */
  constructor(
    private readonly parts: SnapshotsParts,
    snapshotIndex: number,
  ) {
    this.snapshotIndex = snapshotIndex;
  }

  /** From now on `timings` hears how long snap files and received databases take to store. */
  observeTimings(timings: SnapshotTimings): void {
    this.timings = timings;
  }

  /** A snapshot from the leader is on disk (its database and this file) before the WAL names it. */
  saveIncoming(snapshot: Snapshot): void {
    this.saveSnapFile(snapshot);
  }

  /** Writes a snap file, its write and fsync timed for the metrics. */
  private saveSnapFile(snapshot: Snapshot): void {
    saveSnapFile(this.parts.paths.snapDir, snapshot, (write) => {
      const startedAt = performance.now();
      write();
      this.timings?.snapFileSynced((performance.now() - startedAt) / 1000);
    });
  }

  /** Takes a snapshot in the background when one is due and none is being taken. */
  takeIfDue(): void {
    if (this.taking !== undefined || !this.due()) return;
    this.taking = this.take().finally(() => {
      this.taking = undefined;
    });
  }

  /**
   * etcd's snapshot sender: a copy of the backend database goes to the follower with the MsgSnap.
   * Resolves with whether the follower took it (never rejects); Raft is told by the caller.
   */
  send(message: Message): Promise<boolean> {
    const sending = this.sendDatabase(message);
    this.sending.add(sending);
    void sending.finally(() => this.sending.delete(sending));
    return sending;
  }

  /** etcd's snapshot handler: the received database is stored durably before Raft sees the MsgSnap. */
  async storeReceived(message: Message, body: SnapshotBody): Promise<void> {
    if (!this.parts.lifecycle.acceptsRaftMessages) throw errors.stopped();
    const index = (message.snapshot as Snapshot).metadata.index;
    const bytes = await storeSnapshotDb(
      body,
      join(this.parts.paths.snapDir, snapDbFileName(index)),
      undefined,
      this.timings,
    );
    this.parts.logger.info(
      { 'remote-peer-id': formatId(message.from), index, 'db-bytes': bytes },
      'received and saved database snapshot',
    );
  }

  /**
   * Replaces the state with a snapshot Raft accepted (etcd's applySnapshot): the received database
   * becomes the backend, the store, lessor and membership are rebuilt from it, and watchers re-read
   * history. It serves from the new backend at once; the old one is closed and removed behind it.
   */
  async install(snapshot: Snapshot): Promise<void> {
    this.installing = true;
    try {
      await this.installNow(snapshot);
    } finally {
      this.installing = false;
    }
  }

  private async installNow(snapshot: Snapshot): Promise<void> {
    const { index, term } = snapshot.metadata;
    const { paths, keySpace } = this.parts;
    const staged = stageReceivedDb(paths.snapDir, paths.backendPath, index);
    const old = keySpace.replaceBackend(staged);
    this.parts.membership.restore(decodeMembership(snapshot.data, `snapshot at index ${index}`));
    this.parts.applier.jumpTo(index);
    this.snapshotIndex = index;
    this.logBytesAfterCompaction = 0;
    await old.close();
    finishInstall(staged, paths.backendPath);
    purgeSnapFiles(paths.snapDir, this.parts.config.maxSnapshots);
    this.parts.logger.info(
      {
        index,
        term,
        'backend-consistent-index': keySpace.store.consistentIndex,
        'backend-revision': keySpace.store.currentRevision,
      },
      'applied snapshot from the leader',
    );
  }

  /** Resolves once the snapshot being taken (if any) is saved. */
  async settleTaking(): Promise<void> {
    await this.taking;
  }

  /** Resolves once every snapshot being sent has gone or failed. */
  async settleSending(): Promise<void> {
    await Promise.all(this.sending);
  }

  /**
   * A snapshot is due every --snapshot-count applied entries, as in etcd, and also once the
   * in-memory log has grown by raftLogGrowthBytesMax since its last compaction: a log of large
   * entries (big values, batched txns) would otherwise hold hundreds of MB until the count is
   * reached, where the WAL already holds every entry on disk.
   */
  private due(): boolean {
    const appliedIndex = this.parts.applier.index;
    if (appliedIndex <= this.snapshotIndex) return false;
    if (appliedIndex - this.snapshotIndex >= this.parts.config.snapshotCount) return true;
    return this.parts.storage.entryBytes() - this.logBytesAfterCompaction >= raftLogGrowthBytesMax;
  }

  /**
   * Records a snapshot at the applied index, as etcd does every --snapshot-count entries: the
   * backend is synced to disk (it holds the state up to that index), the membership is saved in a snap
   * file, the WAL notes the snapshot and drops segments behind it, and the in-memory log keeps
   * only a tail for followers to catch up from: etcd's 5,000 entries, or fewer when those would
   * hold more than snapshotCatchUpBytesMax. A follower further behind gets the snapshot.
   */
  private async take(): Promise<void> {
    const { storage, wal, paths } = this.parts;
    const index = this.parts.applier.index;
    const term = storage.term(index);
    const confState = this.parts.raft.confState();
    try {
      assert(
        index > this.snapshotIndex,
        () => `a snapshot at index ${index} taken after one at index ${this.snapshotIndex}`,
      );
      // The backend commits without syncing (the WAL holds every entry until now); once the WAL
      // marks this snapshot, the entries before it are no longer replayed, so the backend must be
      // on disk first, as etcd's backend commit fsyncs before its snapshot.
      await this.parts.keySpace.backend.sync();
      const data = encodeMembership(this.parts.membership.snapshotMembership());
      this.saveSnapFile({ data, metadata: { index, term, confState } });
      storage.createSnapshot(index, confState, data);
      await wal.saveSnapshot(index, term);
      const compactIndex = Math.max(
        index - snapshotCatchUpEntriesDefault,
        storage.compactIndexKeeping(index, snapshotCatchUpBytesMax),
      );
      if (compactIndex > storage.firstIndex()) storage.compact(compactIndex);
      this.logBytesAfterCompaction = storage.entryBytes();
      await wal.releaseTo(index);
      purgeSnapFiles(paths.snapDir, this.parts.config.maxSnapshots);
      this.snapshotIndex = index;
      this.parts.logger.info({ index, term }, 'saved snapshot');
    } catch (error) {
      this.parts.fail(error as Error);
    }
  }

  private async sendDatabase(message: Message): Promise<boolean> {
    const to = formatId(message.to);
    const index = message.snapshot?.metadata.index;
    const dir = sendDirFor(this.parts.paths.snapDir, message.to);
    try {
      const dbPath = await this.parts.keySpace.backend.copyTo(dir);
      this.parts.logger.info({ 'remote-peer-id': to, index }, 'sending database snapshot');
      if (failpointsOn) await failpointAsync('snapshotBeforeSend');
      await this.parts.transport.sendSnapshot(message, dbPath);
      this.parts.logger.info({ 'remote-peer-id': to, index }, 'sent database snapshot');
      return true;
    } catch (error) {
      this.parts.logger.warn(
        { 'remote-peer-id': to, index, error: (error as Error).message },
        'failed to send database snapshot',
      );
      return false;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
