/**
 * A one-process ConcurrencyHost for the lock and election tests: a KvStore on a MemoryBackend
 * applied directly (no Raft), leases as a set of IDs, and watches replayed from the store's
 * history and then fed by its onChanges hook; plus a grpc-js server on a loopback port serving
 * KV, Lock and Election, and raw grpc-js clients for both recipe services.
 */
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { concurrencyHandlers } from '../../actors/client/grpc/concurrency-service.js';
import { createGrpcServer } from '../../actors/client/grpc/router.js';
import { listenClient, type ClientListener } from '../../actors/client/listener.js';
import { loadProtos, type WireMessage } from '../../src/api/proto-wire.js';
import { errors } from '../../src/api/errors.js';
import type {
  CompactionRequest,
  DeleteRangeRequest,
  KvProposalBody,
  KvService,
  ProposalResult,
  PutRequest,
  RangeRequest,
  ResponseHeader,
  TxnRequest,
} from '../../src/api/types.js';
import type { ConcurrencyHost, ConcurrencyWatchBatch, ConcurrencyWatchRequest } from '../../src/concurrency/host.js';
import { MemoryBackend } from '../../src/mvcc/backend.js';
import { KvStore, type MvccEvent } from '../../src/mvcc/kv-store.js';
import { rangeReq } from '../mvcc/helpers.js';
import { eventWaitMsMax } from '../support/waits.js';
import type { GrpcRoutes } from '../../actors/client/grpc/calls.js';

export const testClusterId = 0x1234n;
export const testMemberId = 0x5678n;
const testRaftTerm = 3;

type ChangeListener = (events: MvccEvent[], revision: number) => void;

function inSpan(key: Uint8Array, request: ConcurrencyWatchRequest): boolean {
  if (request.rangeEnd.length === 0) return Buffer.compare(key, request.key) === 0;
  return Buffer.compare(key, request.key) >= 0 && Buffer.compare(key, request.rangeEnd) < 0;
}

export class ConcurrencyTestHost implements ConcurrencyHost, KvService {
  readonly store: KvStore;
  readonly leases = new Set<bigint>();
  readonly kv: KvService = this;
  private readonly listeners = new Set<ChangeListener>();
  private nextIndex = 1;
  private nextLease = 0x7000n;
  private server: GrpcRoutes | undefined;
  private listener: ClientListener | undefined;
  /** Watches registered and not yet ended, so tests can see waiters clean up. */
  activeWatches = 0;
  endpoint = '';

  constructor() {
    this.store = KvStore.open(new MemoryBackend(), {
      leaseExists: (id) => this.leases.has(id),
      onChanges: (events, revision) => {
        for (const listener of [...this.listeners]) listener(events, revision);
      },
    });
  }

  header(revision = this.store.currentRevision): ResponseHeader {
    return { clusterId: testClusterId, memberId: testMemberId, revision, raftTerm: testRaftTerm };
  }

  private propose(body: KvProposalBody): { header: ResponseHeader; result: ProposalResult } {
    const result = this.store.apply(this.nextIndex++, testRaftTerm, body);
    return { header: this.header(), result };
  }

  async range(request: RangeRequest) {
    return { header: this.header(), result: this.store.range(request) };
  }

  async put(request: PutRequest) {
    const { header, result } = this.propose({ type: 'put', put: request });
    if (result.type !== 'put') throw new Error(`expected a put result, saw ${result.type}`);
    return { header, result: result.put };
  }

  async deleteRange(request: DeleteRangeRequest) {
    const { header, result } = this.propose({ type: 'deleteRange', deleteRange: request });
    if (result.type !== 'deleteRange') throw new Error(`expected a deleteRange result, saw ${result.type}`);
    return { header, result: result.deleteRange };
  }

  async txn(request: TxnRequest) {
    const { header, result } = this.propose({ type: 'txn', txn: request });
    if (result.type !== 'txn') throw new Error(`expected a txn result, saw ${result.type}`);
    return { header, result: result.txn };
  }

  async compact(request: CompactionRequest) {
    this.propose({ type: 'compaction', compaction: request });
    return { header: this.header() };
  }

  async grantLease(): Promise<bigint> {
    const id = this.nextLease++;
    this.leases.add(id);
    return id;
  }

  /** Revokes a lease as a lessor would: its keys are deleted in one revision. */
  async revokeLease(id: bigint): Promise<void> {
    this.leases.delete(id);
    const owned = this.store.range(rangeReq('\0', '\0')).kvs.filter((kv) => kv.lease === id);
    if (owned.length === 0) return;
    await this.txn({
      compare: [],
      success: owned.map((kv) => ({
        type: 'deleteRange',
        deleteRange: { key: kv.key, rangeEnd: new Uint8Array(0), prevKv: false },
      })),
      failure: [],
    });
  }

  watch(
    request: ConcurrencyWatchRequest,
    onBatch: (batch: ConcurrencyWatchBatch) => void,
    signal: AbortSignal,
  ): Promise<void> {
    if (request.startRevision > 0 && request.startRevision < this.store.compactRevision)
      return Promise.reject(errors.compacted());
    const deliver = (events: MvccEvent[], revision: number): void => {
      const mine = events.filter((event) => inSpan(event.kv.key, request));
      if (mine.length > 0) onBatch({ header: this.header(revision), events: mine });
    };
    this.replay(request.startRevision, deliver);
    this.listeners.add(deliver);
    this.activeWatches++;
    return new Promise((resolve) => {
      const end = (): void => {
        this.listeners.delete(deliver);
        this.activeWatches--;
        resolve();
      };
      if (signal.aborted) end();
      else signal.addEventListener('abort', end, { once: true });
    });
  }

  /** Hands stored history from `fromRevision` on to `deliver`, one revision at a time. */
  private replay(fromRevision: number, deliver: ChangeListener): void {
    if (fromRevision === 0 || fromRevision > this.store.currentRevision) return;
    let pending: MvccEvent[] = [];
    let pendingRevision = 0;
    this.store.scanEvents(fromRevision, (event, rev) => {
      if (rev.main !== pendingRevision && pending.length > 0) {
        deliver(pending, pendingRevision);
        pending = [];
      }
      pendingRevision = rev.main;
      pending.push(event);
    });
    if (pending.length > 0) deliver(pending, pendingRevision);
  }

  async start(): Promise<void> {
    this.server = createGrpcServer({
      kv: this,
      handlers: concurrencyHandlers(this),
      logger: pino({ level: 'silent' }),
    });
    // The client port as a member serves it, so calls run on the production transport.
    this.listener = await listenClient({
      host: '127.0.0.1',
      port: 0,
      grpcServer: this.server,
      http: { health: () => ({ health: true, reason: '' }) },
    });
    this.endpoint = `127.0.0.1:${this.listener.port}`;
  }

  async stop(): Promise<void> {
    // Waiting Lock and Campaign calls never finish by themselves; closing the port cancels them.
    await this.listener?.close();
  }
}

type ServiceConstructor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
) => grpc.Client & Record<string, unknown>;

function serviceClient(path: string[], endpoint: string): grpc.Client & Record<string, unknown> {
  let node: unknown = grpc.loadPackageDefinition(loadProtos());
  for (const part of path) node = (node as Record<string, unknown>)[part];
  return new (node as ServiceConstructor)(endpoint, grpc.credentials.createInsecure());
}

/** The outcome of a unary call: the response, or the status it failed with. */
export type CallOutcome = { ok: true; response: WireMessage } | { ok: false; code: number; details: string };

/** Raw grpc-js clients for Lock and Election, answering with outcomes rather than throwing. */
export class RecipeClients {
  readonly lock: grpc.Client & Record<string, unknown>;
  readonly election: grpc.Client & Record<string, unknown>;

  constructor(endpoint: string) {
    this.lock = serviceClient(['v3lockpb', 'Lock'], endpoint);
    this.election = serviceClient(['v3electionpb', 'Election'], endpoint);
  }

  call(
    client: grpc.Client & Record<string, unknown>,
    method: string,
    request: object,
    deadlineMs = eventWaitMsMax,
  ): Promise<CallOutcome> {
    const invoke = client[method] as (
      request: object,
      options: grpc.CallOptions,
      callback: (error: grpc.ServiceError | null, response: WireMessage) => void,
    ) => grpc.ClientUnaryCall;
    return new Promise((resolve) => {
      invoke.call(client, request, { deadline: Date.now() + deadlineMs }, (error, response) =>
        resolve(error ? { ok: false, code: error.code, details: error.details } : { ok: true, response }),
      );
    });
  }

  /** Opens an Observe stream; responses collect in the returned array. */
  observe(name: string): {
    responses: WireMessage[];
    stream: grpc.ClientReadableStream<WireMessage>;
    ended: Promise<void>;
  } {
    const open = this.election.Observe as (request: object) => grpc.ClientReadableStream<WireMessage>;
    const stream = open.call(this.election, { name: Buffer.from(name) });
    const responses: WireMessage[] = [];
    stream.on('data', (response: WireMessage) => responses.push(response));
    const ended = new Promise<void>((resolve) => {
      stream.on('error', () => resolve());
      stream.on('end', () => resolve());
    });
    return { responses, stream, ended };
  }

  close(): void {
    this.lock.close();
    this.election.close();
  }
}

/** Polls `ready` every few milliseconds until it holds or `timeoutMs` passes. */
export async function waitUntil(ready: () => boolean, what: string, timeoutMs = eventWaitMsMax): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** True when the promise has not settled within a short while (for "still waiting" checks). */
export async function stillPending(promise: Promise<unknown>, waitMs = 100): Promise<boolean> {
  const pending = Symbol('pending');
  const outcome = await Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(pending), waitMs))]);
  return outcome === pending;
}
