/**
 * The client side of one HTTP/2 connection (RFC 9113) over a socket the caller connected, built on
 * src/http2's frames and HPACK decoder: node:http2 costs a one-shot command more start-up time
 * than its whole call. It does what a gRPC client's unary calls need: requests with a body,
 * response headers, data and trailers, flow control for what it sends (it opens its own receive
 * windows wide at once), PING both ways, RST_STREAM and GOAWAY.
 */
import type { Socket } from 'node:net';
import {
  FrameFlag,
  FrameType,
  FrameWriter,
  Http2ErrorCode,
  Setting,
  defaultFrameBytes,
  defaultWindowBytes,
  frameHeaderBytes,
  http2Preface,
  windowBytesMax,
} from '../src/http2/frames.js';
import { HeaderDecoder } from '../src/http2/hpack.js';

/** What one request's stream reports. */
export interface StreamEvents {
  /** The response's header fields (names lower case), then its trailers the same way. */
  headers(fields: ReadonlyMap<string, string>): void;
  data(chunk: Buffer): void;
  /** The stream is over: ended by the server (`resetCode` undefined), reset, or the connection lost. */
  close(resetCode: number | undefined): void;
}

interface OpenStream {
  readonly events: StreamEvents;
  /** Body bytes not yet sent; sent as the send windows allow. */
  pending: Buffer;
  sendWindowBytes: number;
}

/** A header block is small here (method, path, a token, a timeout); one HEADERS frame holds it. */
const headerBlockBytesMax = defaultFrameBytes;

/** Appends an HPACK integer with a `prefixBits`-bit prefix whose high bits are `flags` (RFC 7541, 5.1). */
function pushInteger(out: number[], value: number, prefixBits: number, flags: number): void {
  const limit = (1 << prefixBits) - 1;
  if (value < limit) {
    out.push(flags | value);
    return;
  }
  out.push(flags | limit);
  let rest = value - limit;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

function pushString(out: number[], text: string): void {
  const bytes = Buffer.from(text, 'latin1');
  pushInteger(out, bytes.length, 7, 0);
  for (const byte of bytes) out.push(byte);
}

/** A header block of literals that enter no table (RFC 7541, 6.2.2): nothing to keep in step. */
export function encodeHeaderBlock(fields: Readonly<Record<string, string>>): Buffer {
  const out: number[] = [];
  for (const [name, value] of Object.entries(fields)) {
    out.push(0x00);
    pushString(out, name);
    pushString(out, value);
  }
  return Buffer.from(out);
}

/** One HTTP/2 connection of a client; ended for good by close() or when the socket ends. */
export class Http2ClientConnection {
  private readonly writer = new FrameWriter();
  private readonly decoder = new HeaderDecoder();
  private readonly streams = new Map<number, OpenStream>();
  private readonly pings: Array<() => void> = [];
  private nextStreamId = 1;
  private input: Buffer = Buffer.alloc(0);
  /** HEADERS awaiting their CONTINUATION frames: the stream and the block so far. */
  private headerBlock: { streamId: number; endStream: boolean; parts: Buffer[] } | undefined;
  private connectionSendWindowBytes = defaultWindowBytes;
  private peerInitialWindowBytes = defaultWindowBytes;
  private peerFrameBytes = defaultFrameBytes;
  /** Set once the server sent GOAWAY, the socket ended or close() was called: no new streams. */
  private ended = false;
  private readonly onEnd = new Set<() => void>();
  /**
   * Settles once the server's first SETTINGS frame arrives, or fails if the connection ends
   * before: only then is the server speaking HTTP/2 (a TLS server that refuses the client's
   * certificate closes the connection after a handshake the client saw succeed).
   */
  readonly ready: Promise<void>;
  private settled: { resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor(private readonly socket: Socket) {
    this.ready = new Promise((resolve, reject) => (this.settled = { resolve, reject }));
    // Nobody may be waiting when it fails (the connection was in use already); that is no error.
    this.ready.catch(() => undefined);
    this.writer.append(http2Preface);
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(Setting.enablePush, 0);
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(Setting.initialWindowSize, 6);
    settings.writeUInt32BE(windowBytesMax, 8);
    this.writer.frame(FrameType.settings, 0, 0, settings);
    this.windowUpdate(0, windowBytesMax - defaultWindowBytes);
    this.flush();
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.lost());
  }

  /** Whether a new request may go out on this connection. */
  get usable(): boolean {
    return !this.ended && !this.socket.destroyed;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Runs `callback` once the connection can take no more requests. */
  whenEnded(callback: () => void): void {
    if (this.ended) callback();
    else this.onEnd.add(callback);
  }

  /** Opens a stream with `headers` and sends `body` as its data; returns the stream's id. */
  request(headers: Readonly<Record<string, string>>, body: Uint8Array, events: StreamEvents): number {
    if (!this.usable) throw new Error('expected an open connection for a new request');
    const streamId = this.nextStreamId;
    this.nextStreamId += 2;
    const block = encodeHeaderBlock(headers);
    if (block.length > headerBlockBytesMax)
      throw new Error(`expected request headers of at most ${headerBlockBytesMax} bytes, saw ${block.length}`);
    this.writer.frame(FrameType.headers, FrameFlag.endHeaders, streamId, block);
    const stream: OpenStream = {
      events,
      pending: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
      sendWindowBytes: this.peerInitialWindowBytes,
    };
    this.streams.set(streamId, stream);
    this.sendPending(streamId, stream);
    this.flush();
    return streamId;
  }

  /** Resets a stream (RST_STREAM CANCEL); it closes with that code. */
  cancel(streamId: number): void {
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(Http2ErrorCode.cancel, 0);
    this.writer.frame(FrameType.rstStream, 0, streamId, payload);
    this.flush();
    this.closeStream(streamId, Http2ErrorCode.cancel);
  }

  /** Sends a PING; `answered` runs when its ACK comes back. */
  ping(answered: () => void): void {
    this.pings.push(answered);
    this.writer.frame(FrameType.ping, 0, 0, Buffer.alloc(8));
    this.flush();
  }

  /** Ends the connection: open streams close as lost. */
  close(): void {
    this.socket.destroy();
    this.lost();
  }

  private flush(): void {
    if (this.socket.destroyed) return;
    for (const piece of this.writer.take()) this.socket.write(piece);
  }

  private windowUpdate(streamId: number, increment: number): void {
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(increment, 0);
    this.writer.frame(FrameType.windowUpdate, 0, streamId, payload);
  }

  /** Sends as much of the stream's body as both send windows allow; END_STREAM with the last of it. */
  private sendPending(streamId: number, stream: OpenStream): void {
    for (;;) {
      const room = Math.min(this.peerFrameBytes, stream.sendWindowBytes, this.connectionSendWindowBytes);
      if (stream.pending.length > 0 && room <= 0) return;
      const chunk = stream.pending.subarray(0, room);
      stream.pending = stream.pending.subarray(chunk.length);
      stream.sendWindowBytes -= chunk.length;
      this.connectionSendWindowBytes -= chunk.length;
      const last = stream.pending.length === 0;
      this.writer.header(chunk.length, FrameType.data, last ? FrameFlag.endStream : 0, streamId);
      this.writer.append(Buffer.from(chunk));
      if (last) return;
    }
  }

  private lost(): void {
    this.markEnded();
    for (const streamId of [...this.streams.keys()]) this.closeStream(streamId, Http2ErrorCode.internalError);
  }

  private markEnded(): void {
    if (this.ended) return;
    this.ended = true;
    this.settled?.reject(new Error('the connection ended before the server sent its settings'));
    this.settled = undefined;
    for (const callback of this.onEnd) callback();
    this.onEnd.clear();
  }

  private closeStream(streamId: number, resetCode: number | undefined): void {
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    this.streams.delete(streamId);
    stream.events.close(resetCode);
  }

  private receive(chunk: Buffer): void {
    this.input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    try {
      while (this.input.length >= frameHeaderBytes) {
        const length = this.input.readUIntBE(0, 3);
        if (this.input.length < frameHeaderBytes + length) break;
        const type = this.input[3] as number;
        const flags = this.input[4] as number;
        const streamId = this.input.readUInt32BE(5) & 0x7fff_ffff;
        const payload = this.input.subarray(frameHeaderBytes, frameHeaderBytes + length);
        this.input = this.input.subarray(frameHeaderBytes + length);
        this.frame(type, flags, streamId, payload);
      }
    } catch {
      // A server that breaks the protocol (or HPACK) loses the connection, as grpc's clients do.
      this.close();
    }
    this.flush();
  }

  private frame(type: number, flags: number, streamId: number, payload: Buffer): void {
    switch (type) {
      case FrameType.data:
        return this.dataFrame(flags, streamId, payload);
      case FrameType.headers:
        return this.headersFrame(flags, streamId, payload);
      case FrameType.continuation:
        return this.continuationFrame(flags, streamId, payload);
      case FrameType.rstStream:
        return this.closeStream(streamId, payload.readUInt32BE(0));
      case FrameType.settings:
        return this.settingsFrame(flags, payload);
      case FrameType.ping:
        return this.pingFrame(flags, payload);
      case FrameType.goaway:
        return this.markEnded();
      case FrameType.windowUpdate:
        return this.windowUpdateFrame(streamId, payload);
      default:
        return; // PRIORITY, PUSH_PROMISE (refused by our settings) and unknown types carry nothing for us.
    }
  }

  /** A frame's payload without its padding (and without the priority fields of a HEADERS frame). */
  private static unpadded(flags: number, payload: Buffer, priorityBytes: number): Buffer {
    const padBytes = flags & FrameFlag.padded ? (payload[0] as number) : 0;
    const start = (flags & FrameFlag.padded ? 1 : 0) + priorityBytes;
    if (start + padBytes > payload.length) throw new Error('padding longer than the frame');
    return payload.subarray(start, payload.length - padBytes);
  }

  private dataFrame(flags: number, streamId: number, payload: Buffer): void {
    const stream = this.streams.get(streamId);
    const data = Http2ClientConnection.unpadded(flags, payload, 0);
    if (stream !== undefined && data.length > 0) stream.events.data(data);
    if (flags & FrameFlag.endStream) this.closeStream(streamId, undefined);
  }

  private headersFrame(flags: number, streamId: number, payload: Buffer): void {
    const block = Http2ClientConnection.unpadded(flags, payload, flags & FrameFlag.priority ? 5 : 0);
    this.headerBlock = { streamId, endStream: (flags & FrameFlag.endStream) !== 0, parts: [block] };
    if (flags & FrameFlag.endHeaders) this.headerBlockDone();
  }

  private continuationFrame(flags: number, streamId: number, payload: Buffer): void {
    if (this.headerBlock?.streamId !== streamId) throw new Error('CONTINUATION without its HEADERS');
    this.headerBlock.parts.push(payload);
    if (flags & FrameFlag.endHeaders) this.headerBlockDone();
  }

  private headerBlockDone(): void {
    const block = this.headerBlock;
    if (block === undefined) return;
    this.headerBlock = undefined;
    // The decoder reads every block, so its dynamic table stays in step with the server's.
    const list: string[] = [];
    this.decoder.decode(Buffer.concat(block.parts), list);
    const fields = new Map<string, string>();
    for (let index = 0; index + 1 < list.length; index += 2) fields.set(list[index] ?? '', list[index + 1] ?? '');
    this.streams.get(block.streamId)?.events.headers(fields);
    if (block.endStream) this.closeStream(block.streamId, undefined);
  }

  private settingsFrame(flags: number, payload: Buffer): void {
    if (flags & FrameFlag.ack) return;
    for (let at = 0; at + 6 <= payload.length; at += 6) {
      const id = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      if (id === Setting.maxFrameSize) this.peerFrameBytes = value;
      if (id === Setting.initialWindowSize) {
        for (const stream of this.streams.values()) stream.sendWindowBytes += value - this.peerInitialWindowBytes;
        this.peerInitialWindowBytes = value;
      }
    }
    this.writer.frame(FrameType.settings, FrameFlag.ack, 0, Buffer.alloc(0));
    this.settled?.resolve();
    this.settled = undefined;
    this.resume();
  }

  private pingFrame(flags: number, payload: Buffer): void {
    if (flags & FrameFlag.ack) this.pings.shift()?.();
    else this.writer.frame(FrameType.ping, FrameFlag.ack, 0, payload);
  }

  private windowUpdateFrame(streamId: number, payload: Buffer): void {
    const increment = payload.readUInt32BE(0) & 0x7fff_ffff;
    if (streamId === 0) this.connectionSendWindowBytes += increment;
    else {
      const stream = this.streams.get(streamId);
      if (stream !== undefined) stream.sendWindowBytes += increment;
    }
    this.resume();
  }

  /** Sends what the windows now allow of every stream still holding body bytes. */
  private resume(): void {
    for (const [streamId, stream] of this.streams) if (stream.pending.length > 0) this.sendPending(streamId, stream);
  }
}
