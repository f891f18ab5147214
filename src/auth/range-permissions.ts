/**
 * A user's key permissions merged from all their roles into sorted, disjoint intervals, one list
 * for reading and one for writing (etcd's unifiedRangePermissions). A check on the request path
 * is then a binary search. Keys are latin1 strings (keyToString), which compare as their bytes do;
 * an interval's end of undefined reaches past every key.
 */
import { keyToString } from '../lib/bytes.js';
import { PermissionType, type Permission } from './types.js';

/** [start, end): end undefined is unbounded. */
interface Interval {
  start: string;
  end: string | undefined;
}

/** Sorted, disjoint, non-adjacent intervals. */
export class MergedIntervals {
  private constructor(private readonly intervals: readonly Interval[]) {}

  /** Merges any intervals (overlapping or touching ones join). */
  static of(intervals: Interval[]): MergedIntervals {
    const sorted = [...intervals].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    const merged: Interval[] = [];
    for (const interval of sorted) {
      const last = merged[merged.length - 1];
      if (last !== undefined && (last.end === undefined || interval.start <= last.end)) {
        if (last.end !== undefined && (interval.end === undefined || interval.end > last.end)) last.end = interval.end;
        continue;
      }
      merged.push({ ...interval });
    }
    return new MergedIntervals(merged);
  }

  /** The interval that starts at or before `key`, if any. */
  private covering(key: string): Interval | undefined {
    let low = 0;
    let high = this.intervals.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.intervals[mid]!.start <= key) low = mid + 1;
      else high = mid;
    }
    return low === 0 ? undefined : this.intervals[low - 1];
  }

  /** True when `key` lies in some interval. */
  containsKey(key: string): boolean {
    const interval = this.covering(key);
    return interval !== undefined && (interval.end === undefined || key < interval.end);
  }

  /** True when all of [start, end) (end undefined: unbounded) lies in one interval. */
  containsRange(start: string, end: string | undefined): boolean {
    const interval = this.covering(start);
    if (interval === undefined) return false;
    if (interval.end === undefined) return true;
    return end !== undefined && end <= interval.end;
  }
}

/** A permission's interval: a single key, [key, rangeEnd), or from key on (rangeEnd "\0"). */
function permissionInterval(permission: Permission): Interval {
  const start = keyToString(permission.key);
  if (permission.rangeEnd.length === 0) return { start, end: `${start}\0` };
  if (permission.rangeEnd.length === 1 && permission.rangeEnd[0] === 0) return { start, end: undefined };
  return { start, end: keyToString(permission.rangeEnd) };
}

/** What one user may read and write. */
export interface RangePermissions {
  read: MergedIntervals;
  write: MergedIntervals;
}

/** Merges the permissions of every role given. */
export function mergePermissions(permissions: Iterable<Permission>): RangePermissions {
  const read: Interval[] = [];
  const write: Interval[] = [];
  for (const permission of permissions) {
    const interval = permissionInterval(permission);
    if (permission.permType !== PermissionType.write) read.push(interval);
    if (permission.permType !== PermissionType.read) write.push({ ...interval });
  }
  return { read: MergedIntervals.of(read), write: MergedIntervals.of(write) };
}

/**
 * etcd's check of a request's key and range end: an empty range end is the key alone, "\0" is
 * every key from `key` on, anything else is [key, rangeEnd).
 */
export function permits(intervals: MergedIntervals, key: Uint8Array, rangeEnd: Uint8Array): boolean {
  const start = keyToString(key);
  if (rangeEnd.length === 0) return intervals.containsKey(start);
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return intervals.containsRange(start, undefined);
  return intervals.containsRange(start, keyToString(rangeEnd));
}
