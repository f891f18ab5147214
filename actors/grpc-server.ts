/**
 * The gRPC face of a member: every etcd v3 service is registered; KV calls are decoded with
 * src/api/codec, checked with src/api/validate and handed to a KvService; other methods answer
 * UNIMPLEMENTED until a caller plugs in a handler. Errors reach clients in etcd's exact words.
 */
import * as grpc from '@grpc/grpc-js';
import {
  compactionRequestFromWire,
  compactionResponseToWire,
  deleteRangeRequestFromWire,
  deleteRangeResponseToWire,
  grpcMethods,
  headerToWire,
  loadProtos,
  putRequestFromWire,
  rangeRequestFromWire,
  streamingMethods,
  txnRequestFromWire,
  txnResponseToWire,
  type GrpcMethod,
  type StreamingMethod,
  type UnaryMethod,
  type WireCompactionRequest,
  type WireDeleteRangeRequest,
  type WireMessage,
  type WirePutRequest,
  type WireRangeRequest,
  type WireTxnRequest,
} from '../src/api/codec.js';
import { EtcdError, GrpcCode } from '../src/api/errors.js';
import { EncodedResponse, encodePutResponse, encodeRangeResponse } from '../src/api/response-encoder.js';
import type { KvService } from '../src/api/types.js';
import {
  checkDeleteRangeRequest,
  checkProposalSize,
  checkPutRequest,
  checkRangeRequest,
  checkTxnRequest,
  isTxnReadOnly,
} from '../src/api/validate.js';
import { grpcOverheadBytes, requestBytesDefault, txnOpsDefault } from '../src/lib/limits.js';
import { createLogger, type Logger } from './logger.js';
import type { FastLane, FastUnaryMethod } from './grpc-fast-lane.js';
import type { GrpcRoute, GrpcRoutes } from './grpc-calls.js';

export interface GrpcLimits {
  /** etcd's --max-request-bytes: the largest proposal accepted. */
  maxRequestBytes: number;
  /** etcd's --max-txn-ops. */
  maxTxnOps: number;
}

/** What a unary handler learns about its call besides the request. */
export interface UnaryContext {
  metadata: grpc.Metadata;
  /** Size of the request as it came off the wire, for proposal size checks. */
  requestBytes: number;
  peer: string;
  /** Aborted when the client cancels the call or its deadline passes. */
  signal: AbortSignal;
}

/**
 * A unary method's implementation on wire objects (see codec.ts for their shape). Throwing an
 * EtcdError answers with its code and message; any other error answers UNKNOWN and is logged.
 */
export type UnaryHandler = (request: WireMessage, context: UnaryContext) => Promise<WireMessage>;
/** Streaming methods get grpc-js's own call object; end a stream with an error by emitting it. */
export type StreamHandler = grpc.UntypedHandleCall;

export type GrpcHandlers = { [M in UnaryMethod]?: UnaryHandler } & { [M in StreamingMethod]?: StreamHandler };

export interface GrpcServerOptions {
  kv: KvService;
  /** Implementations for methods beyond KV, keyed by `package.Service/Method`. */
  handlers?: GrpcHandlers;
  limits?: Partial<GrpcLimits>;
  /** Health.Check answers SERVING while this says true. */
  healthy?: () => boolean | Promise<boolean>;
  logger?: Logger;
}

/**
 * grpc-js's own receive limit sits above etcd's so that messages between the two reach our
 * deserializer, which answers in grpc-go's words; beyond this factor grpc-js refuses by itself.
 */
const receiveHardLimitFactor = 2;

/** grpc-go's text for a message over the receive limit, which etcd clients show verbatim. */
function tooLargeStatus(messageBytes: number, receiveLimitBytes: number): grpc.StatusObject {
  return {
    code: grpc.status.RESOURCE_EXHAUSTED,
    details: `grpc: received message larger than max (${messageBytes} vs. ${receiveLimitBytes})`,
    metadata: new grpc.Metadata(),
  };
}

/** protobufjs reports a truncated message as an index error; grpc-go calls it "unexpected EOF". */
function malformedStatus(error: unknown): grpc.StatusObject {
  const text = error instanceof Error ? error.message : String(error);
  const reason = text.startsWith('index out of range') ? 'unexpected EOF' : text;
  return {
    code: grpc.status.INTERNAL,
    details: `grpc: error unmarshalling request: ${reason}`,
    metadata: new grpc.Metadata(),
  };
}

/** Stands in for a request that could not be decoded, so the handler can answer with the reason. */
class RejectedRequest {
  constructor(readonly status: grpc.StatusObject) {}
}

const requestSizes = new WeakMap<object, number>();

function sizeLimitedDeserializer(
  decode: (buffer: Buffer) => WireMessage,
  receiveLimitBytes: number,
  unary: boolean,
): (buffer: Buffer) => WireMessage | RejectedRequest {
  return (buffer) => {
    let rejection: grpc.StatusObject;
    if (buffer.length > receiveLimitBytes) {
      rejection = tooLargeStatus(buffer.length, receiveLimitBytes);
    } else {
      try {
        const message = decode(buffer);
        requestSizes.set(message, buffer.length);
        return message;
      } catch (error) {
        rejection = malformedStatus(error);
      }
    }
    // A stream has no single answer to carry the status, so grpc-js ends it with INTERNAL.
    if (!unary) throw new Error(rejection.details);
    return new RejectedRequest(rejection);
  };
}

function toServiceError(error: unknown, logger: Logger, method: string): Partial<grpc.StatusObject> {
  if (error instanceof EtcdError) return { code: error.code as number, details: error.message };
  logger.error({ method, err: error }, 'unexpected error in gRPC handler');
  return { code: grpc.status.UNKNOWN, details: error instanceof Error ? error.message : String(error) };
}

function unaryCall(handler: UnaryHandler, logger: Logger, method: string): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const request = call.request as WireMessage | RejectedRequest;
    if (request instanceof RejectedRequest) {
      callback(request.status);
      return;
    }
    let cancelled: AbortController | undefined;
    const context = {
      metadata: call.metadata,
      requestBytes: requestSizes.get(request) ?? 0,
      peer: call.getPeer(),
      // Built on first use: most handlers never wait, and a signal per call is measurable.
      get signal(): AbortSignal {
        if (cancelled === undefined) {
          const controller = new AbortController();
          cancelled = controller;
          if (call.cancelled) controller.abort();
          else call.once('cancelled', () => controller.abort());
        }
        return cancelled.signal;
      },
    };
    handler(request, context).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error, logger, method)),
    );
  };
}

function splitMethod(method: GrpcMethod): { service: string; name: string } {
  const slash = method.indexOf('/');
  return { service: method.slice(0, slash), name: method.slice(slash + 1) };
}

/** grpc-go's answer for a method the server does not implement. */
function unimplementedStatus(method: GrpcMethod): Partial<grpc.StatusObject> {
  const { service, name } = splitMethod(method);
  return { code: grpc.status.UNIMPLEMENTED, details: `unknown method ${name} for service ${service}` };
}

function unimplementedStream(method: GrpcMethod): StreamHandler {
  return (call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerReadableStream<unknown, unknown>) => {
    call.emit('error', unimplementedStatus(method));
  };
}

function isStreaming(method: GrpcMethod): method is StreamingMethod {
  return (streamingMethods as readonly string[]).includes(method);
}

/** The KV service: validate as etcd does, check proposal size, then ask the KvService. */
function kvHandlers(kv: KvService, limits: GrpcLimits): Partial<Record<UnaryMethod, UnaryHandler>> {
  const propose = (context: UnaryContext): void => checkProposalSize(context.requestBytes, limits.maxRequestBytes);
  return {
    'etcdserverpb.KV/Range': async (wire) => {
      const request = rangeRequestFromWire(wire as unknown as WireRangeRequest);
      checkRangeRequest(request);
      const { header, result } = await kv.range(request);
      return new EncodedResponse(encodeRangeResponse(header, result)) as unknown as WireMessage;
    },
    'etcdserverpb.KV/Put': async (wire, context) => {
      const request = putRequestFromWire(wire as unknown as WirePutRequest);
      checkPutRequest(request);
      propose(context);
      const { header, result } = await kv.put(request);
      return new EncodedResponse(encodePutResponse(header, result)) as unknown as WireMessage;
    },
    'etcdserverpb.KV/DeleteRange': async (wire, context) => {
      const request = deleteRangeRequestFromWire(wire as unknown as WireDeleteRangeRequest);
      checkDeleteRangeRequest(request);
      propose(context);
      const { header, result } = await kv.deleteRange(request);
      return deleteRangeResponseToWire(headerToWire(header), result) as unknown as WireMessage;
    },
    'etcdserverpb.KV/Txn': async (wire, context) => {
      const request = txnRequestFromWire(wire as unknown as WireTxnRequest);
      checkTxnRequest(request, limits.maxTxnOps);
      if (!isTxnReadOnly(request)) propose(context);
      const { header, result } = await kv.txn(request);
      return txnResponseToWire(header, result) as unknown as WireMessage;
    },
    'etcdserverpb.KV/Compact': async (wire, context) => {
      const request = compactionRequestFromWire(wire as unknown as WireCompactionRequest);
      propose(context);
      const { header } = await kv.compact(request);
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
    // Sends the current status and holds the stream open; status changes are not pushed yet.
    'grpc.health.v1.Health/Watch': (call: grpc.ServerWritableStream<WireMessage, WireMessage>) => {
      if (call.request.service !== '') {
        call.write({ status: healthStatus.serviceUnknown });
        return;
      }
      void status().then((value) => call.write({ status: value }));
    },
  };
}

function serviceImplementation(
  methods: readonly GrpcMethod[],
  handlers: GrpcHandlers,
  logger: Logger,
): grpc.UntypedServiceImplementation {
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const method of methods) {
    const { name } = splitMethod(method);
    if (isStreaming(method)) {
      implementation[name] = handlers[method] ?? unimplementedStream(method);
    } else {
      const handler = handlers[method];
      implementation[name] = handler
        ? unaryCall(handler, logger, method)
        : (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(unimplementedStatus(method));
    }
  }
  return implementation;
}

/** The service's method definitions with our size-limiting, failure-reporting deserializer. */
function serviceDefinition(serviceName: string, receiveLimitBytes: number): grpc.ServiceDefinition {
  const loaded = loadProtos()[serviceName] as grpc.ServiceDefinition | undefined;
  if (loaded === undefined) throw new Error(`service ${serviceName} missing from the loaded protos`);
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(loaded)) {
    const unary = !method.requestStream && !method.responseStream;
    const requestDeserialize = sizeLimitedDeserializer(
      method.requestDeserialize as (buffer: Buffer) => WireMessage,
      receiveLimitBytes,
      unary,
    );
    definition[name] = { ...method, requestDeserialize, responseSerialize: passEncoded(method.responseSerialize as (message: WireMessage) => Buffer) as grpc.serialize<unknown> };
  }
  return definition;
}

function resolveLimits(limits: Partial<GrpcLimits> | undefined): GrpcLimits {
  return {
    maxRequestBytes: limits?.maxRequestBytes ?? requestBytesDefault,
    maxTxnOps: limits?.maxTxnOps ?? txnOpsDefault,
  };
}

/** Builds (but does not bind) a grpc-js Server with every etcd v3 service registered. */
export function createGrpcServer(options: GrpcServerOptions): grpc.Server {
  const limits = resolveLimits(options.limits);
  const logger = options.logger ?? createLogger('info', ['default'], { component: 'grpc-server' });
  // etcd lets gRPC accept messages up to --max-request-bytes plus framing headroom.
  const receiveLimitBytes = limits.maxRequestBytes + grpcOverheadBytes;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': receiveLimitBytes * receiveHardLimitFactor,
    'grpc.max_send_message_length': -1,
  });
  const handlers: GrpcHandlers = {
    ...healthHandlers(options.healthy ?? (() => true)),
    ...kvHandlers(options.kv, limits),
    ...options.handlers,
  };
  const byService = new Map<string, GrpcMethod[]>();
  for (const method of grpcMethods) {
    const { service } = splitMethod(method);
    byService.set(service, [...(byService.get(service) ?? []), method]);
  }
  for (const [service, methods] of byService) {
    server.addService(serviceDefinition(service, receiveLimitBytes), serviceImplementation(methods, handlers, logger));
  }
  fastLanes.set(server, { methods: fastUnaryMethods(handlers), receiveLimitBytes, logger });
  routeTables.set(server, grpcRoutes(handlers, byService, receiveLimitBytes, logger));
  return server;
}

const routeTables = new WeakMap<grpc.Server, GrpcRoutes>();

/** Every method of a server made by createGrpcServer, for our own HTTP/2 (grpc-http2.ts). */
export function grpcRoutesOf(server: grpc.Server): GrpcRoutes | undefined {
  return routeTables.get(server);
}

function grpcRoutes(handlers: GrpcHandlers, byService: Map<string, GrpcMethod[]>, receiveLimitBytes: number, logger: Logger): GrpcRoutes {
  const byPath = new Map<string, GrpcRoute>();
  for (const method of grpcMethods) {
    const { service, name } = splitMethod(method);
    const loaded = (loadProtos()[service] as grpc.ServiceDefinition | undefined)?.[name];
    if (loaded === undefined) continue;
    const decode = loaded.requestDeserialize as (buffer: Buffer) => WireMessage;
    const encode = passEncoded(loaded.responseSerialize as (message: WireMessage) => Buffer);
    if (isStreaming(method)) {
      const handler = (handlers[method] ?? unimplementedStream(method)) as (call: unknown) => void;
      byPath.set(`/${method}`, { kind: 'stream', clientStreaming: loaded.requestStream, decode, encode, handler });
    } else {
      const handler: UnaryHandler = handlers[method] ?? (async () => {
        const { code, details } = unimplementedStatus(method);
        throw new EtcdError(code as number, details as string);
      });
      byPath.set(`/${method}`, { kind: 'unary', decode, encode, handler });
    }
  }
  return { byPath, services: new Set(byService.keys()), receiveLimitBytes, logger };
}

const fastLanes = new WeakMap<grpc.Server, FastLane>();

/** A serializer that hands an EncodedResponse's bytes over as they are and encodes anything else. */
function passEncoded(serialize: (message: WireMessage) => Buffer): (message: WireMessage) => Buffer {
  return (message) => {
    if (!(message instanceof EncodedResponse)) return serialize(message);
    const { bytes } = message as EncodedResponse;
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/** The unary methods of a server made by createGrpcServer, for installFastLane(). */
export function fastLaneOf(server: grpc.Server): FastLane | undefined {
  return fastLanes.get(server);
}

/** Every unary method with a handler, keyed by its HTTP/2 path, with grpc-js's own (de)serializers. */
function fastUnaryMethods(handlers: GrpcHandlers): Map<string, FastUnaryMethod> {
  const methods = new Map<string, FastUnaryMethod>();
  for (const method of grpcMethods) {
    const handler = handlers[method as UnaryMethod];
    if (isStreaming(method) || handler === undefined) continue;
    const { service, name } = splitMethod(method);
    const loaded = (loadProtos()[service] as grpc.ServiceDefinition | undefined)?.[name];
    if (loaded === undefined) continue;
    methods.set(`/${method}`, {
      decode: loaded.requestDeserialize as (buffer: Buffer) => WireMessage,
      encode: passEncoded(loaded.responseSerialize as (message: WireMessage) => Buffer),
      handler: handler as UnaryHandler,
    });
  }
  return methods;
}
