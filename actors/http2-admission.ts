/**
 * Between the client port's HTTP/2 preface and Node's HTTP/2 server: etcdctl 3.4 sends
 * ':authority: http://host:port' on the connections it opens per endpoint (endpoint status,
 * hashkv, move-leader), which Go's server accepts and nghttp2 refuses. The first request of each
 * connection is read before Node's server sees the connection:
 * - an acceptable authority (every other client) hands the socket to Node's server untouched, so
 *   the data path stays native;
 * - a refused one puts a small frame rewriter in between for that connection only, which
 *   replaces the refused octets of :authority with '-' (same length, so HPACK tables agree).
 *
 * grpc-go sends its first request only after the server's SETTINGS, so this sends an empty
 * SETTINGS frame first and removes the client's acknowledgement of it before Node's server,
 * which sends its own SETTINGS, reads the connection.
 */
import { Duplex } from 'node:stream';
import type * as net from 'node:net';
import { DynamicTableMirror, HpackError, acceptableAuthority, rewriteHeaderBlock } from '../src/lib/hpack.js';

/** The client connection preface is this long (RFC 9113, 3.4). */
const prefaceBytes = 24;
const frameHeaderBytes = 9;
/** The smallest SETTINGS_MAX_FRAME_SIZE a server can have; rewritten frames stay within it. */
const framePayloadBytesMax = 16_384;
/** Past this many bytes before a first request, the connection goes to Node's server as it is. */
const admissionBytesMax = 1 << 20;
/** A connection that acknowledges SETTINGS but sends no request this soon goes to Node's server. */
const firstRequestWaitMs = 200;
/** A client that does not acknowledge SETTINGS this soon is closed (RFC 9113's SETTINGS_TIMEOUT). */
const settingsAckWaitMs = 10_000;

const frameType = { headers: 0x1, settings: 0x4, continuation: 0x9 } as const;
const flag = { ack: 0x1, endStream: 0x1, endHeaders: 0x4, padded: 0x8, priority: 0x20 } as const;
const emptySettingsFrame = Buffer.from([0, 0, 0, frameType.settings, 0, 0, 0, 0, 0]);

export type Http2Admission = { kind: 'native' } | { kind: 'rewrite'; connection: Duplex } | { kind: 'closed' };

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** The frame's own bytes, header included. */
  bytes: Buffer;
}

/** The complete frame at `at`, or undefined while its bytes have not all arrived. */
function frameAt(bytes: Buffer, at: number): Frame | undefined {
  if (bytes.length - at < frameHeaderBytes) return undefined;
  const end = at + frameHeaderBytes + bytes.readUIntBE(at, 3);
  if (end > bytes.length) return undefined;
  return {
    type: bytes[at + 3]!,
    flags: bytes[at + 4]!,
    streamId: bytes.readUInt32BE(at + 5) & 0x7fffffff,
    payload: bytes.subarray(at + frameHeaderBytes, end),
    bytes: bytes.subarray(at, end),
  };
}

/** A HEADERS frame's header block fragment and priority fields, without its padding. */
function headersFragment(frame: Frame): { fragment: Buffer; priority: Buffer } | undefined {
  let at = 0;
  let padding = 0;
  if (frame.flags & flag.padded) {
    if (frame.payload.length < 1) return undefined;
    padding = frame.payload[0]!;
    at = 1;
  }
  const priorityBytes = frame.flags & flag.priority ? 5 : 0;
  const end = frame.payload.length - padding;
  if (at + priorityBytes > end) return undefined;
  return { priority: frame.payload.subarray(at, at + priorityBytes), fragment: frame.payload.subarray(at + priorityBytes, end) };
}

function frameBytes(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(frameHeaderBytes);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** A HEADERS frame, then CONTINUATION frames if the block does not fit in one. */
function headersFrames(first: Frame, priority: Buffer, block: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const keptFlags = first.flags & (flag.endStream | flag.priority);
  let at = Math.min(block.length, framePayloadBytesMax - priority.length);
  out.push(frameBytes(frameType.headers, keptFlags | (at === block.length ? flag.endHeaders : 0), first.streamId, Buffer.concat([priority, block.subarray(0, at)])));
  while (at < block.length) {
    const end = Math.min(block.length, at + framePayloadBytesMax);
    out.push(frameBytes(frameType.continuation, end === block.length ? flag.endHeaders : 0, first.streamId, block.subarray(at, end)));
    at = end;
  }
  return out;
}

/**
 * Collects header blocks from a client's frames. `take` returns the frames to pass on, with the
 * header blocks handed to `onBlock` once complete.
 */
class HeaderBlockCollector {
  private pending: { frames: Frame[]; fragments: Buffer[]; priority: Buffer } | undefined;

  constructor(private readonly onBlock: (first: Frame, priority: Buffer, block: Buffer, original: Frame[]) => Buffer[]) {}

  take(frame: Frame): Buffer[] {
    if (this.pending !== undefined) {
      if (frame.type !== frameType.continuation || frame.streamId !== this.pending.frames[0]!.streamId) {
        // Not a valid continuation: pass everything on for Node's server to refuse.
        const original = this.pending.frames.map((pending) => pending.bytes);
        this.pending = undefined;
        return [...original, frame.bytes];
      }
      this.pending.frames.push(frame);
      this.pending.fragments.push(frame.payload);
      return frame.flags & flag.endHeaders ? this.complete() : [];
    }
    if (frame.type !== frameType.headers) return [frame.bytes];
    const parts = headersFragment(frame);
    if (parts === undefined) return [frame.bytes];
    this.pending = { frames: [frame], fragments: [parts.fragment], priority: parts.priority };
    return frame.flags & flag.endHeaders ? this.complete() : [];
  }

  private complete(): Buffer[] {
    const { frames, fragments, priority } = this.pending!;
    this.pending = undefined;
    return this.onBlock(frames[0]!, priority, Buffer.concat(fragments), frames);
  }
}

/** A block with its refused :authority values rewritten: undefined if none were, 'malformed' on bad HPACK. */
function rewriteAuthority(block: Buffer, table: DynamicTableMirror): Buffer | undefined | 'malformed' {
  try {
    return rewriteHeaderBlock(block, table, acceptableAuthority);
  } catch (error) {
    if (error instanceof HpackError) return 'malformed';
    throw error;
  }
}

/** Rewrites refused :authority values in every header block of one connection's client frames. */
class AuthorityRewriter {
  private readonly table = new DynamicTableMirror();
  /** After malformed HPACK, frames pass untouched and Node's server reports the error. */
  private passThrough = false;
  private readonly collector = new HeaderBlockCollector((first, priority, block, original) => this.rewrite(first, priority, block, original));

  take(frame: Frame): Buffer[] {
    return this.passThrough ? [frame.bytes] : this.collector.take(frame);
  }

  private rewrite(first: Frame, priority: Buffer, block: Buffer, original: Frame[]): Buffer[] {
    const rewritten = rewriteAuthority(block, this.table);
    this.passThrough = rewritten === 'malformed';
    return rewritten instanceof Buffer ? headersFrames(first, priority, rewritten) : original.map((frame) => frame.bytes);
  }
}

/** The connection as Node's HTTP/2 server sees it when its client's requests need rewriting. */
class RewritingConnection extends Duplex {
  private unparsed: Buffer = Buffer.alloc(0);
  private readonly rewriter = new AuthorityRewriter();

  constructor(private readonly socket: net.Socket, received: Buffer) {
    super();
    this.push(received.subarray(0, prefaceBytes));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (error) => this.destroy(error));
    socket.on('close', () => this.destroy());
    this.receive(received.subarray(prefaceBytes));
  }

  private receive(chunk: Buffer): void {
    this.unparsed = this.unparsed.length === 0 ? chunk : Buffer.concat([this.unparsed, chunk]);
    const out: Buffer[] = [];
    let at = 0;
    for (let frame = frameAt(this.unparsed, at); frame !== undefined; frame = frameAt(this.unparsed, at)) {
      out.push(...this.rewriter.take(frame));
      at += frame.bytes.length;
    }
    // Frames still referenced by a pending header block keep their own views of the old buffer.
    this.unparsed = this.unparsed.subarray(at);
    if (out.length > 0 && !this.push(Buffer.concat(out))) this.socket.pause();
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.socket.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy(error ?? undefined);
    callback(error);
  }
}

/**
 * Reads a connection (its preface already checked and put back) up to its first request and
 * decides how Node's HTTP/2 server gets it. Leaves the socket paused with the bytes read put back,
 * minus the acknowledgement of this module's SETTINGS frame.
 */
export function admitHttp2(socket: net.Socket): Promise<Http2Admission> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    let parsedTo = prefaceBytes;
    let acknowledged = false;
    let firstBlock: Buffer | undefined;
    let quietTimer: NodeJS.Timeout | undefined;
    const collector = new HeaderBlockCollector((_first, _priority, block) => {
      firstBlock = block;
      return [];
    });
    const finish = (decision: 'native' | 'rewrite' | 'closed') => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      clearTimeout(ackTimer);
      clearTimeout(quietTimer);
      socket.pause();
      if (decision === 'closed') {
        socket.destroy();
        resolve({ kind: 'closed' });
      } else if (decision === 'rewrite') resolve({ kind: 'rewrite', connection: new RewritingConnection(socket, received) });
      else {
        socket.unshift(received);
        resolve({ kind: 'native' });
      }
    };
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      for (let frame = frameAt(received, parsedTo); frame !== undefined; frame = frameAt(received, parsedTo)) {
        const end = parsedTo + frame.bytes.length;
        if (!acknowledged && frame.type === frameType.settings && (frame.flags & flag.ack) !== 0) {
          acknowledged = true;
          received = Buffer.concat([received.subarray(0, parsedTo), received.subarray(end)]);
          continue;
        }
        if (firstBlock === undefined) collector.take(frame);
        parsedTo = end;
      }
      decide();
    };
    const decide = () => {
      if (!acknowledged) return;
      if (firstBlock !== undefined) finish(rewriteAuthority(firstBlock, new DynamicTableMirror()) instanceof Buffer ? 'rewrite' : 'native');
      else if (received.length > admissionBytesMax) finish('native');
      else quietTimer ??= setTimeout(() => finish('native'), firstRequestWaitMs);
    };
    const onEnd = () => finish('closed');
    const ackTimer = setTimeout(() => finish('closed'), settingsAckWaitMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.write(emptySettingsFrame);
    socket.resume();
  });
}
