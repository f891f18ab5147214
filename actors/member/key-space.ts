/**
 * The applied state a member serves from: the LMDB backend, the lessor, the auth store and the
 * MVCC key space rebuilt from them, and the watchable store fed by every applied change. The backend is replaced
 * when a snapshot from the leader is installed, so the parts that read it ask this object for the
 * current one rather than keeping their own reference.
 */
import type { MemberConfig } from '../../src/config/config.js';
import { AlarmStore, type AlarmMember } from '../../src/alarm/alarm-store.js';
import { AuthStore } from '../../src/auth/auth-store.js';
import { Lessor, minLeaseTtlSeconds } from '../../src/lease/lessor.js';
import type { KvStore } from '../../src/mvcc/kv-store.js';
import { LmdbBackend, type LmdbBackendOptions } from '../../src/mvcc/lmdb-backend.js';
import { openWatchableKvStore } from '../../src/watch/kv-source.js';
import type { WatchableStore } from '../../src/watch/watchable-store.js';
import { WatchDriver } from '../client/grpc/watch-service.js';
import { failpoint, failpointsOn } from '../shared/failpoints.js';
import { powerLossJournalDir } from '../wal/power-loss-journal.js';

function backendOptions(config: MemberConfig): LmdbBackendOptions {
  const journalDir = powerLossJournalDir();
  const options: LmdbBackendOptions = {
    batchIntervalMs: config.backendBatchIntervalMs,
    batchLimit: config.backendBatchLimit,
    unsafeNoFsync: config.unsafeNoFsync,
    ...(journalDir === undefined ? {} : { durableCopiesDir: journalDir }),
  };
  if (!failpointsOn) return options;
  const commitHooks = { before: () => failpoint('beforeCommit'), after: () => failpoint('afterCommit') };
  return { ...options, commitHooks };
}

export class KeySpace {
  private commitObserver: ((commit: Promise<unknown>) => void) | undefined;

  private constructor(
    private current: LmdbBackend,
    private readonly config: MemberConfig,
    readonly lessor: Lessor,
    readonly store: KvStore,
    /** Watchers of this member's store (fed by every applied write). */
    readonly watchable: WatchableStore,
    readonly watchDriver: WatchDriver,
    /** The raised alarms, as the backend keeps them. */
    readonly alarms: AlarmStore,
    /** Users, roles and permissions, kept in the backend with the keys (and so in snapshots). */
    readonly auth: AuthStore,
  ) {}

  /** Opens the backend at `backendPath` and rebuilds the lessor and the key index from it. */
  static open(backendPath: string, config: MemberConfig, electionTicks: number): KeySpace {
    const backend = LmdbBackend.open(backendPath, backendOptions(config));
    const lessor = Lessor.open(backend, {
      minTtlSeconds: minLeaseTtlSeconds(electionTicks, config.heartbeatIntervalMs),
      expiredRetryMs: 5_000 + 2 * config.electionTimeoutMs,
      ...(config.leaseCheckpoint ? { checkpointIntervalMs: config.leaseCheckpointIntervalMs } : {}),
    });
    const watchDriver = new WatchDriver();
    // The lessor's key tracking learns of every applied change in order, before the watchers.
    const { store, watchable } = openWatchableKvStore(
      backend,
      {
        leaseExists: (id) => lessor.exists(id),
        onChanges: (events) => lessor.applyEvents(events),
        compactionBatchLimit: config.compactionBatchLimit,
      },
      { wake: watchDriver.wake },
    );
    watchDriver.attach(watchable);
    const auth = AuthStore.decode(backend.readAuth());
    const alarms = new AlarmStore(storedAlarms(backend));
    return new KeySpace(backend, config, lessor, store, watchable, watchDriver, alarms, auth);
  }

  /** Hands every backend commit, of this backend and of those that replace it, to `observer`. */
  observeCommits(observer: (commit: Promise<unknown>) => void): void {
    this.commitObserver = observer;
    this.current.observeCommits(observer);
  }

  /** The backend served from now. */
  get backend(): LmdbBackend {
    return this.current;
  }

  /**
   * Serves from the database in `dir` at once: the store, the lessor (demoted; the leader times
   * leases) and the watchers are rebuilt from it. Returns the backend it replaced, to be closed.
   */
  replaceBackend(dir: string): LmdbBackend {
    const old = this.current;
    this.current = LmdbBackend.open(dir, backendOptions(this.config));
    if (this.commitObserver !== undefined) this.current.observeCommits(this.commitObserver);
    this.store.restoreFrom(this.current);
    if (this.lessor.isPrimary) this.lessor.demote();
    this.lessor.recover(this.current);
    this.lessor.recoverAttachments(this.store.takeRestoredLeases());
    this.auth.restore(this.current.readAuth());
    this.watchable.resync();
    this.alarms.reset(storedAlarms(this.current));
    return old;
  }
}

function storedAlarms(backend: LmdbBackend): AlarmMember[] {
  const members: AlarmMember[] = [];
  backend.scanAlarms((member) => members.push(member));
  return members;
}
