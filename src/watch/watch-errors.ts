/** etcd's words for watch failures, sent to clients as a create response's cancel_reason. */
export const watchErrors = {
  /** mvcc.ErrEmptyWatcherRange: a range end at or before the key. */
  emptyRange: 'mvcc: watcher range is empty',
  /** mvcc.ErrWatcherDuplicateID: a client-chosen watch id already in use on the stream. */
  duplicateId: 'mvcc: duplicate watch ID provided on the WatchStream',
} as const;
