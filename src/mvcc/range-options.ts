/**
 * What etcd's applier does around the MVCC range: how many revisions to fetch, the
 * mod/create revision filters, sorting (with etcd's default-sort rule) and the limit.
 */

import { type KeyValue, type RangeRequest, type RangeResult, SortOrder, SortTarget } from '../api/types.js';
import { unreachable } from '../lib/assert.js';
import { compareBytes } from '../lib/bytes.js';

/**
 * The limit handed to the index: none when results are sorted or filtered afterwards (all must
 * be seen first), else one extra so `more` can be told. etcd looks at the raw sort order here,
 * so a non-key target with order none still fetches limit + 1 and sorts only those.
 */
export function fetchLimit(request: RangeRequest): number {
  const filtered =
    request.sortOrder !== SortOrder.none ||
    request.minModRevision !== 0 ||
    request.maxModRevision !== 0 ||
    request.minCreateRevision !== 0 ||
    request.maxCreateRevision !== 0;
  if (filtered || request.limit <= 0) return 0;
  return request.limit + 1;
}

/** Applies filters, sort, limit and keys_only to what the index returned; `count` is left as fetched. */
export function shapeRangeResult(request: RangeRequest, kvs: KeyValue[], count: number): RangeResult {
  let shaped = kvs.filter((kv) => keepByRevisions(request, kv));
  const order = effectiveSortOrder(request);
  if (order !== SortOrder.none) shaped = sortKvs(shaped, request.sortTarget, order);
  let more = false;
  if (request.limit > 0 && shaped.length > request.limit) {
    shaped = shaped.slice(0, request.limit);
    more = true;
  }
  if (request.keysOnly) shaped = shaped.map((kv) => ({ ...kv, value: new Uint8Array(0) }));
  return { kvs: shaped, more, count };
}

function keepByRevisions(request: RangeRequest, kv: KeyValue): boolean {
  if (request.maxModRevision !== 0 && kv.modRevision > request.maxModRevision) return false;
  if (request.minModRevision !== 0 && kv.modRevision < request.minModRevision) return false;
  if (request.maxCreateRevision !== 0 && kv.createRevision > request.maxCreateRevision) return false;
  if (request.minCreateRevision !== 0 && kv.createRevision < request.minCreateRevision) return false;
  return true;
}

/** The index returns keys ascending, so etcd sorts by default only when the target is not the key. */
function effectiveSortOrder(request: RangeRequest): SortOrder {
  if (request.sortOrder === SortOrder.none && request.sortTarget !== SortTarget.key) return SortOrder.ascend;
  return request.sortOrder;
}

/** A stable sort: ties keep key order in both directions, as Go's sort does for small inputs. */
function sortKvs(kvs: KeyValue[], target: SortTarget, order: SortOrder): KeyValue[] {
  const compare = comparatorFor(target);
  const sign = order === SortOrder.descend ? -1 : 1;
  return [...kvs].sort((a, b) => sign * compare(a, b));
}

function comparatorFor(target: SortTarget): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case SortTarget.key:
      return (a, b) => compareBytes(a.key, b.key);
    case SortTarget.version:
      return (a, b) => a.version - b.version;
    case SortTarget.create:
      return (a, b) => a.createRevision - b.createRevision;
    case SortTarget.mod:
      return (a, b) => a.modRevision - b.modRevision;
    case SortTarget.value:
      return (a, b) => compareBytes(a.value, b.value);
    default:
      return unreachable(target);
  }
}
