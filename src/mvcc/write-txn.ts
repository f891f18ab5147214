/**
 * One write transaction, as etcd's storeTxnWrite: every put and delete in it shares the main
 * revision currentRevision + 1 and takes the next sub revision. The index is updated at once,
 * values wait in the transaction until it ends, and reads inside it see both.
 */

import type { KeyValue } from '../api/types.js';
import { assert } from '../lib/assert.js';
import type { BackendBatch, StoredKeyValue } from './backend.js';
import { stringToKey } from '../lib/bytes.js';
import { type KeySpan, type ReadView } from './read-view.js';
import type { Revision } from './revision.js';
import type { TreeIndex } from './tree-index.js';

/** A change as watchers see it; a delete's kv holds the key and the deleting revision only. */
export interface MvccEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
}

const emptyBytes = new Uint8Array(0);

export class WriteTxn implements ReadView {
  /** Writes in sub revision order, so written[sub] is the write at (beginRev + 1, sub). */
  private readonly written: { rev: Revision; stored: StoredKeyValue }[] = [];

  constructor(
    private readonly index: TreeIndex,
    private readonly committed: ReadView,
    readonly beginRev: number,
  ) {}

  /** Reads see the transaction's own writes once it has any. */
  get rev(): number {
    return this.written.length > 0 ? this.beginRev + 1 : this.beginRev;
  }

  get firstRev(): number {
    return this.committed.firstRev;
  }

  get changed(): boolean {
    return this.written.length > 0;
  }

  valueAt(rev: Revision): StoredKeyValue | undefined {
    if (rev.main === this.beginRev + 1) return this.written[rev.sub]?.stored;
    return this.committed.valueAt(rev);
  }

  /** Writes `key` at the next sub revision, keeping its create revision if it is live. */
  put(key: Uint8Array, keyString: string, value: Uint8Array, lease: bigint): void {
    const main = this.beginRev + 1;
    const live = this.index.get(keyString, main);
    const kv: KeyValue = {
      key,
      createRevision: live === undefined ? main : live.created.main,
      modRevision: main,
      version: (live?.version ?? 0) + 1,
      value,
      lease,
    };
    const rev = { main, sub: this.written.length };
    this.record(rev, { kv, tombstone: false });
    this.index.put(keyString, rev);
  }

  /** Deletes every key of `span` live as of this transaction; returns how many. */
  deleteRange(span: KeySpan): number {
    const keys: string[] = [];
    this.index.visitLive(span.key, span.end, this.rev, (hit) => keys.push(hit.key));
    for (const key of keys) this.delete(key);
    return keys.length;
  }

  /** The backend batch for this transaction's writes (meta is the caller's). */
  batch(): BackendBatch {
    return { puts: this.written, deletes: [], meta: {} };
  }

  /** The writes as watch events, in sub revision order. */
  events(): MvccEvent[] {
    return this.written.map(({ rev, stored }) =>
      stored.tombstone
        ? { type: 'delete' as const, kv: { ...stored.kv, modRevision: rev.main } }
        : { type: 'put' as const, kv: stored.kv },
    );
  }

  private delete(keyString: string): void {
    const rev = { main: this.beginRev + 1, sub: this.written.length };
    const kv: KeyValue = {
      key: stringToKey(keyString),
      createRevision: 0,
      modRevision: 0,
      version: 0,
      value: emptyBytes,
      lease: 0n,
    };
    this.record(rev, { kv, tombstone: true });
    const deleted = this.index.tombstone(keyString, rev);
    assert(deleted, () => `tombstone of live key ${JSON.stringify(keyString)} found nothing to delete`);
  }

  private record(rev: Revision, stored: StoredKeyValue): void {
    assert(
      rev.sub === this.written.length,
      () => `sub revision ${rev.sub} out of order after ${this.written.length} writes`,
    );
    this.written.push({ rev, stored });
  }
}
