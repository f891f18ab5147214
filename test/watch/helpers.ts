/** A KvStore with a WatchableStore on top, and recording sinks, for the watch tests. */
import { Harness, bytes, text } from '../mvcc/helpers.js';
import { kvStoreWatchSource } from '../../src/watch/kv-source.js';
import { type WatchResponse, type WatchSpec, type Watcher, WatchableStore } from '../../src/watch/watchable-store.js';

/** A sink that records what it takes and refuses while `full` is set. */
export class Recorder {
  readonly responses: WatchResponse[] = [];
  /** What `clock` read when each response was first offered, taken or not (a refused one comes again). */
  readonly firstOfferedAt = new Map<WatchResponse, number>();
  full = false;
  refusals = 0;

  constructor(private readonly clock: () => number = () => 0) {}

  readonly sink = (response: WatchResponse): boolean => {
    if (!this.firstOfferedAt.has(response)) this.firstOfferedAt.set(response, this.clock());
    if (this.full) {
      this.refusals++;
      return false;
    }
    this.responses.push(response);
    return true;
  };

  /** Every event taken, as "type key=value@rev". */
  events(): string[] {
    return this.responses.flatMap((response) =>
      response.events.map(
        (event) => `${event.type} ${text(event.kv.key)}=${text(event.kv.value)}@${event.kv.modRevision}`,
      ),
    );
  }

  /** Revisions of the events taken, in order. */
  revisions(): number[] {
    return this.responses.flatMap((response) => response.events.map((event) => event.kv.modRevision));
  }
}

/** One applied event as the model sees it. */
export interface HistoryEvent {
  revision: number;
  type: 'put' | 'delete';
  key: string;
  value: string;
  create: boolean;
}

export class WatchHarness extends Harness {
  /** Every event applied, in order. */
  readonly history: HistoryEvent[];
  readonly watchable: WatchableStore;
  private readonly wakeCount: { value: number };

  constructor() {
    const wakeCount = { value: 0 };
    const watchable = new WatchableStore(undefined, { wake: () => wakeCount.value++ });
    const history: HistoryEvent[] = [];
    super(undefined, {
      onChanges: (events, revision) => {
        for (const event of events) {
          const create = event.type === 'put' && event.kv.createRevision === event.kv.modRevision;
          history.push({ revision, type: event.type, key: text(event.kv.key), value: text(event.kv.value), create });
        }
        watchable.notify(events, revision);
      },
    });
    this.history = history;
    this.watchable = watchable;
    this.wakeCount = wakeCount;
    watchable.attach(kvStoreWatchSource(this.store));
  }

  /** How many times the store asked for a pass. */
  get wakes(): number {
    return this.wakeCount.value;
  }

  /** Registers a watcher recording into a fresh Recorder. */
  watch(
    key: string,
    rangeEnd = '',
    startRevision = 0,
    extra: Partial<WatchSpec> = {},
  ): { watcher: Watcher; recorder: Recorder } {
    const recorder = new Recorder();
    const spec: WatchSpec = { watchId: 0, key: bytes(key), rangeEnd: bytes(rangeEnd), startRevision, ...extra };
    const watcher = this.watchable.watch(spec, recorder.sink);
    return { watcher, recorder };
  }

  /** Runs victim and catch-up passes until nothing is left or `passesMax` ran. */
  settle(eventsMax = 10_000, passesMax = 1_000): number {
    let passes = 0;
    while (this.watchable.hasPendingWork && passes < passesMax) {
      this.watchable.retryVictims();
      this.watchable.syncUnsynced(eventsMax);
      passes++;
    }
    return passes;
  }
}

export { bytes, text };
