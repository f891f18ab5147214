/**
 * The client port's gRPC over our own HTTP/2 (RFC 9113): frames are read straight off the
 * socket, calls are routed by path, and answers are laid end to end in shared slabs that leave in
 * one socket write per turn of the event loop. Node's HTTP/2 server (nghttp2 and a stream object
 * with its header objects per call) was the largest cost a member thread had under load, and it
 * wrote every unary answer's trailers in a write of their own.
 *
 * What a client sees is what grpc-go's server sends: response headers, length-prefixed messages,
 * trailers with grpc-status; errors as trailers-only responses. Both directions are
 * flow-controlled. Streaming methods get a call object shaped like grpc-js's (see GrpcStreamCall),
 * which is what their handlers were written against. etcd's --max-concurrent-streams and
 * --grpc-keepalive-* flags act here as grpc-go's server options do (Http2ServerOptions).
 *
 * The connection is split by job: server-options.ts holds the SETTINGS and the options etcd's
 * flags come to, answer-writer.ts the streams and everything written, and this file reads
 * frames off the socket, starts calls and judges the client's PINGs (keepalive included).
 *
 * The port faces the network, so what a client can make the member hold or do is bounded, each
 * bound named in limits.ts: stream resets (rapid reset), header blocks and header lists (CONTINUATION
 * floods, HPACK bombs), runs of empty frames, what is queued for a client that does not read
 * (answer-writer.ts), the bytes and streams of requests not yet finished, idle unfinished streams,
 * and the time to the preface. bench/RESULTS.md (2026-12-05) records why this server is our own.
 */
import type { Duplex } from 'node:stream';
import {
  FrameFlag,
  FrameType,
  Http2ConnectionError,
  Http2ErrorCode,
  Setting,
  defaultFrameBytes,
  defaultWindowBytes,
  frameBytesLimitMax,
  frameHeaderBytes,
  fullResetBudget,
  http2Preface,
  pingStrikesAfter,
  takeReset,
  windowBytesMax,
  type ResetBudget,
} from '../../../src/http2/frames.js';
import {
  emptyFramesInARowMax,
  grpcPingStrikesMax,
  headerBlockBytesMax,
  headerListBytesMax,
  streamStateBytes,
  unfinishedRequestBytesMax,
} from '../../../src/lib/limits.js';
import { HeaderDecoder, HpackError } from '../../../src/http2/hpack.js';
import { GrpcCode, errors } from '../../../src/api/errors.js';
import { GrpcStreamCall, UnaryGrpcCall, type GrpcRoute, type GrpcRoutes, type RequestHead } from '../grpc/calls.js';
import { Http2AnswerWriter, Http2ServerStream } from './answer-writer.js';
import {
  connectionReceiveWindowBytes,
  etcdHttp2ServerOptions,
  serverSettings,
  streamReceiveWindowBytes,
  type Http2ServerOptions,
} from './server-options.js';

/** Node runs a setTimeout longer than this at once; longer keepalive waits are taken in steps. */
const timerDelayMsMax = 2 ** 31 - 1;
/** grpc-go's keepalive PING carries eight zero bytes. */
const keepalivePingPayload = Buffer.alloc(8);
/** RST_STREAM's payload for a stream over the concurrent-stream limit. */
const refusedStreamPayload = Buffer.from([0, 0, 0, Http2ErrorCode.refusedStream]);
/** RST_STREAM's payload for a header list over headerListBytesMax, as grpc-go answers a truncated one. */
const frameSizePayload = Buffer.from([0, 0, 0, Http2ErrorCode.frameSizeError]);

/** Serves gRPC on a socket whose next bytes are the client's HTTP/2 connection preface. */
export function serveGrpcConnection(
  socket: Duplex & { remoteAddress?: string; remotePort?: number },
  routes: GrpcRoutes,
  options: Readonly<Http2ServerOptions> = etcdHttp2ServerOptions,
): Http2Connection {
  const connection = new Http2Connection(socket, routes, options);
  connection.start();
  return connection;
}

/** A client connection: reads its frames and acts on each; answers go out through Http2AnswerWriter. */
export class Http2Connection extends Http2AnswerWriter {
  private readonly decoder = new HeaderDecoder();
  private input: Buffer | undefined;
  private prefaceSeen = false;
  /** A header block still waiting for its CONTINUATION frames. */
  private headerBlock: { streamId: number; endStream: boolean; fragments: Buffer[]; bytes: number } | undefined;
  private peerInitialWindow = defaultWindowBytes;
  private receiveWindow = connectionReceiveWindowBytes;
  private receiveUnacked = 0;
  /** Streams beyond this many are refused; 0 in the options means no limit. */
  private readonly streamsMax: number;
  private pingStrikes = 0;
  private lastPingAtMs = -Infinity;
  /** When the last bytes arrived from the client (performance.now()), for the keepalive check. */
  private lastReadAtMs = 0;
  /** When our keepalive PING went out; undefined while none is waiting for an answer. */
  private keepalivePingSentAtMs: number | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private readonly keepaliveDueCallback = () => this.keepaliveDue();
  /** Resets the client may still cause before it is told to calm down (rapid reset, CVE-2023-44487). */
  private readonly resetBudget: ResetBudget = fullResetBudget(performance.now());
  private emptyFramesInARow = 0;
  /** What the streams the client has not finished hold (see unfinishedRequestBytesMax). */
  private unfinishedBytes = 0;
  /** Runs until the client's SETTINGS arrives; a connection that sends none in time is closed. */
  private prefaceTimer: NodeJS.Timeout | undefined;
  /** Armed while streams whose request has not all arrived are open. */
  private reapTimer: NodeJS.Timeout | undefined;
  private readonly reapCallback = () => this.reapUnfinished();

  constructor(
    socket: Duplex & { remoteAddress?: string; remotePort?: number },
    routes: GrpcRoutes,
    private readonly options: Readonly<Http2ServerOptions> = etcdHttp2ServerOptions,
  ) {
    super(socket, routes);
    this.streamsMax = options.maxConcurrentStreams > 0 ? options.maxConcurrentStreams : Infinity;
  }

  start(): void {
    // Answers are already batched per turn of the event loop; Nagle's algorithm would hold the
    // last small write of a burst until the client's delayed ACK (40 ms on Linux).
    (this.socket as Duplex & { setNoDelay?: (noDelay: boolean) => void }).setNoDelay?.(true);
    this.writer.frame(FrameType.settings, 0, 0, serverSettings(this.options.maxConcurrentStreams));
    this.writeWindowUpdate(0, connectionReceiveWindowBytes - defaultWindowBytes);
    this.flush();
    this.lastReadAtMs = performance.now();
    this.armKeepalive(this.options.keepaliveIntervalMs);
    this.prefaceTimer = setTimeout(() => this.prefaceOverdue(), this.options.prefaceMs);
    this.prefaceTimer.unref();
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.socket.on('close', () => this.shutDown());
    this.socket.on('error', () => this.socket.destroy());
    this.socket.on('drain', () => this.drained());
    this.socket.resume();
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    // Once per read rather than per frame: the keepalive check only needs to know the client is there.
    this.lastReadAtMs = performance.now();
    let bytes = this.input === undefined ? chunk : Buffer.concat([this.input, chunk]);
    this.input = undefined;
    try {
      if (!this.prefaceSeen) {
        if (bytes.length < http2Preface.length) {
          this.input = bytes;
          return;
        }
        if (!bytes.subarray(0, http2Preface.length).equals(http2Preface))
          throw new Http2ConnectionError(Http2ErrorCode.protocolError, 'bad connection preface');
        this.prefaceSeen = true;
        bytes = bytes.subarray(http2Preface.length);
      }
      let at = 0;
      while (bytes.length - at >= frameHeaderBytes) {
        const length = (bytes[at]! << 16) | (bytes[at + 1]! << 8) | bytes[at + 2]!;
        if (length > defaultFrameBytes)
          throw new Http2ConnectionError(
            Http2ErrorCode.frameSizeError,
            `frame of ${length} bytes over ${defaultFrameBytes}`,
          );
        const end = at + frameHeaderBytes + length;
        if (end > bytes.length) break;
        const type = bytes[at + 3]!;
        const flags = bytes[at + 4]!;
        const streamId = bytes.readUInt32BE(at + 5) & 0x7fffffff;
        at = end;
        this.frame(type, flags, streamId, bytes.subarray(end - length, end));
        if (this.closed) return;
      }
      if (at < bytes.length) this.input = bytes.subarray(at);
    } catch (error) {
      if (error instanceof Http2ConnectionError) return this.goAway(error.code, error.message);
      if (error instanceof HpackError) return this.goAway(Http2ErrorCode.compressionError, error.message);
      // A handler's listener that throws ends this connection, not the member.
      this.routes.logger.error({ peer: this.peer, err: error }, 'unexpected error serving a client connection');
      return this.goAway(Http2ErrorCode.internalError, 'internal error');
    }
    this.scheduleFlush();
  }

  private frame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.headerBlock !== undefined && type !== FrameType.continuation) {
      throw new Http2ConnectionError(Http2ErrorCode.protocolError, 'expected a CONTINUATION frame');
    }
    switch (type) {
      case FrameType.data:
        return this.data(flags, streamId, payload);
      case FrameType.headers:
        return this.headersFrame(flags, streamId, payload);
      case FrameType.priority:
        if (payload.length !== 5)
          throw new Http2ConnectionError(Http2ErrorCode.frameSizeError, 'PRIORITY frame not 5 bytes');
        return;
      case FrameType.rstStream:
        return this.reset(streamId, payload);
      case FrameType.settings:
        return this.settings(flags, streamId, payload);
      case FrameType.pushPromise:
        throw new Http2ConnectionError(Http2ErrorCode.protocolError, 'PUSH_PROMISE from a client');
      case FrameType.ping:
        if (payload.length !== 8 || streamId !== 0)
          throw new Http2ConnectionError(Http2ErrorCode.protocolError, 'malformed PING');
        if ((flags & FrameFlag.ack) === 0) this.clientPing(payload);
        return;
      case FrameType.goaway:
        return;
      case FrameType.windowUpdate:
        return this.windowUpdate(streamId, payload);
      case FrameType.continuation:
        return this.continuation(flags, streamId, payload);
      default:
        // Unknown frame types are ignored (RFC 9113, 4.1).
        return;
    }
  }

  private data(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new Http2ConnectionError(Http2ErrorCode.protocolError, 'DATA on stream 0');
    this.receiveWindow -= payload.length;
    if (this.receiveWindow < 0)
      throw new Http2ConnectionError(Http2ErrorCode.flowControlError, 'connection receive window exceeded');
    this.receiveUnacked += payload.length;
    if (this.receiveUnacked >= connectionReceiveWindowBytes / 4) {
      this.writeWindowUpdate(0, this.receiveUnacked);
      this.receiveWindow += this.receiveUnacked;
      this.receiveUnacked = 0;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (streamId > this.lastStreamId)
        throw new Http2ConnectionError(Http2ErrorCode.protocolError, `DATA on idle stream ${streamId}`);
      // A stream we already finished and reset: the client had sent this before it heard.
      return;
    }
    // The client ended this stream already (RFC 9113, 5.1: half-closed remote).
    if (stream.remoteClosed) return this.resetForClient(stream, Http2ErrorCode.streamClosed);
    stream.receiveWindow -= payload.length;
    if (stream.receiveWindow < 0) return this.resetForClient(stream, Http2ErrorCode.flowControlError);
    const endStream = (flags & FrameFlag.endStream) !== 0;
    const body = unpadded(flags, payload, 0);
    if (body.length > 0) this.emptyFramesInARow = 0;
    else if (!endStream && ++this.emptyFramesInARow > emptyFramesInARowMax)
      throw new Http2ConnectionError(Http2ErrorCode.enhanceYourCalm, 'too many empty frames');
    stream.receivedBytes += payload.length;
    stream.lastReceivedAtMs = this.lastReadAtMs;
    if (!endStream && this.unfinishedBytes + body.length > unfinishedRequestBytesMax)
      return this.refuseUnfinished(stream);
    if (endStream) stream.remoteClosed = true;
    else {
      stream.receiveUnacked += payload.length;
      if (stream.receiveUnacked >= streamReceiveWindowBytes / 2) {
        this.writeWindowUpdate(stream.id, stream.receiveUnacked);
        stream.receiveWindow += stream.receiveUnacked;
        stream.receiveUnacked = 0;
      }
    }
    stream.side?.onData(body, endStream);
    if (endStream) this.retireIfDone(stream);
    this.recharge(stream);
  }

  private headersFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0 || streamId % 2 === 0)
      throw new Http2ConnectionError(Http2ErrorCode.protocolError, `HEADERS on stream ${streamId}`);
    const fragment = unpadded(flags, payload, flags & FrameFlag.priority ? 5 : 0);
    const endStream = (flags & FrameFlag.endStream) !== 0;
    this.emptyFramesInARow = 0;
    if ((flags & FrameFlag.endHeaders) === 0) {
      this.headerBlock = { streamId, endStream, fragments: [fragment], bytes: frameHeaderBytes + payload.length };
      return;
    }
    this.headerBlockDone(streamId, endStream, fragment);
  }

  private continuation(flags: number, streamId: number, payload: Buffer): void {
    const block = this.headerBlock;
    if (block === undefined || block.streamId !== streamId)
      throw new Http2ConnectionError(Http2ErrorCode.protocolError, 'unexpected CONTINUATION');
    // Frame headers count too, so a flood of empty CONTINUATION frames runs out as well.
    block.bytes += frameHeaderBytes + payload.length;
    if (block.bytes > headerBlockBytesMax)
      throw new Http2ConnectionError(Http2ErrorCode.enhanceYourCalm, 'header block too large');
    if (payload.length > 0) block.fragments.push(payload);
    if ((flags & FrameFlag.endHeaders) === 0) return;
    this.headerBlock = undefined;
    this.headerBlockDone(streamId, block.endStream, Buffer.concat(block.fragments));
  }

  private headerBlockDone(streamId: number, endStream: boolean, block: Buffer): void {
    const fields: string[] = [];
    // Decoded even for a stream that is refused: the decoder's table must stay in step. Fields
    // past headerListBytesMax are not kept.
    const listBytes = this.decoder.decode(block, fields, headerListBytesMax);
    const existing = this.streams.get(streamId);
    if (existing !== undefined) {
      // Trailers from the client: they only end its side.
      if (!endStream || existing.remoteClosed)
        throw new Http2ConnectionError(
          Http2ErrorCode.protocolError,
          `second HEADERS on stream ${streamId} without END_STREAM`,
        );
      existing.remoteClosed = true;
      existing.side?.onData(Buffer.alloc(0), true);
      this.retireIfDone(existing);
      return;
    }
    if (streamId <= this.lastStreamId)
      throw new Http2ConnectionError(Http2ErrorCode.streamClosed, `HEADERS on closed stream ${streamId}`);
    // A refused stream counts as seen too, so DATA the client sent on it before it heard is ignored.
    this.lastStreamId = streamId;
    if (listBytes > headerListBytesMax) {
      // grpc-go resets a stream whose header list it had to truncate, with FRAME_SIZE_ERROR.
      this.writer.frame(FrameType.rstStream, 0, streamId, frameSizePayload);
      this.spendReset();
      return;
    }
    const charge = endStream ? 0 : streamStateBytes + listBytes;
    if (this.streams.size >= this.streamsMax || this.unfinishedBytes + charge > unfinishedRequestBytesMax) {
      this.writer.frame(FrameType.rstStream, 0, streamId, refusedStreamPayload);
      return;
    }
    const stream = new Http2ServerStream(streamId, this, this.peerInitialWindow);
    stream.remoteClosed = endStream;
    stream.headerBytes = listBytes;
    stream.lastReceivedAtMs = this.lastReadAtMs;
    this.streams.set(streamId, stream);
    this.startCall(stream, requestHead(fields));
    this.recharge(stream);
    if (!stream.remoteClosed) this.armReaper();
  }

  private startCall(stream: Http2ServerStream, head: RequestHead): void {
    const route = routeFor(head, this.routes);
    if (!('kind' in route)) return this.respondTrailersOnly(stream, route.code, route.message, route.httpStatus);
    stream.side =
      route.kind === 'unary' ? new UnaryGrpcCall(stream, route, head) : new GrpcStreamCall(stream, route, head);
    stream.side.start();
    if (stream.remoteClosed) stream.side.onData(Buffer.alloc(0), true);
  }

  private reset(streamId: number, payload: Buffer): void {
    if (payload.length !== 4 || streamId === 0)
      throw new Http2ConnectionError(Http2ErrorCode.protocolError, 'malformed RST_STREAM');
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (streamId > this.lastStreamId)
        throw new Http2ConnectionError(Http2ErrorCode.protocolError, `RST_STREAM on idle stream ${streamId}`);
      return;
    }
    this.forget(stream);
    stream.side?.onReset();
    this.spendReset();
  }

  /** Resets a stream for the client's error on it; these count against the reset budget too. */
  private resetForClient(stream: Http2ServerStream, code: number): void {
    this.resetStream(stream, code);
    this.spendReset();
  }

  private spendReset(): void {
    if (!takeReset(this.resetBudget, this.lastReadAtMs))
      throw new Http2ConnectionError(Http2ErrorCode.enhanceYourCalm, 'too many stream resets');
  }

  /** Brings a stream's share of unfinishedBytes up to date after it received or ended. */
  private recharge(stream: Http2ServerStream): void {
    const open = !stream.remoteClosed && this.streams.get(stream.id) === stream;
    const target = open ? streamStateBytes + stream.headerBytes + (stream.side?.bufferedBytes ?? 0) : 0;
    this.unfinishedBytes += target - stream.chargedBytes;
    stream.chargedBytes = target;
  }

  /** Answers "etcdserver: too many requests" on a stream whose DATA would take the connection over its bound. */
  private refuseUnfinished(stream: Http2ServerStream): void {
    const refusal = errors.tooManyRequests();
    const side = stream.side;
    this.respondTrailersOnly(stream, refusal.code, refusal.message);
    side?.onReset();
  }

  protected override forget(stream: Http2ServerStream): void {
    super.forget(stream);
    this.unfinishedBytes -= stream.chargedBytes;
    stream.chargedBytes = 0;
  }

  private armReaper(): void {
    if (this.reapTimer !== undefined || this.closed) return;
    this.reapTimer = setTimeout(this.reapCallback, Math.max(this.options.unfinishedStreamIdleMs / 2, 1));
    this.reapTimer.unref();
  }

  /**
   * Resets the streams whose request has not all arrived (a unary call the client has not ended,
   * a streaming call that sent nothing) and that received nothing for unfinishedStreamIdleMs.
   */
  private reapUnfinished(): void {
    this.reapTimer = undefined;
    if (this.closed) return;
    const nowMs = performance.now();
    let waiting = false;
    for (const stream of this.streams.values()) {
      if (stream.remoteClosed || (stream.side?.streaming === true && stream.receivedBytes > 0)) continue;
      if (nowMs - stream.lastReceivedAtMs >= this.options.unfinishedStreamIdleMs)
        this.resetStream(stream, Http2ErrorCode.cancel);
      else waiting = true;
    }
    if (waiting) this.armReaper();
  }

  /** grpc-go closes a connection whose preface and SETTINGS do not arrive in time, without a GOAWAY. */
  private prefaceOverdue(): void {
    if (this.closed) return;
    this.routes.logger.info(
      { peer: this.peer },
      'transport: http2Server.HandleStreams failed to receive the preface from client',
    );
    this.socket.destroy();
    this.shutDown();
  }

  private settings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new Http2ConnectionError(Http2ErrorCode.protocolError, 'SETTINGS on a stream');
    if (flags & FrameFlag.ack) return;
    clearTimeout(this.prefaceTimer);
    if (payload.length % 6 !== 0)
      throw new Http2ConnectionError(Http2ErrorCode.frameSizeError, 'SETTINGS not a multiple of 6 bytes');
    for (let at = 0; at < payload.length; at += 6) {
      const id = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      if (id === Setting.initialWindowSize) {
        if (value > windowBytesMax)
          throw new Http2ConnectionError(Http2ErrorCode.flowControlError, `initial window ${value}`);
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) stream.sendWindow += delta;
      } else if (id === Setting.maxFrameSize) {
        if (value < defaultFrameBytes || value > frameBytesLimitMax)
          throw new Http2ConnectionError(Http2ErrorCode.protocolError, `max frame size ${value}`);
        this.peerFrameBytes = value;
      } else if (id === Setting.headerTableSize) {
        this.headers.peerTableBytes(value);
      }
    }
    this.writer.frame(FrameType.settings, FrameFlag.ack, 0, Buffer.alloc(0));
    this.pumpBlocked();
  }

  private windowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4)
      throw new Http2ConnectionError(Http2ErrorCode.frameSizeError, 'WINDOW_UPDATE not 4 bytes');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new Http2ConnectionError(Http2ErrorCode.protocolError, 'WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > windowBytesMax)
        throw new Http2ConnectionError(Http2ErrorCode.flowControlError, 'connection send window over 2^31-1');
      this.pumpBlocked();
      return;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    if (increment === 0) return this.resetForClient(stream, Http2ErrorCode.protocolError);
    stream.sendWindow += increment;
    if (stream.sendWindow > windowBytesMax) return this.resetForClient(stream, Http2ErrorCode.flowControlError);
    if (stream.pending.length > 0) this.pump(stream);
    this.wakeIfWritable(stream);
  }

  /** ACKs a client's PING and judges it as grpc-go's keepalive enforcement does. */
  private clientPing(payload: Buffer): void {
    this.holdPingAck(payload);
    const nowMs = performance.now();
    this.pingStrikes = pingStrikesAfter(
      this.pingStrikes,
      nowMs - this.lastPingAtMs,
      this.answeredSincePing,
      this.streams.size,
      this.options.keepaliveMinTimeMs,
    );
    this.lastPingAtMs = nowMs;
    this.answeredSincePing = false;
    if (this.pingStrikes > grpcPingStrikesMax)
      throw new Http2ConnectionError(Http2ErrorCode.enhanceYourCalm, 'too_many_pings');
  }

  private armKeepalive(delayMs: number): void {
    this.keepaliveTimer = setTimeout(this.keepaliveDueCallback, Math.min(Math.max(delayMs, 1), timerDelayMsMax));
    // An idle client connection must not keep the process alive.
    this.keepaliveTimer.unref();
  }

  /**
   * grpc-go's server keepalive: PING a client that has sent nothing for keepaliveIntervalMs, and
   * close the connection when nothing arrives keepaliveTimeoutMs after that. One timer a
   * connection; reads only move lastReadAtMs, and the timer finds out when it fires.
   */
  private keepaliveDue(): void {
    this.keepaliveTimer = undefined;
    if (this.closed) return;
    const nowMs = performance.now();
    const { keepaliveIntervalMs, keepaliveTimeoutMs } = this.options;
    const pingSentAtMs = this.keepalivePingSentAtMs;
    if (pingSentAtMs !== undefined && this.lastReadAtMs <= pingSentAtMs) {
      const waitedMs = nowMs - pingSentAtMs;
      if (waitedMs >= keepaliveTimeoutMs) return this.closeUnresponsive();
      return this.armKeepalive(keepaliveTimeoutMs - waitedMs);
    }
    this.keepalivePingSentAtMs = undefined;
    const idleMs = nowMs - this.lastReadAtMs;
    if (idleMs < keepaliveIntervalMs) return this.armKeepalive(keepaliveIntervalMs - idleMs);
    this.keepalivePingSentAtMs = nowMs;
    this.writer.frame(FrameType.ping, 0, 0, keepalivePingPayload);
    this.flush();
    this.armKeepalive(keepaliveTimeoutMs);
  }

  /** grpc-go closes a connection whose keepalive PING went unanswered without a GOAWAY. */
  private closeUnresponsive(): void {
    this.routes.logger.info({ peer: this.peer }, 'closing server transport due to idleness');
    this.socket.destroy();
    this.shutDown();
  }

  /** The keepalive timer goes with the connection. */
  protected override shutDown(): void {
    clearTimeout(this.keepaliveTimer);
    clearTimeout(this.prefaceTimer);
    clearTimeout(this.reapTimer);
    super.shutDown();
  }
}

/** A DATA or HEADERS payload without its padding and, for HEADERS, its priority fields. */
function unpadded(flags: number, payload: Buffer, skipBytes: number): Buffer {
  let start = skipBytes;
  let end = payload.length;
  if (flags & FrameFlag.padded) {
    if (payload.length < 1)
      throw new Http2ConnectionError(Http2ErrorCode.protocolError, 'padded frame without a pad length');
    start += 1;
    end -= payload[0]!;
  }
  if (end < start) throw new Http2ConnectionError(Http2ErrorCode.protocolError, 'padding longer than the frame');
  return start === 0 && end === payload.length ? payload : payload.subarray(start, end);
}

/** The request's pseudo-headers and gRPC headers, picked out of its decoded fields. */
function requestHead(fields: string[]): RequestHead {
  const head: RequestHead = { method: '', path: '', contentType: '', timeout: undefined, encoding: undefined, fields };
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    switch (name) {
      case ':method':
        head.method = value;
        break;
      case ':path':
        head.path = value;
        break;
      case 'content-type':
        head.contentType = value;
        break;
      case 'grpc-timeout':
        head.timeout = value;
        break;
      case 'grpc-encoding':
        head.encoding = value;
        break;
    }
  }
  return head;
}

/** A request's route, or why it has none in grpc-go's words. */
function routeFor(
  head: RequestHead,
  routes: GrpcRoutes,
): GrpcRoute | { code: number; message: string; httpStatus?: number } {
  const contentType = head.contentType;
  const grpcType =
    contentType.startsWith('application/grpc') &&
    (contentType.length === 16 || contentType[16] === '+' || contentType[16] === ';');
  if (!grpcType)
    return {
      code: GrpcCode.internal,
      message: `transport: received unexpected content-type "${contentType}"`,
      httpStatus: 415,
    };
  if (head.method !== 'POST')
    return {
      code: GrpcCode.internal,
      message: `transport: received unexpected method "${head.method}"`,
      httpStatus: 405,
    };
  const route = routes.byPath.get(head.path);
  if (route !== undefined) return route;
  const path = head.path.startsWith('/') ? head.path.slice(1) : head.path;
  const slash = path.lastIndexOf('/');
  if (slash < 0) return { code: GrpcCode.unimplemented, message: `malformed method name: "${head.path}"` };
  const service = path.slice(0, slash);
  if (!routes.services.has(service)) return { code: GrpcCode.unimplemented, message: `unknown service ${service}` };
  return { code: GrpcCode.unimplemented, message: `unknown method ${path.slice(slash + 1)} for service ${service}` };
}
