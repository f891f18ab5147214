/**
 * Bounds and defaults of the watch path, named as etcd names them. They belong with the others in
 * src/lib/limits.ts; they live here until the lead moves them, since that file is shared.
 */

/**
 * Encoded bytes a stream holds for its client before its watchers become victims. etcd bounds its
 * channel at 128 responses (chanBufLen), but its send loop drains that channel while the store is
 * still notifying; here one write's whole fan-out is queued before anything is sent, so the bound
 * must hold a revision for every watcher of a busy stream (1,000 watchers of ~80 bytes is 80 KiB).
 */
export const streamQueuedBytesMax = 4 * 1024 * 1024;
/** Bytes of queued responses handed to gRPC in one write (always at least one response). */
export const streamWriteBytesMax = 256 * 1024;
/** etcd's maxWatchersPerSync: unsynced watchers caught up in one sync pass. */
export const watchersPerSyncMax = 512;
/** Stored events one sync pass reads at most (always finishing the revision it is in). */
export const syncEventsMaxDefault = 10_000;
/**
 * Key and value bytes one sync pass hands out at most (finishing the revision it is in): catch-up
 * responses stay under grpc-js's default 4 MiB receive limit, which the npm etcd3 client keeps.
 */
export const syncBytesMaxDefault = 1024 * 1024;
/** etcd's --experimental-watch-progress-notify-interval default: 10 minutes. */
export const progressNotifyIntervalMsDefault = 10 * 60 * 1000;
/** etcd raises shorter progress intervals to this minimum. */
export const progressNotifyIntervalMsMin = 100;
/** etcd's syncWatchersLoop period when unsynced watchers make no headway. */
export const syncRetryIntervalMs = 100;
/** etcd's syncVictimsLoop period while victims wait. */
export const victimRetryIntervalMs = 10;
/** clientv3's InvalidWatchID: the watch id of responses not tied to one watcher. */
export const invalidWatchId = -1;
/** clientv3's AutoWatchID: a create request with this id asks the server to choose. */
export const autoWatchId = 0;
