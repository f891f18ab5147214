/**
 * The answering half of a client connection: a stream's HTTP/2 state, and everything that goes
 * out on the socket. Answers are laid end to end in shared slabs (FrameWriter) and leave in one
 * socket write per turn of the event loop; DATA waits for the connection's and the stream's
 * send windows, and streaming calls wait while the socket's queue is congested. A PING's ACK
 * rides along with the next answer. server.ts's Http2Connection extends this class with the
 * reading half, so both work on one object and a frame costs no extra hop.
 */
import { verifiedCommonName } from '../tls.js';
import type { Duplex } from 'node:stream';
import {
  FrameFlag,
  FrameType,
  FrameWriter,
  defaultFrameBytes,
  defaultWindowBytes,
  grpcFramePrefixBytes,
  writeFramePrefix,
} from '../../../src/http2/frames.js';
import { clientQueuedBytesMax, clientQueuedBytesReadingMax } from '../../../src/lib/limits.js';
import { GrpcHeaderEncoder } from '../grpc/headers.js';
import type { CallSide, GrpcRoutes } from '../grpc/calls.js';
import { streamReceiveWindowBytes } from './server-options.js';

/**
 * A PING's ACK waits this long for an answer to ride along with. grpc-go clients send a PING on
 * each response they read (their BDP estimator), so with one call in flight every answer drew
 * a second socket write, and the client a second wake-up, just for the ACK.
 */
const pingAckDelayMs = 5;
/** Held ACKs beyond this many leave at once. */
const pingAcksHeldMax = 16;
/** After a GOAWAY, how long the client gets to read it before the socket is destroyed. */
const goAwayLingerMs = 1_000;

/** One outbound item a stream could not send yet for want of flow-control window. */
type Outbound =
  { kind: 'data'; bytes: Buffer; done?: () => void } | { kind: 'trailers'; code: number; message: string };

/** A stream's HTTP/2 state; its call (unary or streaming) lives in `side`. */
export class Http2ServerStream {
  sendWindow: number;
  receiveWindow = streamReceiveWindowBytes;
  receiveUnacked = 0;
  remoteClosed = false;
  localClosed = false;
  headersSent = false;
  /** Bytes of its header list, held in the call's head while the stream lives. */
  headerBytes = 0;
  /** DATA bytes received so far. */
  receivedBytes = 0;
  /** When its last frame arrived (performance.now()), for reaping streams left unfinished. */
  lastReceivedAtMs = 0;
  /** What this stream counts toward its connection's unfinished request bytes. */
  chargedBytes = 0;
  readonly pending: Outbound[] = [];
  side: CallSide | undefined;

  constructor(
    readonly id: number,
    readonly connection: Http2AnswerWriter,
    sendWindow: number,
  ) {
    this.sendWindow = sendWindow;
  }
}

/** The socket, the streams and the send side of one client connection. */
export abstract class Http2AnswerWriter {
  readonly peer: string;
  protected readonly writer = new FrameWriter();
  protected readonly headers = new GrpcHeaderEncoder();
  protected readonly streams = new Map<number, Http2ServerStream>();
  /** Streams with data waiting for window, and streaming calls waiting for 'drain'. */
  protected readonly blocked = new Set<Http2ServerStream>();
  protected lastStreamId = 0;
  protected peerFrameBytes = defaultFrameBytes;
  protected sendWindow = defaultWindowBytes;
  private flushScheduled = false;
  /** PING payloads whose ACK waits for the next write (pingAckDelayMs at most). */
  private readonly pingAcks: Buffer[] = [];
  private pingAckTimer: NodeJS.Timeout | undefined;
  private afterFlush: Array<() => void> = [];
  congested = false;
  protected closed = false;
  /** Whether HEADERS or DATA went out since the client's last PING: grpc-go then forgives it. */
  protected answeredSincePing = false;

  constructor(
    protected readonly socket: Duplex & { remoteAddress?: string; remotePort?: number },
    readonly routes: GrpcRoutes,
  ) {
    this.peer = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
  }

  /** The common name of the client's verified TLS certificate; undefined without one. */
  clientCommonName(): string | undefined {
    return verifiedCommonName(this.socket);
  }

  /** A whole unary answer: headers, one message and trailers, in one go when the windows allow. */
  respondUnary(stream: Http2ServerStream, message: Uint8Array): void {
    if (stream.localClosed || this.closed) return;
    const dataBytes = grpcFramePrefixBytes + message.length;
    if (
      stream.headersSent ||
      stream.pending.length > 0 ||
      dataBytes > Math.min(this.sendWindow, stream.sendWindow, this.peerFrameBytes)
    ) {
      const framed = Buffer.allocUnsafe(dataBytes);
      framed.set(message, writeFramePrefix(framed, 0, message.length));
      this.sendHeaders(stream);
      this.sendData(stream, framed);
      this.sendTrailers(stream, 0, '');
      return;
    }
    // Blocks are encoded only when they are written: the client's HPACK table follows wire order.
    this.writer.frame(FrameType.headers, FrameFlag.endHeaders, stream.id, this.headers.responseHeaders());
    this.writer.header(dataBytes, FrameType.data, 0, stream.id);
    const { slab, at } = this.writer.reserve(dataBytes);
    slab.set(message, writeFramePrefix(slab, at, message.length));
    this.writer.frame(
      FrameType.headers,
      FrameFlag.endHeaders | FrameFlag.endStream,
      stream.id,
      this.headers.okTrailers(),
    );
    this.sendWindow -= dataBytes;
    stream.sendWindow -= dataBytes;
    stream.headersSent = true;
    this.answeredSincePing = true;
    this.endLocal(stream);
    this.scheduleFlush();
  }

  /** Response headers, once per stream, ahead of its first message. */
  sendHeaders(stream: Http2ServerStream): void {
    if (stream.headersSent || stream.localClosed || this.closed) return;
    stream.headersSent = true;
    this.answeredSincePing = true;
    this.writer.frame(FrameType.headers, FrameFlag.endHeaders, stream.id, this.headers.responseHeaders());
    this.scheduleFlush();
  }

  /** Prefixed message bytes; `done` runs once they have been handed to the socket. */
  sendData(stream: Http2ServerStream, bytes: Buffer, done?: () => void): void {
    if (stream.localClosed || this.closed) return;
    stream.pending.push({ kind: 'data', bytes, done });
    this.pump(stream);
  }

  /** Ends the stream with trailers carrying a status, after everything queued before them. */
  sendTrailers(stream: Http2ServerStream, code: number, message: string): void {
    if (stream.localClosed || this.closed) return;
    stream.pending.push({ kind: 'trailers', code, message });
    this.pump(stream);
  }

  /** A status with no message before it: one HEADERS frame that ends the stream. */
  respondTrailersOnly(stream: Http2ServerStream, code: number, message: string, httpStatus = 200): void {
    if (stream.localClosed || this.closed) return;
    if (stream.headersSent) return this.sendTrailers(stream, code, message);
    stream.headersSent = true;
    this.answeredSincePing = true;
    this.writer.frame(
      FrameType.headers,
      FrameFlag.endHeaders | FrameFlag.endStream,
      stream.id,
      this.headers.trailersOnly(code, message, httpStatus),
    );
    this.endLocal(stream);
    this.scheduleFlush();
  }

  /** Whether a streaming call may write more now without queueing behind flow control. */
  writable(stream: Http2ServerStream): boolean {
    return stream.pending.length === 0 && !this.congested && !this.closed;
  }

  /** Asks to hear (through side.onWritable) when `stream` can take writes again. */
  waitWritable(stream: Http2ServerStream): void {
    this.blocked.add(stream);
  }

  resetStream(stream: Http2ServerStream, code: number): void {
    if (this.closed) return;
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(code, 0);
    this.writer.frame(FrameType.rstStream, 0, stream.id, payload);
    this.forget(stream);
    stream.side?.onReset();
    this.scheduleFlush();
  }

  protected pump(stream: Http2ServerStream): void {
    while (stream.pending.length > 0 && !this.closed) {
      const item = stream.pending[0]!;
      if (item.kind === 'trailers') {
        stream.pending.shift();
        this.writer.frame(
          FrameType.headers,
          FrameFlag.endHeaders | FrameFlag.endStream,
          stream.id,
          this.headers.statusTrailers(item.code, item.message),
        );
        this.answeredSincePing = true;
        this.endLocal(stream);
        break;
      }
      if (this.congested && stream.side?.streaming === true) break;
      const size = Math.min(item.bytes.length, this.sendWindow, stream.sendWindow, this.peerFrameBytes);
      if (size <= 0) break;
      this.answeredSincePing = true;
      this.writer.header(size, FrameType.data, 0, stream.id);
      this.writer.append(item.bytes.subarray(0, size));
      this.sendWindow -= size;
      stream.sendWindow -= size;
      if (size < item.bytes.length) {
        item.bytes = item.bytes.subarray(size);
        continue;
      }
      stream.pending.shift();
      if (item.done !== undefined) this.afterFlush.push(item.done);
    }
    if (stream.pending.length > 0) this.blocked.add(stream);
    this.scheduleFlush();
  }

  protected pumpBlocked(): void {
    for (const stream of this.blocked) {
      if (stream.pending.length > 0) this.pump(stream);
      this.wakeIfWritable(stream);
    }
  }

  /** Tells a blocked stream's call it may write again once its queue has gone out. */
  protected wakeIfWritable(stream: Http2ServerStream): void {
    if (stream.pending.length > 0 || this.congested || !this.blocked.delete(stream)) return;
    stream.side?.onWritable();
  }

  /** Our side is done; a client still sending is told to stop (RFC 9113, 8.1). */
  private endLocal(stream: Http2ServerStream): void {
    stream.localClosed = true;
    stream.pending.length = 0;
    if (!stream.remoteClosed) {
      const payload = Buffer.alloc(4);
      this.writer.frame(FrameType.rstStream, 0, stream.id, payload);
      stream.remoteClosed = true;
    }
    this.retireIfDone(stream);
  }

  protected retireIfDone(stream: Http2ServerStream): void {
    if (stream.localClosed && stream.remoteClosed) this.forget(stream);
  }

  protected forget(stream: Http2ServerStream): void {
    stream.localClosed = true;
    stream.remoteClosed = true;
    stream.pending.length = 0;
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
  }

  protected writeWindowUpdate(streamId: number, increment: number): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(increment, 0);
    this.writer.frame(FrameType.windowUpdate, 0, streamId, payload);
  }

  protected holdPingAck(payload: Buffer): void {
    this.pingAcks.push(Buffer.from(payload));
    if (this.pingAcks.length > pingAcksHeldMax) return this.writePingAcks();
    this.pingAckTimer ??= setTimeout(() => {
      this.pingAckTimer = undefined;
      this.writePingAcks();
      this.flush();
    }, pingAckDelayMs);
  }

  private writePingAcks(): void {
    for (const payload of this.pingAcks) this.writer.frame(FrameType.ping, FrameFlag.ack, 0, payload);
    this.pingAcks.length = 0;
    clearTimeout(this.pingAckTimer);
    this.pingAckTimer = undefined;
  }

  protected scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  protected flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.writer.bytes === 0) return;
    if (this.pingAcks.length > 0) this.writePingAcks();
    const pieces = this.writer.take();
    const callbacks = this.afterFlush;
    this.afterFlush = [];
    const done = callbacks.length === 0 ? undefined : () => callbacks.forEach((callback) => callback());
    if (pieces.length === 1) this.socket.write(pieces[0], done);
    else {
      this.socket.cork();
      pieces.forEach((piece, index) => this.socket.write(piece, index === pieces.length - 1 ? done : undefined));
      this.socket.uncork();
    }
    this.judgeQueue();
  }

  /**
   * A client that does not read its answers must not make us queue them without end: above
   * clientQueuedBytesReadingMax we stop reading its frames (so it cannot ask for more, not even
   * acknowledgements) until the queue drains; above clientQueuedBytesMax it is closed.
   */
  private judgeQueue(): void {
    const queuedBytes = this.socket.writableLength;
    if (queuedBytes > clientQueuedBytesMax) return this.abandon(queuedBytes);
    if (queuedBytes <= clientQueuedBytesReadingMax || this.congested) return;
    this.congested = true;
    this.socket.pause();
  }

  protected drained(): void {
    if (!this.congested || this.socket.writableLength > clientQueuedBytesReadingMax) return;
    this.congested = false;
    this.socket.resume();
    this.pumpBlocked();
  }

  /** Closes a connection whose client reads nothing of what is queued for it. */
  private abandon(queuedBytes: number): void {
    this.routes.logger.warn(
      { peer: this.peer, queuedBytes, limitBytes: clientQueuedBytesMax },
      'closed a client connection that does not read its responses',
    );
    this.socket.destroy();
    this.shutDown();
  }

  /** A connection error: GOAWAY with the last stream we saw, then the connection ends. */
  goAway(code: number, reason: string): void {
    if (this.closed) return;
    // ACKs held for a later write go first: grpc-go ACKs the PING that earns GOAWAY too_many_pings.
    if (this.pingAcks.length > 0) this.writePingAcks();
    const debug = Buffer.from(reason, 'utf8');
    const payload = Buffer.allocUnsafe(8 + debug.length);
    payload.writeUInt32BE(this.lastStreamId, 0);
    payload.writeUInt32BE(code, 4);
    debug.copy(payload, 8);
    this.writer.frame(FrameType.goaway, 0, 0, payload);
    this.flush();
    if (this.closed) return;
    this.socket.end();
    // A client that never closes its side is not waited for.
    setTimeout(() => this.socket.destroy(), goAwayLingerMs).unref();
    this.routes.logger.warn(
      { peer: this.peer, code, reason },
      'closed a client connection after an HTTP/2 protocol error',
    );
    this.shutDown();
  }

  protected shutDown(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.pingAckTimer);
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.blocked.clear();
    for (const stream of streams) stream.side?.onReset();
  }
}
