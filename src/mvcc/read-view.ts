/**
 * Reading the store at a revision, shared by plain reads and by reads inside a write
 * transaction (which also see that transaction's own writes), as etcd's rangeKeys.
 */

import type { KeyValue } from '../api/types.js';
import { errors } from '../api/errors.js';
import { assert } from '../lib/assert.js';
import type { StoredKeyValue } from './backend.js';
import { keyToString } from '../lib/bytes.js';
import type { Revision } from './revision.js';
import type { TreeIndex } from './tree-index.js';

/** A consistent point to read from. */
export interface ReadView {
  /** The revision a read with revision 0 sees. */
  readonly rev: number;
  /** The compaction revision: reads below it fail. */
  readonly firstRev: number;
  valueAt(rev: Revision): StoredKeyValue | undefined;
}

/** Keys in the index form: undefined for a single key, '' for "no upper bound". */
export interface KeySpan {
  key: string;
  end: string | undefined;
}

/** etcd's mkGteRange: an empty range end means one key, a single zero byte means no upper bound. */
export function keySpan(key: Uint8Array, rangeEnd: Uint8Array): KeySpan {
  if (rangeEnd.length === 0) return { key: keyToString(key), end: undefined };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { key: keyToString(key), end: '' };
  return { key: keyToString(key), end: keyToString(rangeEnd) };
}

export interface RangeKeysOptions {
  /** 0 (or below) reads at the view's revision. */
  revision: number;
  /** Revisions to load at most; 0 for all. The count covers every live key regardless. */
  limit: number;
  countOnly: boolean;
}

/** The live keys of `span` at the requested revision, in key order, and how many there are. */
export function rangeKeys(
  index: TreeIndex,
  view: ReadView,
  span: KeySpan,
  options: RangeKeysOptions,
): { kvs: KeyValue[]; count: number } {
  let atRev = options.revision;
  if (atRev > view.rev) throw errors.futureRev();
  if (atRev <= 0) atRev = view.rev;
  if (atRev < view.firstRev) throw errors.compacted();
  const revs: Revision[] = [];
  let count = 0;
  index.visitLive(span.key, span.end, atRev, (hit) => {
    count++;
    if (!options.countOnly && (options.limit <= 0 || revs.length < options.limit)) revs.push(hit.modified);
  });
  const kvs = revs.map((rev) => {
    const stored = view.valueAt(rev);
    assert(
      stored !== undefined && !stored.tombstone,
      () => `index points at revision ${rev.main}/${rev.sub} which the backend lacks`,
    );
    return stored.kv;
  });
  return { kvs, count };
}
