/**
 * HTTP/2 framing (RFC 9113) as bytes: frame and setting numbers, error codes, and a writer that
 * lays outbound frames end to end in shared slabs, so a burst of answers leaves in one socket
 * write instead of one small Buffer (and one syscall) per frame. Also gRPC's message prefix,
 * which every message carries inside DATA frames, and grpc-go's rule for judging a client's PINGs.
 */
import { assert } from '../lib/assert.js';
import { grpcPingWithoutStreamIntervalMs, streamResetsBurstMax, streamResetsPerSecondMax } from '../lib/limits.js';

/** The client connection preface (RFC 9113, 3.4). */
export const http2Preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const frameHeaderBytes = 9;

export const FrameType = {
  data: 0x0,
  headers: 0x1,
  priority: 0x2,
  rstStream: 0x3,
  settings: 0x4,
  pushPromise: 0x5,
  ping: 0x6,
  goaway: 0x7,
  windowUpdate: 0x8,
  continuation: 0x9,
} as const;

export const FrameFlag = { endStream: 0x1, ack: 0x1, endHeaders: 0x4, padded: 0x8, priority: 0x20 } as const;

export const Setting = {
  headerTableSize: 0x1,
  enablePush: 0x2,
  maxConcurrentStreams: 0x3,
  initialWindowSize: 0x4,
  maxFrameSize: 0x5,
  maxHeaderListSize: 0x6,
} as const;

export const Http2ErrorCode = {
  noError: 0x0,
  protocolError: 0x1,
  internalError: 0x2,
  flowControlError: 0x3,
  streamClosed: 0x5,
  frameSizeError: 0x6,
  refusedStream: 0x7,
  cancel: 0x8,
  compressionError: 0x9,
  enhanceYourCalm: 0xb,
} as const;

/** Flow-control windows start here and may grow to windowBytesMax (RFC 9113, 6.9). */
export const defaultWindowBytes = 65_535;
export const windowBytesMax = 2 ** 31 - 1;
/** SETTINGS_MAX_FRAME_SIZE until a peer says otherwise, and its allowed range. */
export const defaultFrameBytes = 16_384;
export const frameBytesLimitMax = 2 ** 24 - 1;

/** A connection-level protocol violation: answered with GOAWAY carrying `code`. */
export class Http2ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** A connection's first slab; each next one doubles up to slabBytesMax, so idle connections stay small. */
const slabBytesMin = 4 * 1024;
const slabBytesMax = 64 * 1024;

/**
 * Outbound bytes, frame after frame. Frames are written into a slab; `take()` hands over what has
 * been written since the last take and never writes over bytes it handed out, so those can sit in
 * the socket's queue as long as they need. A payload too large to copy cheaply goes out as its
 * own Buffer, in order.
 */
export class FrameWriter {
  private slab = Buffer.allocUnsafe(slabBytesMin);
  private start = 0;
  private end = 0;
  private readonly pieces: Buffer[] = [];
  private pendingBytes = 0;

  /** Bytes written and not yet taken. */
  get bytes(): number {
    return this.pendingBytes;
  }

  /** Room for `size` contiguous bytes; returns the slab and the offset to write them at. */
  reserve(size: number): { slab: Buffer; at: number } {
    if (this.end + size > this.slab.length) {
      this.seal();
      this.slab = Buffer.allocUnsafe(Math.max(Math.min(2 * this.slab.length, slabBytesMax), size));
      this.start = 0;
      this.end = 0;
    }
    const at = this.end;
    this.end += size;
    this.pendingBytes += size;
    return { slab: this.slab, at };
  }

  /** A frame header; the caller writes `length` payload bytes right after (or appends them). */
  header(length: number, type: number, flags: number, streamId: number): void {
    const { slab, at } = this.reserve(frameHeaderBytes);
    writeFrameHeader(slab, at, length, type, flags, streamId);
  }

  /** A whole frame with its payload copied in. */
  frame(type: number, flags: number, streamId: number, payload: Uint8Array): void {
    const { slab, at } = this.reserve(frameHeaderBytes + payload.length);
    writeFrameHeader(slab, at, payload.length, type, flags, streamId);
    slab.set(payload, at + frameHeaderBytes);
  }

  /** Bytes that follow as they are, without a copy when they are large. */
  append(bytes: Buffer): void {
    if (bytes.length <= 4096) {
      const { slab, at } = this.reserve(bytes.length);
      bytes.copy(slab, at);
      return;
    }
    this.seal();
    this.pieces.push(bytes);
    this.pendingBytes += bytes.length;
  }

  /** Everything written since the last take, in order. */
  take(): Buffer[] {
    this.seal();
    const pieces = this.pieces.splice(0);
    this.pendingBytes = 0;
    return pieces;
  }

  private seal(): void {
    if (this.end === this.start) return;
    this.pieces.push(this.slab.subarray(this.start, this.end));
    this.start = this.end;
  }
}

function writeFrameHeader(
  bytes: Buffer,
  at: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  assert(length <= frameBytesLimitMax, () => `a frame payload of ${length} bytes is over ${frameBytesLimitMax}`);
  bytes[at] = length >>> 16;
  bytes[at + 1] = (length >>> 8) & 0xff;
  bytes[at + 2] = length & 0xff;
  bytes[at + 3] = type;
  bytes[at + 4] = flags;
  bytes.writeUInt32BE(streamId, at + 5);
}

/** gRPC's message prefix: a compressed flag byte and a 4-byte big-endian length. */
export const grpcFramePrefixBytes = 5;

/** Writes gRPC's 5-byte prefix (uncompressed) for a message of `messageBytes` at `offset`; returns the offset after it. */
export function writeFramePrefix(target: Uint8Array, offset: number, messageBytes: number): number {
  target[offset] = 0;
  target[offset + 1] = (messageBytes >>> 24) & 0xff;
  target[offset + 2] = (messageBytes >>> 16) & 0xff;
  target[offset + 3] = (messageBytes >>> 8) & 0xff;
  target[offset + 4] = messageBytes & 0xff;
  return offset + grpcFramePrefixBytes;
}

/**
 * A client PING judged as grpc-go's server judges it (keepalive.EnforcementPolicy with
 * PermitWithoutStream false, as etcd configures it); returns the connection's strike count after
 * it. A PING that follows a HEADERS or DATA frame from the server clears the count and is not
 * judged, which keeps safe the PINGs grpc-go clients send on each answer they read (their BDP
 * estimator). Otherwise a PING sooner than minTimeMs after the previous one is a strike, or
 * sooner than two hours when no stream is open. The caller ends the connection once the count
 * exceeds grpcPingStrikesMax.
 */
export function pingStrikesAfter(
  strikes: number,
  sinceLastPingMs: number,
  answeredSinceLastPing: boolean,
  openStreams: number,
  minTimeMs: number,
): number {
  if (answeredSinceLastPing) return 0;
  const allowedMs = openStreams > 0 ? minTimeMs : grpcPingWithoutStreamIntervalMs;
  return sinceLastPingMs < allowedMs ? strikes + 1 : strikes;
}

/** A connection's allowance of stream resets: a token bucket as nghttp2 keeps one. */
export interface ResetBudget {
  tokens: number;
  /** When the tokens were last refilled (ms on any monotonic clock). */
  refilledAtMs: number;
}

/** A full bucket of streamResetsBurstMax resets. */
export function fullResetBudget(nowMs: number): ResetBudget {
  return { tokens: streamResetsBurstMax, refilledAtMs: nowMs };
}

/**
 * Takes one reset from the budget, refilled at streamResetsPerSecondMax up to the burst first;
 * returns false when none is left (the caller ends the connection with ENHANCE_YOUR_CALM).
 */
export function takeReset(budget: ResetBudget, nowMs: number): boolean {
  const refill = ((nowMs - budget.refilledAtMs) * streamResetsPerSecondMax) / 1_000;
  if (refill > 0) {
    budget.tokens = Math.min(streamResetsBurstMax, budget.tokens + refill);
    budget.refilledAtMs = nowMs;
  }
  if (budget.tokens < 1) return false;
  budget.tokens -= 1;
  return true;
}
