/**
 * The gRPC face of a member: every etcd v3 method is routed; KV calls are decoded with
 * src/api/request-decoder, checked with src/api/validate and handed to a KvService; other methods answer
 * UNIMPLEMENTED until a caller plugs in a handler. Errors reach clients in etcd's exact words.
 * The routes are served on the client port by our own HTTP/2 (actors/client/http2/server.ts).
 */
import * as grpc from '@grpc/grpc-js';
import {
  clientStreamingMethods,
  compactionRequestFromWire,
  compactionResponseToWire,
  grpcMethods,
  loadProtos,
  streamingMethods,
  type GrpcMethod,
  type StreamingMethod,
  type UnaryMethod,
  type WireCompactionRequest,
  type WireMessage,
} from '../../../src/api/proto-wire.js';
import { EtcdError, GrpcCode } from '../../../src/api/errors.js';
import {
  decodeDeleteRangeRequest,
  decodePutRequest,
  decodeRangeRequest,
  decodeSnapshotRequest,
  decodeTxnRequest,
} from '../../../src/api/request-decoder.js';
import {
  EncodedResponse,
  encodeDeleteRangeResponse,
  encodePutResponse,
  encodeRangeResponse,
  encodeTxnResponse,
} from '../../../src/api/response-encoder.js';
import type { DeleteRangeRequest, KvService, PutRequest, RangeRequest, TxnRequest } from '../../../src/api/types.js';
import {
  checkDeleteRangeRequest,
  checkProposalSize,
  checkPutRequest,
  checkRangeRequest,
  checkTxnRequest,
} from '../../../src/api/validate.js';
import { isTxnReadOnly } from '../../../src/api/txn-read-only.js';
import { grpcOverheadBytes, healthWatchPollMs, requestBytesDefault, txnOpsDefault } from '../../../src/lib/limits.js';
import { createLogger, type Logger } from '../../shared/logger.js';
import type { CallerCredentials } from '../../../src/auth/types.js';
import type { GrpcRoute, GrpcRoutes, GrpcStreamCall } from './calls.js';
import { GrpcTraffic, grpcTypeOf, MethodStats } from './call-stats.js';
import type { AuditSink } from '../../audit/audit-log.js';
import { auditedHandlers } from './audit-hook.js';
import type { LeaderRequirement } from './require-leader.js';

export interface GrpcLimits {
  /** etcd's --max-request-bytes: the largest proposal accepted. */
  maxRequestBytes: number;
  /** etcd's --max-txn-ops. */
  maxTxnOps: number;
}

/** What a unary handler learns about its call besides the request. */
export interface UnaryContext extends CallerCredentials {
  metadata: grpc.Metadata;
  /** Size of the request as it came off the wire, for proposal size checks. */
  requestBytes: number;
  peer: string;
  /** Aborted when the client cancels the call or its deadline passes. */
  signal: AbortSignal;
  /** The first value of request header `name` (lower case). */
  header?(name: string): string | undefined;
}

/**
 * A unary method's implementation on wire objects (see src/api/proto-wire.ts for their shape). Throwing an
 * EtcdError answers with its code and message; any other error answers UNKNOWN and is logged.
 */
export type UnaryHandler = (request: WireMessage, context: UnaryContext) => Promise<WireMessage>;
/** Streaming methods get a call shaped like grpc-js's; end a stream with an error by emitting it. */
export type StreamHandler = (call: GrpcStreamCall) => void;

export type GrpcHandlers = { [M in UnaryMethod]?: UnaryHandler } & { [M in StreamingMethod]?: StreamHandler };

export interface GrpcServerOptions {
  kv: KvService;
  /** Implementations for methods beyond KV, keyed by `package.Service/Method`. */
  handlers?: GrpcHandlers;
  limits?: Partial<GrpcLimits>;
  /** Health.Check answers SERVING while this says true. */
  healthy?: () => boolean | Promise<boolean>;
  logger?: Logger;
  /** Where the audit records of unary calls go (--audit-log-path); none when absent. */
  audit?: AuditSink;
  /** Refuses calls that require a leader (metadata hasleader) while there is none; none when absent. */
  leaderRequirement?: LeaderRequirement;
}

function splitMethod(method: GrpcMethod): { service: string; name: string } {
  const slash = method.indexOf('/');
  return { service: method.slice(0, slash), name: method.slice(slash + 1) };
}

function isStreaming(method: GrpcMethod): method is StreamingMethod {
  return (streamingMethods as readonly string[]).includes(method);
}

function isClientStreaming(method: GrpcMethod): boolean {
  return (clientStreamingMethods as readonly string[]).includes(method);
}

/** The KV service: validate as etcd does, check proposal size, then ask the KvService. */
function kvHandlers(kv: KvService, limits: GrpcLimits): Partial<Record<UnaryMethod, UnaryHandler>> {
  const propose = (context: UnaryContext): void => checkProposalSize(context.requestBytes, limits.maxRequestBytes);
  return {
    'etcdserverpb.KV/Range': async (decoded, context) => {
      const request = decoded as unknown as RangeRequest;
      checkRangeRequest(request);
      const { header, result } = await kv.range(request, context);
      return new EncodedResponse(encodeRangeResponse(header, result)) as unknown as WireMessage;
    },
    'etcdserverpb.KV/Put': async (decoded, context) => {
      const request = decoded as unknown as PutRequest;
      checkPutRequest(request);
      propose(context);
      const { header, result } = await kv.put(request, context);
      return new EncodedResponse(encodePutResponse(header, result)) as unknown as WireMessage;
    },
    'etcdserverpb.KV/DeleteRange': async (decoded, context) => {
      const request = decoded as unknown as DeleteRangeRequest;
      checkDeleteRangeRequest(request);
      propose(context);
      const { header, result } = await kv.deleteRange(request, context);
      return new EncodedResponse(encodeDeleteRangeResponse(header, result)) as unknown as WireMessage;
    },
    'etcdserverpb.KV/Txn': async (decoded, context) => {
      const request = decoded as unknown as TxnRequest;
      checkTxnRequest(request, limits.maxTxnOps);
      if (!isTxnReadOnly(request)) propose(context);
      const { header, result } = await kv.txn(request, context);
      return new EncodedResponse(encodeTxnResponse(header, result)) as unknown as WireMessage;
    },
    'etcdserverpb.KV/Compact': async (wire, context) => {
      const request = compactionRequestFromWire(wire as unknown as WireCompactionRequest);
      propose(context);
      const { header } = await kv.compact(request, context);
      return compactionResponseToWire(header) as unknown as WireMessage;
    },
  };
}

const healthStatus = { serving: 1, notServing: 2, serviceUnknown: 3 } as const;

/** etcd registers its health status under the empty service name only. */
function healthHandlers(healthy: () => boolean | Promise<boolean>): GrpcHandlers {
  const status = async (): Promise<number> => ((await healthy()) ? healthStatus.serving : healthStatus.notServing);
  return {
    'grpc.health.v1.Health/Check': async (request) => {
      if (request.service !== '') throw new EtcdError(GrpcCode.notFound, 'unknown service');
      return { status: await status() };
    },
    // Sends the current status, then each change, as grpc-go's health server does, until the
    // client cancels; the status is a function of the member's state, so it is polled.
    'grpc.health.v1.Health/Watch': (call: GrpcStreamCall) => {
      if (call.request.service !== '') {
        call.write({ status: healthStatus.serviceUnknown });
        return;
      }
      let sent: number | undefined;
      let polling = false;
      const push = async (): Promise<void> => {
        if (polling || call.cancelled) return;
        polling = true;
        try {
          const value = await status();
          if (value !== sent && !call.cancelled) {
            sent = value;
            call.write({ status: value });
          }
        } finally {
          polling = false;
        }
      };
      const timer = setInterval(() => void push(), healthWatchPollMs);
      timer.unref();
      const stop = (): void => clearInterval(timer);
      call.once('cancelled', stop);
      call.once('close', stop);
      void push();
    },
  };
}

function resolveLimits(limits: Partial<GrpcLimits> | undefined): GrpcLimits {
  return {
    maxRequestBytes: limits?.maxRequestBytes ?? requestBytesDefault,
    maxTxnOps: limits?.maxTxnOps ?? txnOpsDefault,
  };
}

/**
 * The KV requests are decoded straight into domain objects (request-decoder.ts); their handlers
 * take those. So is Maintenance.Snapshot's request, which has no fields: a save then never loads
 * the protos on the member's event loop. Every other method gets proto-loader's wire object.
 */
const domainDecoders: Partial<Record<GrpcMethod, (buffer: Buffer) => unknown>> = {
  'etcdserverpb.KV/Range': decodeRangeRequest,
  'etcdserverpb.KV/Put': decodePutRequest,
  'etcdserverpb.KV/DeleteRange': decodeDeleteRangeRequest,
  'etcdserverpb.KV/Txn': decodeTxnRequest,
  'etcdserverpb.Maintenance/Snapshot': decodeSnapshotRequest,
};

/** Every etcd v3 method routed to its handler, for the client port (listenClient). */
export function createGrpcServer(options: GrpcServerOptions): GrpcRoutes {
  const limits = resolveLimits(options.limits);
  const logger = options.logger ?? createLogger('info', ['default'], { component: 'grpc-server' });
  // etcd lets gRPC accept messages up to --max-request-bytes plus framing headroom.
  const receiveLimitBytes = limits.maxRequestBytes + grpcOverheadBytes;
  const servedHandlers: GrpcHandlers = {
    ...healthHandlers(options.healthy ?? (() => true)),
    ...kvHandlers(options.kv, limits),
    ...options.handlers,
  };
  const allHandlers = options.leaderRequirement?.guard(servedHandlers, streamingMethods) ?? servedHandlers;
  const handlers =
    options.audit === undefined ? allHandlers : auditedHandlers(allHandlers, streamingMethods, options.audit);
  const byPath = new Map<string, GrpcRoute>();
  const services = new Set<string>();
  for (const method of grpcMethods) {
    const { service, name } = splitMethod(method);
    services.add(service);
    const codec = lazyMethodCodec(method);
    const decode = (domainDecoders[method] ?? codec.decode) as (buffer: Buffer) => WireMessage;
    const encode = passEncoded(codec.encode);
    const clientStreaming = isClientStreaming(method);
    const stats = new MethodStats(service, name, grpcTypeOf(clientStreaming, isStreaming(method)));
    // A method without a handler is left out: the transport answers it UNIMPLEMENTED in grpc-go's words.
    if (isStreaming(method)) {
      const handler = handlers[method];
      if (handler !== undefined)
        byPath.set(`/${method}`, {
          kind: 'stream',
          clientStreaming,
          decode,
          encode,
          handler,
          stats,
        });
    } else {
      const handler = handlers[method];
      if (handler !== undefined) byPath.set(`/${method}`, { kind: 'unary', decode, encode, handler, stats });
    }
  }
  return { byPath, services, receiveLimitBytes, logger, traffic: new GrpcTraffic() };
}

/** The method's proto-loader codec, looked up when a call first needs it (loadProtos reads the .proto files). */
function lazyMethodCodec(method: GrpcMethod): {
  decode: (buffer: Buffer) => WireMessage;
  encode: (message: WireMessage) => Buffer;
} {
  let loaded: grpc.MethodDefinition<WireMessage, WireMessage> | undefined;
  const definition = () => {
    if (loaded !== undefined) return loaded;
    const { service, name } = splitMethod(method);
    loaded = (loadProtos()[service] as grpc.ServiceDefinition | undefined)?.[name] as typeof loaded;
    if (loaded === undefined) throw new Error(`method ${method} missing from the loaded protos`);
    return loaded;
  };
  return {
    decode: (buffer) => definition().requestDeserialize(buffer),
    encode: (message) => definition().responseSerialize(message),
  };
}

/** A serializer that hands an EncodedResponse's bytes over as they are and encodes anything else. */
function passEncoded(serialize: (message: WireMessage) => Buffer): (message: WireMessage) => Uint8Array {
  return (message) => (message instanceof EncodedResponse ? (message as EncodedResponse).bytes : serialize(message));
}
