/**
 * A one-process stand-in for a member, for the watch stream tests: a KvStore on a MemoryBackend
 * applied directly (no Raft), a WatchableStore fed by its onChanges hook, the WatchDriver, and a
 * grpc-js server on a loopback port serving KV and Watch, so real clients can write and watch.
 */
import { pino } from 'pino';
import { createGrpcServer } from '../../actors/client/grpc/router.js';
import { listenClient, type ClientListener } from '../../actors/client/listener.js';
import { WatchDriver, watchHandler, type WatchHost } from '../../actors/client/grpc/watch-service.js';
import type {
  CompactionRequest,
  DeleteRangeRequest,
  KvService,
  KvProposalBody,
  ProposalResult,
  PutRequest,
  RangeRequest,
  ResponseHeader,
  TxnRequest,
} from '../../src/api/types.js';
import { MemoryBackend } from '../../src/mvcc/backend.js';
import type { KvStore, MvccEvent } from '../../src/mvcc/kv-store.js';
import { bytes, text } from '../mvcc/helpers.js';
import { openWatchableKvStore } from '../../src/watch/kv-source.js';
import type { WatchableStore } from '../../src/watch/watchable-store.js';
import type { GrpcRoutes } from '../../actors/client/grpc/calls.js';

export const testClusterId = 0x1234n;
export const testMemberId = 0x5678n;

export class WatchTestHost implements KvService {
  readonly store: KvStore;
  readonly watchable: WatchableStore;
  readonly driver: WatchDriver;
  private server: GrpcRoutes | undefined;
  private listener: ClientListener | undefined;
  /** Every applied event as "TYPE key@rev", in order. */
  readonly history: string[] = [];
  private nextIndex = 1;
  private readonly options: Partial<Pick<WatchHost, 'progressNotifyIntervalMs' | 'maxRequestBytes'>>;
  endpoint = '';

  constructor(
    options: Partial<Pick<WatchHost, 'progressNotifyIntervalMs' | 'maxRequestBytes'>> & { syncEventsMax?: number } = {},
  ) {
    this.driver = new WatchDriver({ syncEventsMax: options.syncEventsMax });
    const record = (events: MvccEvent[]): void => {
      for (const event of events)
        this.history.push(`${event.type === 'put' ? 'PUT' : 'DELETE'} ${text(event.kv.key)}@${event.kv.modRevision}`);
    };
    const { store, watchable } = openWatchableKvStore(
      new MemoryBackend(),
      { onChanges: record },
      { wake: this.driver.wake },
    );
    this.store = store;
    this.watchable = watchable;
    this.driver.attach(watchable);
    this.options = options;
  }

  header(): ResponseHeader {
    return { clusterId: testClusterId, memberId: testMemberId, revision: this.store.currentRevision, raftTerm: 2 };
  }

  async start(): Promise<void> {
    const host: WatchHost = {
      header: () => this.header(),
      watchable: this.watchable,
      wake: this.driver.wake,
      ...this.options,
    };
    this.server = createGrpcServer({
      kv: this,
      handlers: { 'etcdserverpb.Watch/Watch': watchHandler(host) },
      logger: pino({ level: 'silent' }),
    });
    // The client port as a member serves it, so watch streams run on the production transport.
    this.listener = await listenClient({
      host: '127.0.0.1',
      port: 0,
      grpcServer: this.server,
      http: { health: () => ({ health: true, reason: '' }) },
    });
    this.endpoint = `127.0.0.1:${this.listener.port}`;
  }

  async stop(): Promise<void> {
    this.driver.stop();
    await this.listener?.close();
  }

  /** Applies a write as a member applies a committed entry. */
  apply(body: KvProposalBody): ProposalResult {
    return this.store.apply(this.nextIndex++, 2, body);
  }

  putKey(key: string, value: string): void {
    this.apply({
      type: 'put',
      put: { key: bytes(key), value: bytes(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false },
    });
  }

  deleteKey(key: string): void {
    this.apply({ type: 'deleteRange', deleteRange: { key: bytes(key), rangeEnd: new Uint8Array(0), prevKv: false } });
  }

  compactTo(revision: number): void {
    this.apply({ type: 'compaction', compaction: { revision, physical: false } });
  }

  async range(request: RangeRequest) {
    return { header: this.header(), result: this.store.range(request) };
  }

  async put(request: PutRequest) {
    const outcome = this.apply({ type: 'put', put: request });
    return { header: this.header(), result: (outcome as Extract<ProposalResult, { type: 'put' }>).put };
  }

  async deleteRange(request: DeleteRangeRequest) {
    const outcome = this.apply({ type: 'deleteRange', deleteRange: request });
    return { header: this.header(), result: (outcome as Extract<ProposalResult, { type: 'deleteRange' }>).deleteRange };
  }

  async txn(request: TxnRequest) {
    const outcome = this.apply({ type: 'txn', txn: request });
    return { header: this.header(), result: (outcome as Extract<ProposalResult, { type: 'txn' }>).txn };
  }

  async compact(request: CompactionRequest) {
    this.apply({ type: 'compaction', compaction: request });
    return { header: this.header() };
  }
}
