/** Binds a WatchableStore to a KvStore: history and previous values come from the store, writes arrive through its onChanges hook. */

import { EtcdError } from '../api/errors.js';
import { type KeyValue, rangeRequestWith } from '../api/types.js';
import type { Backend } from '../mvcc/backend.js';
import { KvStore, type KvStoreOptions } from '../mvcc/kv-store.js';
import { WatchableStore, type WatchableStoreOptions, type WatchSource } from './watchable-store.js';

const emptyBytes = new Uint8Array(0);

/** The WatchSource view of a KvStore. */
export function kvStoreWatchSource(store: KvStore): WatchSource {
  return {
    currentRevision: () => store.currentRevision,
    compactRevision: () => store.compactRevision,
    scanEvents: (fromRevision, visit) => store.scanEvents(fromRevision, (event, rev) => visit(event, rev.main)),
    previousKv: (key, revision) => previousKv(store, key, revision),
  };
}

/** The key's value at `revision`, or undefined when it had none or that revision is compacted. */
function previousKv(store: KvStore, key: Uint8Array, revision: number): KeyValue | undefined {
  // Revision 0 would mean "now" to range; revision 1 is the empty store.
  if (revision < 2) return undefined;
  try {
    return store.range(rangeRequestWith({ key, rangeEnd: emptyBytes, limit: 1, revision, serializable: true })).kvs[0];
  } catch (error) {
    // A compacted revision has no previous value to offer, as in etcd.
    if (error instanceof EtcdError) return undefined;
    throw error;
  }
}

/** Opens a KvStore whose every applied write is passed to a WatchableStore, and that WatchableStore. */
export function openWatchableKvStore(
  backend: Backend,
  options: KvStoreOptions = {},
  watchOptions: WatchableStoreOptions = {},
): { store: KvStore; watchable: WatchableStore } {
  const watchable = new WatchableStore(undefined, watchOptions);
  const store = KvStore.open(backend, {
    ...options,
    onChanges: (events, revision) => {
      options.onChanges?.(events, revision);
      watchable.notify(events, revision);
    },
  });
  watchable.attach(kvStoreWatchSource(store));
  return { store, watchable };
}
