/**
 * etcdserverpb.Watch messages between proto-loader's wire objects and the watch domain, and
 * etcd's splitting of a large response into fragments.
 */

import {
  headerToWire,
  keyValueToWire,
  type WireHeader,
  type WireKeyValue,
  type WireMessage,
} from '../api/proto-wire.js';
import type { ResponseHeader } from '../api/types.js';
import type { WatchEvent, WatchFilter } from './watchable-store.js';

export interface WatchCreate {
  key: Uint8Array;
  rangeEnd: Uint8Array;
  startRevision: number;
  progressNotify: boolean;
  filters: WatchFilter[];
  prevKv: boolean;
  watchId: number;
  fragment: boolean;
}

/** One WatchRequest; `none` is a request without a known union member, which etcd ignores. */
export type WatchRequest =
  | { type: 'create'; create: WatchCreate }
  | { type: 'cancel'; watchId: number }
  | { type: 'progress' }
  | { type: 'none' };

/** The fields of a WatchResponse besides the header; absent ones take protobuf defaults. */
export interface WatchResponseFields {
  watchId: number;
  created?: boolean;
  canceled?: boolean;
  compactRevision?: number;
  cancelReason?: string;
  fragment?: boolean;
  events?: WatchEvent[];
}

export interface WireWatchEvent {
  type: number;
  kv: WireKeyValue;
  prevKv: WireKeyValue | null;
}

export interface WireWatchResponse {
  header: WireHeader;
  watchId: string;
  created: boolean;
  canceled: boolean;
  compactRevision: string;
  cancelReason: string;
  fragment: boolean;
  events: WireWatchEvent[];
}

const emptyBytes = new Uint8Array(0);
const eventTypePut = 0;
const eventTypeDelete = 1;

function toNumber(value: unknown): number {
  return value === undefined || value === null || value === '' ? 0 : Number(value);
}

function toBytes(value: unknown): Uint8Array {
  return value instanceof Uint8Array ? value : emptyBytes;
}

export function watchRequestFromWire(wire: WireMessage): WatchRequest {
  switch (wire.requestUnion) {
    case 'createRequest': {
      const create = (wire.createRequest ?? {}) as Record<string, unknown>;
      const filters = Array.isArray(create.filters) ? (create.filters as number[]) : [];
      return {
        type: 'create',
        create: {
          key: toBytes(create.key),
          rangeEnd: toBytes(create.rangeEnd),
          startRevision: toNumber(create.startRevision),
          progressNotify: create.progressNotify === true,
          // Unknown filter values are ignored, as etcd's FiltersFromRequest does.
          filters: filters.filter((filter): filter is WatchFilter => filter === 0 || filter === 1),
          prevKv: create.prevKv === true,
          watchId: toNumber(create.watchId),
          fragment: create.fragment === true,
        },
      };
    }
    case 'cancelRequest':
      return { type: 'cancel', watchId: toNumber((wire.cancelRequest as Record<string, unknown> | null)?.watchId) };
    case 'progressRequest':
      return { type: 'progress' };
    default:
      return { type: 'none' };
  }
}

export function watchEventToWire(event: WatchEvent): WireWatchEvent {
  return {
    type: event.type === 'put' ? eventTypePut : eventTypeDelete,
    kv: keyValueToWire(event.kv),
    prevKv: event.prevKv === undefined ? null : keyValueToWire(event.prevKv),
  };
}

export function watchResponseToWire(header: ResponseHeader, fields: WatchResponseFields): WireWatchResponse {
  return {
    header: headerToWire(header),
    watchId: String(fields.watchId),
    created: fields.created ?? false,
    canceled: fields.canceled ?? false,
    compactRevision: String(fields.compactRevision ?? 0),
    cancelReason: fields.cancelReason ?? '',
    fragment: fields.fragment ?? false,
    events: (fields.events ?? []).map(watchEventToWire),
  };
}

/**
 * etcd's sendFragments: a response of at least `maxBytes` with two or more events goes out as
 * several, each under `maxBytes` (or holding a single event), all but the last marked `fragment`.
 * `sizeBytes` measures an encoded response.
 */
export function fragmentResponse(
  response: WireWatchResponse,
  maxBytes: number,
  sizeBytes: (response: WireWatchResponse) => number,
): WireWatchResponse[] {
  if (response.events.length < 2 || sizeBytes(response) < maxBytes) return [response];
  const emptySize = sizeBytes({ ...response, events: [] });
  // An event adds the same bytes to any response it joins, so measure each once.
  const eventSizes = response.events.map((event) => sizeBytes({ ...response, events: [event] }) - emptySize);
  const pieces: WireWatchResponse[] = [];
  let start = 0;
  while (start < response.events.length) {
    let size = emptySize + (eventSizes[start] as number);
    let end = start + 1;
    while (end < response.events.length && size + (eventSizes[end] as number) < maxBytes) {
      size += eventSizes[end] as number;
      end++;
    }
    pieces.push({ ...response, events: response.events.slice(start, end), fragment: end < response.events.length });
    start = end;
  }
  return pieces;
}

/** WatchResponse.watch_id is field 2, a varint: tag byte (2 << 3) | 0. */
const watchIdTag = 0x10;
/** Watch ids this encoder writes itself; others (negative ones a client chose) go through protobuf. */
/** clientv3's InvalidWatchID: the watch id of responses not tied to one watcher. */
export const invalidWatchId = -1;
/** clientv3's AutoWatchID: a create request with this id asks the server to choose. */
export const autoWatchId = 0;

export const framedWatchIdMax = Number.MAX_SAFE_INTEGER;

/** Bytes of the watch_id field for `watchId` (0 is omitted, as proto3 omits defaults). */
export function watchIdFieldBytes(watchId: number): number {
  if (watchId === 0) return 0;
  let bytes = 2;
  for (let rest = Math.floor(watchId / 128); rest > 0; rest = Math.floor(rest / 128)) bytes++;
  return bytes;
}

/** Writes the watch_id field at `offset`; returns the offset after it. */
export function writeWatchIdField(target: Uint8Array, offset: number, watchId: number): number {
  if (watchId === 0) return offset;
  target[offset++] = watchIdTag;
  let rest = watchId;
  while (rest >= 128) {
    target[offset++] = (rest % 128) | 0x80;
    rest = Math.floor(rest / 128);
  }
  target[offset++] = rest;
  return offset;
}
