/**
 * What the gRPC server counts per method and in all, as plain numbers the calls bump and a metrics
 * scrape reads (go-grpc-prometheus' started, handled by code, messages received and sent; etcd's
 * client gRPC bytes). Counting this way costs a few increments per call, not a metrics call.
 */
import {
  grpcCodeNames,
  unknownClientApiVersion,
  type ClientRequestType,
  type GrpcType,
} from '../../../src/metrics/etcd-metrics.js';
import { clientApiVersionLabelsMax } from '../../../src/lib/limits.js';

/** One method's counts. */
export class MethodStats {
  started = 0;
  received = 0;
  sent = 0;
  /** Calls handled, by gRPC status code. */
  readonly handled: number[] = grpcCodeNames.map(() => 0);

  constructor(
    readonly service: string,
    readonly method: string,
    readonly type: GrpcType,
  ) {}
}

/** The server's message bytes in and out, and the optional handling-time observer. */
export class GrpcTraffic {
  /** Request message bytes received (after the 5-byte prefix), as etcd's codec counts them. */
  receivedBytes = 0;
  /** Response message bytes sent. */
  sentBytes = 0;
  /** Calls whose handler ran, by etcd's request type and then by the client API version their metadata named. */
  readonly clientRequests: Readonly<Record<ClientRequestType, Map<string, number>>> = {
    unary: new Map(),
    stream: new Map(),
  };
  /** With --metrics extensive: told each handled call's time, for grpc_server_handling_seconds. */
  handlingObserver: ((stats: MethodStats, seconds: number) => void) | undefined;
}

/** go-grpc-prometheus' grpc_type of a method with these streaming flags. */
export function grpcTypeOf(requestStream: boolean, responseStream: boolean): GrpcType {
  if (requestStream) return responseStream ? 'bidi_stream' : 'client_stream';
  return responseStream ? 'server_stream' : 'unary';
}

/** A call's bookkeeping: counts it as started, then as handled exactly once with its code. */
export class CallTally {
  private startedAt = 0;
  private handling = false;

  constructor(
    private readonly stats: MethodStats,
    private readonly traffic: GrpcTraffic,
  ) {}

  /** A request message came off the wire (`bytes` long, unprefixed). */
  received(bytes: number): void {
    this.traffic.receivedBytes += bytes;
    this.stats.received++;
  }

  /** `messages` response messages of `bytes` in all (unprefixed) were sent. */
  sent(bytes: number, messages = 1): void {
    this.traffic.sentBytes += bytes;
    this.stats.sent += messages;
  }

  /** The handler runs, for a client that named `clientApiVersion` (undefined: none) in its metadata. */
  start(clientApiVersion: string | undefined): void {
    this.stats.started++;
    const byVersion = this.traffic.clientRequests[this.stats.type === 'unary' ? 'unary' : 'stream'];
    let version = clientApiVersion ?? unknownClientApiVersion;
    let count = byVersion.get(version);
    if (count === undefined && byVersion.size >= clientApiVersionLabelsMax) {
      version = unknownClientApiVersion;
      count = byVersion.get(version);
    }
    byVersion.set(version, (count ?? 0) + 1);
    this.handling = true;
    if (this.traffic.handlingObserver !== undefined) this.startedAt = performance.now();
  }

  /** The call ended with `code`; counted only when its handler ran, and once. */
  handled(code: number): void {
    if (!this.handling) return;
    this.handling = false;
    const handled = this.stats.handled;
    handled[code] = (handled[code] ?? 0) + 1;
    const observer = this.traffic.handlingObserver;
    if (observer !== undefined) observer(this.stats, (performance.now() - this.startedAt) / 1000);
  }
}
