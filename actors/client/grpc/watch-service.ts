/**
 * The etcdserverpb.Watch/Watch stream, as etcd's serverWatchStream: one stream carries many
 * watchers; create, cancel and progress requests are answered in the order they arrive, and a
 * watcher's events never precede its "created" response because both go through one queue.
 * Responses are queued as encoded bytes and written as whole batches: one gRPC write carries every
 * response queued since the previous write finished, so one revision's fan-out to 1,000 watchers of
 * a stream costs one write, not 1,000 (grpc-js waits for each write to reach the socket before
 * taking the next). A revision's header and events are encoded once and shared by every watcher
 * that gets them; only the watch_id field differs. While a stream holds streamQueuedBytesMax the
 * stream's watchers refuse more and become victims in the WatchableStore, which holds their events
 * until the WatchDriver offers them again, so a client that stops reading never delays writes.
 *
 * The WatchDriver runs the store's catch-up and victim passes off the write path.
 */
import type * as grpc from '@grpc/grpc-js';
import { headerToWire, loadProtos, type WireMessage } from '../../../src/api/proto-wire.js';
import type { ResponseHeader } from '../../../src/api/types.js';
import { assert } from '../../../src/lib/assert.js';
import {
  grpcOverheadBytes,
  progressNotifyIntervalMsDefault,
  progressNotifyIntervalMsMin,
  requestBytesDefault,
  streamQueuedBytesMax,
  streamWriteBytesMax,
  syncBytesMaxDefault,
  syncEventsMaxDefault,
  syncRetryIntervalMs,
  victimRetryIntervalMs,
} from '../../../src/lib/limits.js';
import { GrpcCode, watchCancelReasons } from '../../../src/api/errors.js';
import type { CallerCredentials } from '../../../src/auth/types.js';
import { grpcFramePrefixBytes, writeFramePrefix } from '../../../src/http2/frames.js';
import {
  autoWatchId,
  fragmentResponse,
  framedWatchIdMax,
  invalidWatchId,
  watchEventToWire,
  watchIdFieldBytes,
  watchRequestFromWire,
  watchResponseToWire,
  writeWatchIdField,
  type WatchCreate,
  type WatchRequest,
  type WatchResponseFields,
  type WireWatchResponse,
} from '../../../src/watch/watch-codec.js';
import {
  type Watcher,
  type WatchableStore,
  type WatchEvent,
  type WatchResponse,
  watchSpan,
} from '../../../src/watch/watchable-store.js';
import type { StreamHandler } from './router.js';
import type { GrpcStreamCall } from './calls.js';

export interface WatchHost {
  /** The header of a response sent now (cluster, member, current revision, term). */
  header(): ResponseHeader;
  watchable: WatchableStore;
  /** Asks for the store's catch-up and victim passes soon (WatchDriver.wake). */
  wake(): void;
  /** etcd's --experimental-watch-progress-notify-interval; raised to 100 ms at least. */
  progressNotifyIntervalMs?: number;
  /** etcd's --max-request-bytes: fragments stay under it plus gRPC's overhead. */
  maxRequestBytes?: number;
  /** Checks a watch's range; absent, every watch is allowed. */
  auth?: WatchAuthorizer;
}

/** Who may watch what. */
export interface WatchAuthorizer {
  /** Whether creates on a stream with these credentials are checked: auth is enabled, or the stream carries a token. */
  checks(credentials: CallerCredentials): boolean;
  /** Undefined when the caller may read [key, rangeEnd); otherwise the cancel reason to answer with. */
  refusal(credentials: CallerCredentials, key: Uint8Array, rangeEnd: Uint8Array): Promise<string | undefined>;
}

export interface WatchDriverOptions {
  /** Stored events one catch-up pass reads at most. */
  syncEventsMax?: number;
  /** Key and value bytes one catch-up pass hands out at most. */
  syncBytesMax?: number;
}

/**
 * Runs WatchableStore.syncUnsynced and retryVictims off the write path: at once (setImmediate)
 * while unsynced watchers make headway, every victimRetryIntervalMs while victims wait, and
 * every syncRetryIntervalMs when a pass changed nothing. `wake` is the store's wake option.
 */
export class WatchDriver {
  private watchable: WatchableStore | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly syncEventsMax: number;
  private readonly syncBytesMax: number;

  constructor(options: WatchDriverOptions = {}) {
    this.syncEventsMax = options.syncEventsMax ?? syncEventsMaxDefault;
    this.syncBytesMax = options.syncBytesMax ?? syncBytesMaxDefault;
  }

  attach(watchable: WatchableStore): void {
    assert(this.watchable === undefined, 'a watch driver is attached twice');
    this.watchable = watchable;
    this.wake();
  }

  /** Schedules a pass soon; cheap to call often. */
  readonly wake = (): void => {
    if (this.stopped || this.immediate !== undefined || this.watchable === undefined) return;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.immediate = setImmediate(() => this.run());
  };

  stop(): void {
    this.stopped = true;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private run(): void {
    this.immediate = undefined;
    const watchable = this.watchable;
    if (this.stopped || watchable === undefined) return;
    const moved = watchable.retryVictims();
    const pass = watchable.syncUnsynced(this.syncEventsMax, this.syncBytesMax);
    if (!watchable.hasPendingWork) return;
    if (moved > 0 || pass.advanced > 0) {
      this.wake();
      return;
    }
    const delayMs = watchable.counts.victims > 0 ? victimRetryIntervalMs : syncRetryIntervalMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.wake();
    }, delayMs);
    this.timer.unref();
  }
}

type WatchCall = GrpcStreamCall;

/** The Watch/Watch handler for createGrpcServer's `handlers`. */
export function watchHandler(host: WatchHost): StreamHandler {
  // The protos load on the first watch's first answer, not when the member starts.
  let serializeLoaded: ((response: unknown) => Buffer) | undefined;
  const serialize = (response: unknown): Buffer => {
    serializeLoaded ??= (loadProtos()['etcdserverpb.Watch'] as grpc.ServiceDefinition).Watch!.responseSerialize as (
      response: unknown,
    ) => Buffer;
    return serializeLoaded(response);
  };
  const encoder = new WatchEncoder(host, serialize);
  return (call: WatchCall) => {
    new WatchStream(call, host, encoder, framedWriter(call)).start();
  };
}

/** etcd adds up to a tenth of the interval as jitter so streams opened together do not tick together. */
function progressIntervalMs(host: WatchHost): number {
  const base = Math.max(host.progressNotifyIntervalMs ?? progressNotifyIntervalMsDefault, progressNotifyIntervalMsMin);
  return base + Math.floor(Math.random() * (base / 10));
}

/**
 * One queued WatchResponse: `head`, then this watcher's watch_id field, then `tail`. Event
 * responses share head (the header) and tail (the events) with every watcher of their revision;
 * other responses are whole messages in `head` with watch id 0 (written as nothing) and no tail.
 */
interface QueuedResponse {
  readonly head: Uint8Array;
  readonly watchId: number;
  readonly tail: Uint8Array;
  /** Encoded message bytes, without gRPC's prefix. */
  readonly messageBytes: number;
}

/** Encoded header and events of one revision's shared events array. */
interface EncodedEvents {
  readonly head: Uint8Array;
  readonly tail: Uint8Array;
}

const noBytes = new Uint8Array(0);
/** WatchResponse.created (field 3, varint) set to true. */
const createdField = new Uint8Array([(3 << 3) | 0, 1]);

function sameHeader(a: ResponseHeader, b: ResponseHeader): boolean {
  return (
    a.revision === b.revision && a.raftTerm === b.raftTerm && a.clusterId === b.clusterId && a.memberId === b.memberId
  );
}

/** Encodes responses; shared by every stream of a server so a revision's events are encoded once in all. */
export class WatchEncoder {
  /** Keyed by the store's shared events array: one entry per revision and watcher variant, freed with it. */
  private readonly encoded = new WeakMap<readonly WatchEvent[], EncodedEvents>();
  private lastHeader: { header: ResponseHeader; bytes: Uint8Array } | undefined;

  constructor(
    private readonly host: WatchHost,
    private readonly serialize: (response: unknown) => Buffer,
  ) {}

  /** The header (field 1) and events (field 11) of a response carrying `events` at `revision`. */
  events(events: readonly WatchEvent[], revision: number): EncodedEvents {
    let encoded = this.encoded.get(events);
    if (encoded === undefined) {
      const header = headerToWire({ ...this.host.header(), revision });
      // proto3 writes fields in any order; each part holds only its own field, in field order.
      encoded = { head: this.serialize({ header }), tail: this.serialize({ events: events.map(watchEventToWire) }) };
      this.encoded.set(events, encoded);
    }
    return encoded;
  }

  /** The header field alone, cached while consecutive calls see the same header (a burst of creates). */
  header(header: ResponseHeader): Uint8Array {
    const last = this.lastHeader;
    if (last === undefined || !sameHeader(last.header, header)) {
      this.lastHeader = { header, bytes: this.serialize({ header: headerToWire(header) }) };
    }
    return (this.lastHeader as { bytes: Uint8Array }).bytes;
  }

  /** A whole response (created, canceled, progress, fragments), through protobuf. */
  message(wire: WireWatchResponse): Uint8Array {
    return this.serialize(wire);
  }

  sizeBytes = (wire: WireWatchResponse): number => this.serialize(wire).length;
}

/** Hands a batch of queued responses to gRPC and calls `done` once it has been written out. */
type BatchWriter = (batch: readonly QueuedResponse[], messageBytes: number, done: () => void) => void;

/**
 * Writes whole batches as one write of several prefixed messages, so 10,000 watchers' responses
 * leave together instead of each waiting for the one before it to reach the socket.
 */
function framedWriter(call: WatchCall): BatchWriter {
  return (batch, messageBytes, done) => {
    const bytes = Buffer.allocUnsafe(messageBytes + batch.length * grpcFramePrefixBytes);
    let offset = 0;
    for (const response of batch) {
      offset = writeFramePrefix(bytes, offset, response.messageBytes);
      offset = writeMessage(bytes, offset, response);
    }
    assert(offset === bytes.length, () => `a framed batch of ${bytes.length} bytes was filled to ${offset}`);
    call.writeFramed(bytes, done, batch.length);
  };
}

function writeMessage(target: Buffer, offset: number, response: QueuedResponse): number {
  target.set(response.head, offset);
  let at = writeWatchIdField(target, offset + response.head.length, response.watchId);
  target.set(response.tail, at);
  at += response.tail.length;
  assert(
    at - offset === response.messageBytes,
    () => `a response of ${response.messageBytes} bytes was written as ${at - offset}`,
  );
  return at;
}

class WatchStream {
  /** Watchers by watch id, compacted ones included until the client cancels them, as in etcd. */
  private readonly watchers = new Map<number, Watcher>();
  /** etcd's progress map: watch id -> "no events sent since the last tick". */
  private readonly progressWanted = new Map<number, boolean>();
  private readonly fragmented = new Set<number>();
  private nextWatchId = 0;
  private queue: QueuedResponse[] = [];
  /** Message bytes in `queue`, prefixes not counted. */
  private queuedBytes = 0;
  /** A batch is with gRPC and its write has not finished. */
  private writing = false;
  private flushScheduled = false;
  /** A watcher was refused since the last write finished: its victim waits for room. */
  private refused = false;
  private closed = false;
  /**
   * Requests wait here, in order, once a create had to be checked by auth (asynchronously), so
   * none overtakes an earlier one; with auth disabled it stays undefined and requests run at once.
   */
  private ordered: Promise<void> | undefined;
  private progressTimer: NodeJS.Timeout | undefined;
  private readonly fragmentBytesMax: number;
  /** One sink and one sync callback for all the stream's watchers: 10,000 watchers need no closures of their own. */
  private readonly sink = (response: WatchResponse): boolean => this.deliver(response);

  constructor(
    private readonly call: WatchCall,
    private readonly host: WatchHost,
    private readonly encoder: WatchEncoder,
    private readonly writeBatch: BatchWriter,
  ) {
    this.fragmentBytesMax = (host.maxRequestBytes ?? requestBytesDefault) + grpcOverheadBytes;
  }

  start(): void {
    this.call.on('data', (wire: WireMessage) => this.onRequest(wire));
    // A client half-close leaves the stream open, as in etcd; it ends when the client cancels.
    this.call.on('cancelled', () => this.close());
    this.call.on('error', () => this.close());
    this.call.on('close', () => this.close());
    this.call.on('finish', () => this.close());
  }

  private onRequest(wire: WireMessage): void {
    if (this.closed) return;
    const request = watchRequestFromWire(wire);
    const auth = this.host.auth;
    if (this.ordered === undefined && (auth === undefined || request.type !== 'create' || !auth.checks(this.call)))
      return this.handle(request);
    const previous = this.ordered ?? Promise.resolve();
    this.ordered = previous.then(() => this.handleChecked(request)).catch((error: unknown) => this.fail(error));
  }

  /** Creates are checked by auth (while it is enabled, or for a token) before they are handled. */
  private async handleChecked(request: WatchRequest): Promise<void> {
    if (this.closed) return;
    const auth = this.host.auth;
    if (request.type === 'create' && auth !== undefined && auth.checks(this.call)) {
      // etcd checks an empty key as "\0", the smallest key.
      const key = request.create.key.length === 0 ? new Uint8Array([0]) : request.create.key;
      const reason = await auth.refusal(this.call, key, request.create.rangeEnd);
      if (this.closed) return;
      if (reason !== undefined) {
        this.send(this.host.header(), { watchId: invalidWatchId, created: true, canceled: true, cancelReason: reason });
        return;
      }
    }
    this.handle(request);
  }

  private fail(error: unknown): void {
    this.call.emit('error', {
      code: GrpcCode.unknown,
      details: error instanceof Error ? error.message : String(error),
    });
  }

  private handle(request: WatchRequest): void {
    switch (request.type) {
      case 'create':
        return this.create(request.create);
      case 'cancel':
        return this.cancel(request.watchId);
      case 'progress':
        return this.requestProgress();
      case 'none':
        return;
    }
  }

  private create(request: WatchCreate): void {
    const header = this.host.header();
    const refuse = (reason: string): void =>
      this.send(header, { watchId: invalidWatchId, created: true, canceled: true, cancelReason: reason });
    if (watchSpan(request.key, request.rangeEnd) === undefined) return refuse(watchCancelReasons.emptyRange);
    let watchId = request.watchId;
    if (watchId === autoWatchId) {
      while (this.watchers.has(this.nextWatchId)) this.nextWatchId++;
      watchId = this.nextWatchId++;
    } else if (this.watchers.has(watchId)) {
      return refuse(watchCancelReasons.duplicateId);
    }
    // "created" is queued before the watcher exists, so its events can only come after it.
    this.sendCreated(header, watchId);
    const watcher = this.host.watchable.watch(
      {
        watchId,
        key: request.key,
        rangeEnd: request.rangeEnd,
        startRevision: request.startRevision,
        filters: request.filters,
        prevKv: request.prevKv,
      },
      this.sink,
    );
    this.watchers.set(watchId, watcher);
    if (request.fragment) this.fragmented.add(watchId);
    if (request.progressNotify) {
      this.progressWanted.set(watchId, true);
      this.startProgressTimer();
    }
  }

  /** The "created" response from the shared header bytes: 10,000 creates in a burst encode one header. */
  private sendCreated(header: ResponseHeader, watchId: number): void {
    if (watchId < 0 || watchId > framedWatchIdMax) return this.send(header, { watchId, created: true });
    const head = this.encoder.header(header);
    this.enqueue({
      head,
      watchId,
      tail: createdField,
      messageBytes: head.length + watchIdFieldBytes(watchId) + createdField.length,
    });
  }

  private cancel(watchId: number): void {
    const watcher = this.watchers.get(watchId);
    // etcd answers nothing for an id the stream does not know.
    if (watcher === undefined) return;
    this.host.watchable.cancel(watcher);
    this.forget(watchId);
    this.send(this.host.header(), { watchId, canceled: true });
  }

  private forget(watchId: number): void {
    this.watchers.delete(watchId);
    this.progressWanted.delete(watchId);
    this.fragmented.delete(watchId);
  }

  /**
   * A progress request is answered at once with watch id -1 at the current revision, as etcd 3.4
   * answers it: a watcher still catching up may send older events after it (later releases wait
   * until every watcher of the stream is caught up).
   */
  private requestProgress(): void {
    this.send(this.host.header(), { watchId: invalidWatchId });
  }

  /** The store's sink for this stream's watchers: refuses while the queue is full. */
  private deliver(response: WatchResponse): boolean {
    // A closed stream takes everything: its watchers are being canceled anyway.
    if (this.closed) return true;
    if (this.queuedBytes >= streamQueuedBytesMax) {
      this.refused = true;
      return false;
    }
    if (response.events.length > 0 && this.progressWanted.has(response.watchId))
      this.progressWanted.set(response.watchId, false);
    if (!this.deliverShared(response)) {
      const header = { ...this.host.header(), revision: response.revision };
      const canceled = response.compactRevision !== 0;
      this.send(header, {
        watchId: response.watchId,
        events: response.events,
        compactRevision: response.compactRevision,
        canceled,
      });
    }
    return true;
  }

  /** Queues an events response from the revision's shared bytes; false when it needs the general path. */
  private deliverShared(response: WatchResponse): boolean {
    const { watchId, events } = response;
    if (events.length === 0 || response.compactRevision !== 0 || watchId < 0 || watchId > framedWatchIdMax)
      return false;
    const { head, tail } = this.encoder.events(events, response.revision);
    const messageBytes = head.length + watchIdFieldBytes(watchId) + tail.length;
    // etcd's sendFragments splits a response of at least the limit holding two or more events.
    if (this.fragmented.has(watchId) && events.length >= 2 && messageBytes >= this.fragmentBytesMax) return false;
    this.enqueue({ head, watchId, tail, messageBytes });
    return true;
  }

  private send(header: ResponseHeader, fields: WatchResponseFields): void {
    if (this.closed) return;
    const wire = watchResponseToWire(header, fields);
    const pieces = this.fragmented.has(fields.watchId)
      ? fragmentResponse(wire, this.fragmentBytesMax, this.encoder.sizeBytes)
      : [wire];
    for (const piece of pieces) {
      const bytes = this.encoder.message(piece);
      this.enqueue({ head: bytes, watchId: 0, tail: noBytes, messageBytes: bytes.length });
    }
  }

  /** Queues a response; the write happens once the current job (a whole fan-out) is done. */
  private enqueue(response: QueuedResponse): void {
    this.queue.push(response);
    this.queuedBytes += response.messageBytes;
    if (this.writing || this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Hands gRPC everything queued, up to streamWriteBytesMax, unless a write is still in flight. */
  private flush(): void {
    if (this.writing || this.closed || this.queue.length === 0) return;
    let count = 0;
    let bytes = 0;
    while (
      count < this.queue.length &&
      (count === 0 || bytes + (this.queue[count] as QueuedResponse).messageBytes <= streamWriteBytesMax)
    ) {
      bytes += (this.queue[count] as QueuedResponse).messageBytes;
      count++;
    }
    const batch = count === this.queue.length ? this.queue : this.queue.slice(0, count);
    this.queue = count === this.queue.length ? [] : this.queue.slice(count);
    this.queuedBytes -= bytes;
    this.writing = true;
    this.writeBatch(batch, bytes, () => this.written());
  }

  private written(): void {
    this.writing = false;
    if (this.closed) return;
    this.flush();
    if (this.refused && this.queuedBytes < streamQueuedBytesMax) {
      // Room in the queue: victims of this stream can be offered their responses again.
      this.refused = false;
      this.host.wake();
    }
  }

  private startProgressTimer(): void {
    if (this.progressTimer !== undefined || this.closed) return;
    this.progressTimer = setInterval(() => this.progressTick(), progressIntervalMs(this.host));
    this.progressTimer.unref();
  }

  /** etcd's ticker: a progress notification to each synced watcher that had no events since the last tick. */
  private progressTick(): void {
    for (const [watchId, quiet] of this.progressWanted) {
      const watcher = this.watchers.get(watchId);
      if (quiet && watcher !== undefined) this.host.watchable.progress(watcher);
      this.progressWanted.set(watchId, true);
    }
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.progressTimer !== undefined) clearInterval(this.progressTimer);
    for (const watcher of this.watchers.values()) this.host.watchable.cancel(watcher);
    this.watchers.clear();
    this.queue = [];
    this.queuedBytes = 0;
  }
}
