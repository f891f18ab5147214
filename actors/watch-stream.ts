/**
 * The etcdserverpb.Watch/Watch stream, as etcd's serverWatchStream: one stream carries many
 * watchers; create, cancel and progress requests are answered in the order they arrive, and a
 * watcher's events never precede its "created" response because both go through one queue.
 * The queue respects gRPC flow control (write() false -> wait for 'drain'); while it holds
 * streamResponsesQueuedMax responses the stream's watchers refuse more and become victims in the
 * WatchableStore, which holds their events until the WatchDriver offers them again.
 *
 * The WatchDriver runs the store's catch-up and victim passes off the write path.
 */
import type * as grpc from '@grpc/grpc-js';
import { loadProtos, type WireMessage } from '../src/api/codec.js';
import type { ResponseHeader } from '../src/api/types.js';
import { assert } from '../src/lib/assert.js';
import { grpcOverheadBytes, requestBytesDefault } from '../src/lib/limits.js';
import {
  fragmentResponse,
  watchRequestFromWire,
  watchResponseToWire,
  type WatchCreate,
  type WatchResponseFields,
  type WireWatchResponse,
} from '../src/watch/watch-codec.js';
import { watchErrors } from '../src/watch/watch-errors.js';
import {
  autoWatchId,
  invalidWatchId,
  progressNotifyIntervalMsDefault,
  progressNotifyIntervalMsMin,
  streamResponsesQueuedMax,
  syncBytesMaxDefault,
  syncEventsMaxDefault,
  syncRetryIntervalMs,
  victimRetryIntervalMs,
} from '../src/watch/watch-limits.js';
import { type Watcher, type WatchableStore, type WatchResponse, watchSpan } from '../src/watch/watchable-store.js';
import type { StreamHandler } from './grpc-server.js';

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

type WatchCall = grpc.ServerDuplexStream<WireMessage, WireMessage>;

/** The Watch/Watch handler for createGrpcServer's `handlers`. */
export function watchHandler(host: WatchHost): StreamHandler {
  const serialize = (loadProtos()['etcdserverpb.Watch'] as grpc.ServiceDefinition).Watch!.responseSerialize;
  const sizeBytes = (response: WireWatchResponse): number => serialize(response).length;
  return (call: WatchCall) => {
    new WatchStream(call, host, sizeBytes).start();
  };
}

/** etcd adds up to a tenth of the interval as jitter so streams opened together do not tick together. */
function progressIntervalMs(host: WatchHost): number {
  const base = Math.max(host.progressNotifyIntervalMs ?? progressNotifyIntervalMsDefault, progressNotifyIntervalMsMin);
  return base + Math.floor(Math.random() * (base / 10));
}

class WatchStream {
  /** Watchers by watch id, compacted ones included until the client cancels them, as in etcd. */
  private readonly watchers = new Map<number, Watcher>();
  /** etcd's progress map: watch id -> "no events sent since the last tick". */
  private readonly progressWanted = new Map<number, boolean>();
  private readonly fragmented = new Set<number>();
  private nextWatchId = 0;
  private readonly queue: WireMessage[] = [];
  private writable = true;
  private closed = false;
  /** A progress request waiting for the stream's watchers to catch up. */
  private progressDeferred = false;
  private progressTimer: NodeJS.Timeout | undefined;
  private readonly fragmentBytesMax: number;

  constructor(
    private readonly call: WatchCall,
    private readonly host: WatchHost,
    private readonly sizeBytes: (response: WireWatchResponse) => number,
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
    if (watchSpan(request.key, request.rangeEnd) === undefined) return refuse(watchErrors.emptyRange);
    let watchId = request.watchId;
    if (watchId === autoWatchId) {
      while (this.watchers.has(this.nextWatchId)) this.nextWatchId++;
      watchId = this.nextWatchId++;
    } else if (this.watchers.has(watchId)) {
      return refuse(watchErrors.duplicateId);
    }
    // "created" is queued before the watcher exists, so its events can only come after it.
    this.send(header, { watchId, created: true });
    const watcher = this.host.watchable.watch(
      { watchId, key: request.key, rangeEnd: request.rangeEnd, startRevision: request.startRevision, filters: request.filters, prevKv: request.prevKv },
      (response) => this.deliver(response),
      () => this.answerDeferredProgress(),
    );
    this.watchers.set(watchId, watcher);
    if (request.fragment) this.fragmented.add(watchId);
    if (request.progressNotify) {
      this.progressWanted.set(watchId, true);
      this.startProgressTimer();
    }
  }

  private cancel(watchId: number): void {
    const watcher = this.watchers.get(watchId);
    // etcd answers nothing for an id the stream does not know.
    if (watcher === undefined) return;
    this.host.watchable.cancel(watcher);
    this.forget(watchId);
    this.send(this.host.header(), { watchId, canceled: true });
    this.answerDeferredProgress();
  }

  private forget(watchId: number): void {
    this.watchers.delete(watchId);
    this.progressWanted.delete(watchId);
    this.fragmented.delete(watchId);
  }

  /**
   * A progress request is answered with watch id -1 at the current revision once every watcher
   * of the stream is caught up, so the revision promises that all earlier events were sent
   * (etcd 3.5's rule; 3.4 answered at once).
   */
  private requestProgress(): void {
    this.progressDeferred = true;
    this.answerDeferredProgress();
  }

  private answerDeferredProgress(): void {
    if (!this.progressDeferred || this.closed) return;
    if (!this.host.watchable.allSynced(this.watchers.values())) return;
    this.progressDeferred = false;
    this.send(this.host.header(), { watchId: invalidWatchId });
  }

  /** The store's sink for this stream's watchers: refuses while the queue is full. */
  private deliver(response: WatchResponse): boolean {
    // A closed stream takes everything: its watchers are being canceled anyway.
    if (this.closed) return true;
    if (this.queue.length >= streamResponsesQueuedMax) return false;
    const header = { ...this.host.header(), revision: response.revision };
    const canceled = response.compactRevision !== 0;
    this.send(header, { watchId: response.watchId, events: response.events, compactRevision: response.compactRevision, canceled });
    if (response.events.length > 0 && this.progressWanted.has(response.watchId)) this.progressWanted.set(response.watchId, false);
    return true;
  }

  private send(header: ResponseHeader, fields: WatchResponseFields): void {
    if (this.closed) return;
    const wire = watchResponseToWire(header, fields);
    if (this.fragmented.has(fields.watchId)) {
      for (const piece of fragmentResponse(wire, this.fragmentBytesMax, this.sizeBytes)) this.queue.push(piece as unknown as WireMessage);
    } else {
      this.queue.push(wire as unknown as WireMessage);
    }
    this.flush();
  }

  private flush(): void {
    while (this.writable && !this.closed && this.queue.length > 0) {
      const next = this.queue.shift() as WireMessage;
      if (!this.call.write(next)) {
        this.writable = false;
        this.call.once('drain', () => {
          this.writable = true;
          this.flush();
          // Room in the queue: victims of this stream can be offered their responses again.
          this.host.wake();
        });
      }
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
    this.queue.length = 0;
  }
}
