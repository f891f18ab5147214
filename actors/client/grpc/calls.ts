/**
 * gRPC calls on our own HTTP/2 streams (actors/client/http2/server.ts): a unary call reads one message and
 * answers once; a streaming call is an object shaped like grpc-js's server call (events 'data',
 * 'end', 'cancelled', 'drain', 'finish', 'close'; write, end, emit('error', status)), which is
 * what the Watch, LeaseKeepAlive and Observe handlers were written against.
 */
import { EventEmitter } from 'node:events';
import zlib from 'node:zlib';
import type * as grpc from '@grpc/grpc-js';
import { grpcJs } from '../grpc-js.js';
import type { WireMessage } from '../../../src/api/proto-wire.js';
import { EtcdError, GrpcCode, grpcTexts } from '../../../src/api/errors.js';
import { unexpectedEofText } from '../../../src/lib/protobuf.js';
import { grpcFramePrefixBytes, writeFramePrefix } from '../../../src/http2/frames.js';
import type { Logger } from '../../shared/logger.js';
import type { UnaryContext, UnaryHandler } from './router.js';
import type { Http2ServerStream } from '../http2/answer-writer.js';
import { CallTally, type GrpcTraffic, type MethodStats } from './call-stats.js';
import { clientApiVersionKey } from '../../../src/metrics/etcd-metrics.js';

export interface GrpcUnaryRoute {
  kind: 'unary';
  decode(buffer: Buffer): WireMessage;
  encode(message: WireMessage): Uint8Array;
  handler: UnaryHandler;
  /** This method's counts, for metrics. */
  stats: MethodStats;
}

export interface GrpcStreamRoute {
  kind: 'stream';
  /** Client streaming (bidi here): the handler starts with the call; otherwise with its request. */
  clientStreaming: boolean;
  decode(buffer: Buffer): WireMessage;
  encode(message: WireMessage): Uint8Array;
  handler: (call: GrpcStreamCall) => void;
  /** This method's counts, for metrics. */
  stats: MethodStats;
}

export type GrpcRoute = GrpcUnaryRoute | GrpcStreamRoute;

export interface GrpcRoutes {
  /** By HTTP/2 path, `/package.Service/Method`. */
  byPath: ReadonlyMap<string, GrpcRoute>;
  /** Service names, for grpc-go's "unknown service" versus "unknown method". */
  services: ReadonlySet<string>;
  /** Messages larger than this are refused with grpc-go's RESOURCE_EXHAUSTED text. */
  receiveLimitBytes: number;
  logger: Logger;
  /** Message bytes in and out of every call, for metrics. */
  traffic: GrpcTraffic;
}

/** The request headers a call needs; the rest stay as decoded name/value pairs. */
export interface RequestHead {
  method: string;
  path: string;
  contentType: string;
  timeout: string | undefined;
  encoding: string | undefined;
  /** Every field: names at even positions, values after them. */
  fields: string[];
}

/** What the connection tells a call about its stream. */
export interface CallSide {
  readonly streaming: boolean;
  /** Bytes received and held for a message that has not all arrived. */
  readonly bufferedBytes: number;
  start(): void;
  onData(bytes: Buffer, endStream: boolean): void;
  /** The client reset the stream or the connection went away. */
  onReset(): void;
  /** Queued writes have gone out; more may be written. */
  onWritable(): void;
}

/** A status to end a call with. */
class CallStatus {
  constructor(
    readonly code: number,
    readonly message: string,
  ) {}
}

/** Splits a stream's bytes into gRPC messages, refusing an oversized one as soon as its prefix arrives. */
class MessageReader {
  private chunks: Buffer[] = [];
  private bytes = 0;

  constructor(
    private readonly limitBytes: number,
    private readonly encoding: string | undefined,
  ) {}

  get buffered(): number {
    return this.bytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  /** A refusal when the next message's prefix announces more than the limit. */
  oversized(): CallStatus | undefined {
    if (this.bytes < grpcFramePrefixBytes) return undefined;
    if (this.chunks[0]!.length < grpcFramePrefixBytes) this.join();
    const length = this.chunks[0]!.readUInt32BE(1);
    return length > this.limitBytes ? tooLarge(length, this.limitBytes) : undefined;
  }

  /** The next whole message, undefined while it has not all arrived; a CallStatus when it is refused. */
  next(): Buffer | CallStatus | undefined {
    if (this.bytes < grpcFramePrefixBytes) return undefined;
    if (this.chunks[0]!.length < grpcFramePrefixBytes) this.join();
    const first = this.chunks[0]!;
    const flag = first[0]!;
    const length = first.readUInt32BE(1);
    if (length > this.limitBytes) return tooLarge(length, this.limitBytes);
    const total = grpcFramePrefixBytes + length;
    if (this.bytes < total) return undefined;
    if (first.length < total) this.join();
    const joined = this.chunks[0]!;
    const payload = joined.subarray(grpcFramePrefixBytes, total);
    if (joined.length === total) this.chunks.shift();
    else this.chunks[0] = joined.subarray(total);
    this.bytes -= total;
    return flag === 0 ? payload : this.decompressed(flag, payload);
  }

  private join(): void {
    this.chunks = [Buffer.concat(this.chunks, this.bytes)];
  }

  private decompressed(flag: number, payload: Buffer): Buffer | CallStatus {
    if (flag !== 1) return new CallStatus(GrpcCode.internal, `grpc: received unexpected payload format ${flag}`);
    if (this.encoding === undefined || this.encoding === 'identity') {
      return new CallStatus(GrpcCode.internal, 'grpc: compressed flag set with identity or empty encoding');
    }
    let plain: Buffer;
    try {
      const options = { maxOutputLength: this.limitBytes + 1 };
      plain = this.encoding === 'gzip' ? zlib.gunzipSync(payload, options) : zlib.inflateSync(payload, options);
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        return new CallStatus(
          GrpcCode.resourceExhausted,
          `grpc: received message after decompression larger than max (${this.limitBytes + 1} vs. ${this.limitBytes})`,
        );
      }
      return new CallStatus(
        GrpcCode.internal,
        `grpc: failed to decompress the received message: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (plain.length > this.limitBytes) {
      return new CallStatus(
        GrpcCode.resourceExhausted,
        `grpc: received message after decompression larger than max (${plain.length} vs. ${this.limitBytes})`,
      );
    }
    return plain;
  }
}

const decompressors = new Set(['identity', 'gzip', 'deflate']);

function tooLarge(length: number, limitBytes: number): CallStatus {
  return new CallStatus(GrpcCode.resourceExhausted, grpcTexts.messageTooLarge(length, limitBytes));
}

/**
 * protobufjs reports a truncated message as an index error; grpc-go calls it "unexpected EOF". A
 * decoder may also refuse a request as etcd's validation would (an EtcdError), with that answer.
 */
function decoded(route: GrpcRoute, payload: Buffer): WireMessage | CallStatus {
  try {
    return route.decode(payload);
  } catch (error) {
    if (error instanceof EtcdError) return new CallStatus(error.code as number, error.message);
    const text = error instanceof Error ? error.message : String(error);
    return new CallStatus(
      GrpcCode.internal,
      grpcTexts.unmarshalling(text.startsWith('index out of range') ? unexpectedEofText : text),
    );
  }
}

const timeoutUnitMs: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 };

/** gRPC's grpc-timeout header ("100m" = 100 ms); undefined when absent or malformed. */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (match === null) return undefined;
  return Math.max(0, Math.ceil(Number(match[1]) * (timeoutUnitMs[match[2] as string] as number)));
}

/** The call's headers as Node's HTTP/2 would give them, for grpc-js's Metadata. */
function headerObject(fields: readonly string[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [existing, value];
  }
  return headers;
}

function metadataOf(head: RequestHead): grpc.Metadata {
  return grpcJs().Metadata.fromHttp2Headers(headerObject(head.fields));
}

/** The first value of header `name` (lower case), without building the metadata. */
function headerValue(head: RequestHead, name: string): string | undefined {
  for (let i = 0; i < head.fields.length; i += 2) if (head.fields[i] === name) return head.fields[i + 1];
  return undefined;
}

/** etcd reads a token from metadata `token`, or `authorization` as the JSON gateway passes it on. */
function tokenOf(head: RequestHead): string | undefined {
  return headerValue(head, 'token') ?? headerValue(head, 'authorization');
}

/** A certificate names the caller unless the JSON gateway makes the call on someone's behalf. */
function commonNameOf(head: RequestHead, stream: Http2ServerStream): string | undefined {
  if (headerValue(head, gatewayMarkerHeader) !== undefined) return undefined;
  return stream.connection.clientCommonName();
}

/** The metadata grpc-gateway adds to every call it makes, by which etcd knows them. */
export const gatewayMarkerHeader = 'grpcgateway-accept';

/** Refusals that depend only on the headers: an encoding we cannot read. */
function headRefusal(head: RequestHead): CallStatus | undefined {
  if (head.encoding === undefined || decompressors.has(head.encoding)) return undefined;
  return new CallStatus(
    GrpcCode.unimplemented,
    `grpc: Decompressor is not installed for grpc-encoding "${head.encoding}"`,
  );
}

function statusOfError(error: unknown, logger: Logger, path: string): CallStatus {
  if (error instanceof EtcdError) return new CallStatus(error.code as number, error.message);
  logger.error({ method: path, err: error }, 'unexpected error in gRPC handler');
  return new CallStatus(GrpcCode.unknown, error instanceof Error ? error.message : String(error));
}

/** A unary call: one request message, one answer or status. */
export class UnaryGrpcCall implements CallSide {
  readonly streaming = false;
  private readonly reader: MessageReader;
  private readonly tally: CallTally;
  private answered = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private aborter: AbortController | undefined;

  constructor(
    private readonly stream: Http2ServerStream,
    private readonly route: GrpcUnaryRoute,
    readonly head: RequestHead,
  ) {
    this.reader = new MessageReader(stream.connection.routes.receiveLimitBytes, head.encoding);
    this.tally = new CallTally(route.stats, stream.connection.routes.traffic);
  }

  start(): void {
    const refusal = headRefusal(this.head);
    if (refusal !== undefined) return this.fail(refusal);
    const timeoutMs = parseGrpcTimeout(this.head.timeout);
    if (timeoutMs !== undefined) {
      this.deadlineTimer = setTimeout(
        () => this.fail(new CallStatus(GrpcCode.deadlineExceeded, 'Deadline exceeded')),
        timeoutMs,
      );
      this.deadlineTimer.unref();
    }
  }

  onData(bytes: Buffer, endStream: boolean): void {
    if (this.answered) return;
    this.reader.push(bytes);
    if (!endStream) {
      // Refuse an oversized request as soon as its prefix says so, before buffering all of it.
      const refusal = this.reader.oversized();
      if (refusal !== undefined) this.fail(refusal);
      return;
    }
    const message = this.reader.next();
    if (message instanceof CallStatus) return this.fail(message);
    if (message === undefined || this.reader.buffered > 0) {
      return this.fail(new CallStatus(GrpcCode.internal, grpcTexts.unmarshallingEof));
    }
    const request = decoded(this.route, message);
    if (request instanceof CallStatus) return this.fail(request);
    this.tally.start(headerValue(this.head, clientApiVersionKey));
    this.tally.received(message.length);
    let answer: Promise<WireMessage>;
    try {
      answer = this.route.handler(request, new UnaryCallContext(this, message.length));
    } catch (error) {
      answer = Promise.reject(error as Error);
    }
    answer.then(
      (response) => this.succeed(response),
      (error: unknown) => this.fail(statusOfError(error, this.stream.connection.routes.logger, this.head.path)),
    );
  }

  get bufferedBytes(): number {
    return this.reader.buffered;
  }

  onReset(): void {
    this.tally.handled(GrpcCode.canceled);
    this.finish();
  }

  onWritable(): void {}

  peer(): string {
    return this.stream.connection.peer;
  }

  token(): string | undefined {
    return tokenOf(this.head);
  }

  commonName(): string | undefined {
    return commonNameOf(this.head, this.stream);
  }

  /** Made on first use: most handlers never look. Aborted once the call is over either way. */
  signal(): AbortSignal {
    this.aborter ??= new AbortController();
    if (this.answered) this.aborter.abort();
    return this.aborter.signal;
  }

  private succeed(response: WireMessage): void {
    if (this.answered) return;
    let payload: Uint8Array;
    try {
      payload = this.route.encode(response);
    } catch (error) {
      return this.fail(statusOfError(error, this.stream.connection.routes.logger, this.head.path));
    }
    this.tally.sent(payload.length);
    this.tally.handled(GrpcCode.ok);
    this.finish();
    this.stream.connection.respondUnary(this.stream, payload);
  }

  private fail(status: CallStatus): void {
    if (this.answered) return;
    this.tally.handled(status.code);
    this.finish();
    this.stream.connection.respondTrailersOnly(this.stream, status.code, status.message);
  }

  private finish(): void {
    this.answered = true;
    clearTimeout(this.deadlineTimer);
    this.aborter?.abort();
  }
}

/** A handler's view of its call; everything but the size is worked out only when asked. */
class UnaryCallContext implements UnaryContext {
  constructor(
    private readonly call: UnaryGrpcCall,
    readonly requestBytes: number,
  ) {}

  get peer(): string {
    return this.call.peer();
  }

  get metadata(): grpc.Metadata {
    return metadataOf(this.call.head);
  }

  get signal(): AbortSignal {
    return this.call.signal();
  }

  get token(): string | undefined {
    return this.call.token();
  }

  get commonName(): string | undefined {
    return this.call.commonName();
  }

  header(name: string): string | undefined {
    return headerValue(this.call.head, name);
  }
}

/**
 * A streaming call, shaped like grpc-js's ServerDuplexStream / ServerWritableStream as far as our
 * handlers use it. Writes queue behind flow control; write() returns false once they do, and
 * 'drain' follows when they have gone out.
 */
export class GrpcStreamCall extends EventEmitter implements CallSide {
  readonly streaming = true;
  /** The request of a server-streaming call. */
  request: WireMessage = {};
  cancelled = false;
  private readonly reader: MessageReader;
  private readonly tally: CallTally;
  private handlerStarted = false;
  private finished = false;
  private waitingDrain = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private cachedMetadata: grpc.Metadata | undefined;

  constructor(
    private readonly stream: Http2ServerStream,
    private readonly route: GrpcStreamRoute,
    private readonly head: RequestHead,
  ) {
    super();
    this.reader = new MessageReader(stream.connection.routes.receiveLimitBytes, head.encoding);
    this.tally = new CallTally(route.stats, stream.connection.routes.traffic);
    // grpc-js handlers end a call with an error status by emitting it.
    this.on('error', (status: Partial<grpc.StatusObject> | Error) => this.endWithStatus(status));
  }

  get metadata(): grpc.Metadata {
    return (this.cachedMetadata ??= metadataOf(this.head));
  }

  getPeer(): string {
    return this.stream.connection.peer;
  }

  get token(): string | undefined {
    return tokenOf(this.head);
  }

  get commonName(): string | undefined {
    return commonNameOf(this.head, this.stream);
  }

  start(): void {
    const refusal = headRefusal(this.head);
    if (refusal !== undefined) return this.finishWith(refusal);
    const timeoutMs = parseGrpcTimeout(this.head.timeout);
    if (timeoutMs !== undefined) {
      this.deadlineTimer = setTimeout(() => {
        this.finishWith(new CallStatus(GrpcCode.deadlineExceeded, 'Deadline exceeded'));
        this.cancel();
      }, timeoutMs);
      this.deadlineTimer.unref();
    }
    if (this.route.clientStreaming) this.runHandler();
  }

  onData(bytes: Buffer, endStream: boolean): void {
    if (this.finished) return;
    this.reader.push(bytes);
    for (;;) {
      const message = this.reader.next();
      if (message === undefined) break;
      if (message instanceof CallStatus) return this.finishWith(message);
      const request = decoded(this.route, message);
      if (request instanceof CallStatus) return this.finishWith(request);
      this.tally.received(message.length);
      if (!this.route.clientStreaming) {
        if (this.handlerStarted)
          return this.finishWith(
            new CallStatus(GrpcCode.internal, 'grpc: server-streaming request sent more than one message'),
          );
        this.request = request;
        this.runHandler();
      } else this.emit('data', request);
      if (this.finished) return;
    }
    if (!endStream) return;
    if (!this.handlerStarted) return this.finishWith(new CallStatus(GrpcCode.internal, grpcTexts.unmarshallingEof));
    this.emit('end');
  }

  get bufferedBytes(): number {
    return this.reader.buffered;
  }

  onReset(): void {
    clearTimeout(this.deadlineTimer);
    if (!this.finished) this.tally.handled(GrpcCode.canceled);
    this.finished = true;
    this.cancel();
    this.emit('close');
  }

  onWritable(): void {
    if (!this.waitingDrain) return;
    this.waitingDrain = false;
    this.emit('drain');
  }

  /** Sends one response; returns false when it had to queue (wait for 'drain' before more). */
  write(message: WireMessage, done?: (() => void) | BufferEncoding, callback?: () => void): boolean {
    const whenWritten = typeof done === 'function' ? done : callback;
    if (this.finished) return false;
    let bytes: Buffer;
    try {
      bytes = this.prefixed(message);
    } catch (error) {
      this.finishWith(
        new CallStatus(
          GrpcCode.internal,
          `grpc: error while marshaling: ${error instanceof Error ? error.message : String(error)}`,
        ),
      );
      return false;
    }
    return this.writeFramed(bytes, whenWritten);
  }

  /** Sends bytes that are already whole prefixed messages (`messages` of them), as write() does. */
  writeFramed(bytes: Buffer, whenWritten?: () => void, messages = 1): boolean {
    if (this.finished) return false;
    this.tally.sent(bytes.length - messages * grpcFramePrefixBytes, messages);
    const connection = this.stream.connection;
    connection.sendHeaders(this.stream);
    connection.sendData(this.stream, bytes, whenWritten);
    if (connection.writable(this.stream)) return true;
    this.waitingDrain = true;
    connection.waitWritable(this.stream);
    return false;
  }

  /** Ends the call with an error status and tells the handler the call is over, as a passed deadline does. */
  endWithError(code: GrpcCode, message: string): void {
    this.finishWith(new CallStatus(code, message));
    this.cancel();
  }

  /** Ends the call with an OK status once everything written has gone out. */
  end(): void {
    if (this.finished) return;
    this.finishWith(new CallStatus(GrpcCode.ok, ''));
  }

  private prefixed(message: WireMessage): Buffer {
    const payload = this.route.encode(message);
    const bytes = Buffer.allocUnsafe(grpcFramePrefixBytes + payload.length);
    bytes.set(payload, writeFramePrefix(bytes, 0, payload.length));
    return bytes;
  }

  private runHandler(): void {
    this.handlerStarted = true;
    this.tally.start(headerValue(this.head, clientApiVersionKey));
    try {
      this.route.handler(this);
    } catch (error) {
      this.finishWith(statusOfError(error, this.stream.connection.routes.logger, this.head.path));
    }
  }

  private endWithStatus(status: Partial<grpc.StatusObject> | Error): void {
    if (status instanceof Error) return this.finishWith(new CallStatus(GrpcCode.unknown, status.message));
    this.finishWith(new CallStatus(status.code ?? GrpcCode.unknown, status.details ?? ''));
  }

  private finishWith(status: CallStatus): void {
    if (this.finished) return;
    this.finished = true;
    this.tally.handled(status.code);
    clearTimeout(this.deadlineTimer);
    const connection = this.stream.connection;
    if (status.code === GrpcCode.ok) {
      connection.sendHeaders(this.stream);
      connection.sendTrailers(this.stream, GrpcCode.ok, '');
    } else connection.respondTrailersOnly(this.stream, status.code, status.message);
    this.emit('finish');
  }

  private cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled');
  }
}

/** Resolves when the stream takes writes again or the call is over. */
export function drained(call: GrpcStreamCall, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
