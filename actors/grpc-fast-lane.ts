/**
 * Unary gRPC calls answered straight off the HTTP/2 stream, without grpc-js's per-call machinery
 * (interceptor chain, metadata objects, message streams, channelz), which profiles showed costing
 * several times what a serializable Range itself costs. Streaming methods, compressed requests and
 * any path not in the table still go to grpc-js, on the same connection: the lane sits in front of
 * grpc-js's 'stream' listener on the HTTP/2 server behind its connection injector.
 *
 * What a client sees is what grpc-js (and etcd's grpc-go) send: response headers, one
 * length-prefixed message, then trailers with grpc-status; an error is a trailers-only response
 * with grpc-status and a percent-encoded grpc-message. A deadline (grpc-timeout) that passes
 * first answers DEADLINE_EXCEEDED and aborts the handler's signal, as does the client's cancel.
 *
 * grpc-js keeps its HTTP/2 servers in a private map; installFastLane() checks that shape and
 * leaves everything to grpc-js (returning false) when a grpc-js upgrade changes it.
 */
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { WireMessage } from '../src/api/codec.js';
import { EtcdError } from '../src/api/errors.js';
import type { Logger } from './logger.js';
import type { UnaryContext, UnaryHandler } from './grpc-server.js';

/** One unary method the lane serves: the (de)serializers grpc-js would use, and the handler. */
export interface FastUnaryMethod {
  decode(buffer: Buffer): WireMessage;
  encode(message: WireMessage): Buffer;
  handler: UnaryHandler;
}

export interface FastLane {
  /** By HTTP/2 path, `/package.Service/Method`. */
  methods: ReadonlyMap<string, FastUnaryMethod>;
  /** Requests larger than this are refused with grpc-go's RESOURCE_EXHAUSTED text. */
  receiveLimitBytes: number;
  logger: Logger;
}

type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

/** gRPC's 5-byte message prefix: compressed flag, then the length big-endian. */
const messagePrefixBytes = 5;
const grpcContentType = 'application/grpc';

/**
 * Response options without Node's default Date header, which gRPC does not use (Go's gRPC server
 * sends none): one header less to build and compress per call. Node takes sendDate here though
 * its type declarations leave it out.
 */
const unaryResponseOptions: http2.ServerStreamResponseOptions = Object.assign({ waitForTrailers: true }, { sendDate: false });
const trailersOnlyOptions: http2.ServerStreamResponseOptions = Object.assign({ endStream: true }, { sendDate: false });

/**
 * Puts the lane in front of the HTTP/2 server grpc-js created last (the one behind the connection
 * injector just made). Returns false, changing nothing, if grpc-js no longer looks as expected.
 */
export function installFastLane(grpcServer: grpc.Server, lane: FastLane): boolean {
  const servers = (grpcServer as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map) || servers.size === 0) return false;
  const server = [...servers.keys()].pop() as http2.Http2Server;
  const listeners = server.listeners('stream') as StreamListener[];
  if (listeners.length !== 1) return false;
  const toGrpcJs = listeners[0] as StreamListener;
  server.removeListener('stream', toGrpcJs);
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    const method = lane.methods.get(headers[':path'] ?? '');
    if (method === undefined || !plainGrpc(headers)) return toGrpcJs.call(server, stream, headers, flags, rawHeaders);
    new UnaryCall(stream, headers, method, lane).start();
  });
  return true;
}

/** A gRPC POST without compression, which is what the lane knows how to read. */
function plainGrpc(headers: http2.IncomingHttpHeaders): boolean {
  const contentType = headers['content-type'] ?? '';
  const encoding = headers['grpc-encoding'];
  return headers[':method'] === 'POST' && contentType.startsWith(grpcContentType) && (encoding === undefined || encoding === 'identity');
}

class UnaryCall {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private prefixChecked = false;
  private answered = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private aborter: AbortController | undefined;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly headers: http2.IncomingHttpHeaders,
    private readonly method: FastUnaryMethod,
    private readonly lane: FastLane,
  ) {}

  start(): void {
    const { stream } = this;
    stream.on('error', () => this.abort());
    stream.on('close', () => this.abort());
    const timeoutMs = parseGrpcTimeout(this.headers['grpc-timeout']);
    if (timeoutMs !== undefined) {
      this.deadlineTimer = setTimeout(() => this.fail(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'), timeoutMs);
      this.deadlineTimer.unref();
    }
    stream.on('data', (chunk: Buffer) => this.receive(chunk));
    stream.on('end', () => this.run());
  }

  private receive(chunk: Buffer): void {
    if (this.answered) return;
    this.bytes += chunk.length;
    this.chunks.push(chunk);
    // Refuse an oversized request as soon as its prefix says so, before buffering all of it.
    if (this.prefixChecked || this.bytes < messagePrefixBytes) return;
    this.prefixChecked = true;
    const prefix = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, messagePrefixBytes);
    const length = prefix.readUInt32BE(1);
    if (length > this.lane.receiveLimitBytes) this.refuseTooLarge(length);
  }

  private run(): void {
    if (this.answered) return;
    const body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.bytes);
    if (body.length < messagePrefixBytes) return this.fail(grpc.status.INTERNAL, 'grpc: error unmarshalling request: unexpected EOF');
    if (body[0] !== 0) return this.fail(grpc.status.INTERNAL, 'grpc: compressed flag set with identity or empty encoding');
    const length = body.readUInt32BE(1);
    if (length > this.lane.receiveLimitBytes) return this.refuseTooLarge(length);
    if (body.length !== messagePrefixBytes + length) return this.fail(grpc.status.INTERNAL, 'grpc: error unmarshalling request: unexpected EOF');
    let request: WireMessage;
    try {
      request = this.method.decode(body.subarray(messagePrefixBytes));
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      return this.fail(grpc.status.INTERNAL, `grpc: error unmarshalling request: ${text.startsWith('index out of range') ? 'unexpected EOF' : text}`);
    }
    this.method.handler(request, this.context(length)).then(
      (response) => this.succeed(response),
      (error: unknown) => this.failWith(error),
    );
  }

  private context(requestBytes: number): UnaryContext {
    return new FastCallContext(this, requestBytes);
  }

  /** The peer as grpc-js reports it; reaching the socket goes through Node's HTTP/2 socket proxy, which costs. */
  peer(): string {
    const socket = this.stream.session?.socket;
    return socket === undefined ? 'unknown' : `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
  }

  metadata(): grpc.Metadata {
    return grpc.Metadata.fromHttp2Headers(this.headers);
  }

  /** Made on first use: most handlers never look. Aborted once the call is over either way. */
  signal(): AbortSignal {
    this.aborter ??= new AbortController();
    if (this.answered) this.aborter.abort();
    return this.aborter.signal;
  }

  private succeed(response: WireMessage): void {
    if (this.answered) return;
    let payload: Buffer;
    try {
      payload = this.method.encode(response);
    } catch (error) {
      return this.failWith(error);
    }
    this.finish();
    if (this.stream.destroyed) return;
    const frame = Buffer.allocUnsafe(messagePrefixBytes + payload.length);
    frame[0] = 0;
    frame.writeUInt32BE(payload.length, 1);
    payload.copy(frame, messagePrefixBytes);
    this.stream.respond({ ':status': 200, 'content-type': grpcContentType }, unaryResponseOptions);
    this.stream.once('wantTrailers', () => this.stream.sendTrailers({ 'grpc-status': '0' }));
    this.stream.end(frame);
  }

  private failWith(error: unknown): void {
    if (error instanceof EtcdError) return this.fail(error.code as number, error.message);
    this.lane.logger.error({ method: this.headers[':path'], err: error }, 'unexpected error in gRPC handler');
    this.fail(grpc.status.UNKNOWN, error instanceof Error ? error.message : String(error));
  }

  private refuseTooLarge(length: number): void {
    this.fail(grpc.status.RESOURCE_EXHAUSTED, `grpc: received message larger than max (${length} vs. ${this.lane.receiveLimitBytes})`);
  }

  /** A trailers-only response carrying the status. */
  private fail(code: number, message: string): void {
    if (this.answered) return;
    this.finish();
    if (this.stream.destroyed) return;
    this.stream.respond({ ':status': 200, 'content-type': grpcContentType, 'grpc-status': String(code), 'grpc-message': percentEncode(message) }, trailersOnlyOptions);
    // Whatever the client still sends is not read.
    this.stream.resume();
  }

  private finish(): void {
    this.answered = true;
    clearTimeout(this.deadlineTimer);
    this.chunks.length = 0;
    this.aborter?.abort();
  }

  private abort(): void {
    if (this.answered) return;
    this.answered = true;
    clearTimeout(this.deadlineTimer);
    this.aborter?.abort();
  }
}

/** A handler's view of its call; everything but the size is worked out only when asked. */
class FastCallContext implements UnaryContext {
  constructor(
    private readonly call: UnaryCall,
    readonly requestBytes: number,
  ) {}

  get peer(): string {
    return this.call.peer();
  }

  get metadata(): grpc.Metadata {
    return this.call.metadata();
  }

  get signal(): AbortSignal {
    return this.call.signal();
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

/** gRPC's grpc-message encoding: bytes outside printable ASCII, and '%', as %XX of their UTF-8. */
export function percentEncode(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let encoded = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    encoded += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}
