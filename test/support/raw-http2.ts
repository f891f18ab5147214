/**
 * An HTTP/2 client at the byte level for playing an attacker against the client port: it writes
 * whatever frames it is told (no flow control, no manners), reads the server's frames only to
 * see what came back (GOAWAY, RST_STREAM, trailers), and can stop reading altogether.
 */
import { once } from 'node:events';
import net from 'node:net';
import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import { FrameFlag, FrameType, http2Preface } from '../../src/http2/frames.js';
import { HeaderDecoder } from '../../src/http2/hpack.js';

/** An HPACK integer with an N-bit prefix after `pattern`'s high bits (RFC 7541, 5.1). */
export function hpackInteger(pattern: number, prefixBits: number, value: number): number[] {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) return [pattern | value];
  const bytes = [pattern | mask];
  let rest = value - mask;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return bytes;
}

/** One header as a literal with a literal name; `indexing` adds it to the server's dynamic table. */
export function literalField(name: string, value: string, indexing = false): Buffer {
  const nameBytes = Buffer.from(name, 'latin1');
  const valueBytes = Buffer.from(value, 'latin1');
  return Buffer.concat([
    Buffer.from([indexing ? 0x40 : 0x00, ...hpackInteger(0, 7, nameBytes.length)]),
    nameBytes,
    Buffer.from(hpackInteger(0, 7, valueBytes.length)),
    valueBytes,
  ]);
}

/** A header block of literals that enter no table. */
export function headerBlock(fields: Record<string, string>): Buffer {
  return Buffer.concat(Object.entries(fields).map(([name, value]) => literalField(name, value)));
}

/** The headers of a gRPC call to `path`. */
export function grpcRequestFields(path: string): Record<string, string> {
  return {
    ':method': 'POST',
    ':scheme': 'http',
    ':path': path,
    ':authority': 'localhost',
    'content-type': 'application/grpc',
    te: 'trailers',
  };
}

export function frameBytes(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

export function settingsPayload(settings: Array<[number, number]>): Buffer {
  const payload = Buffer.alloc(6 * settings.length);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return payload;
}

/** A uint32 payload: RST_STREAM's error code, WINDOW_UPDATE's increment. */
export function uint32Payload(value: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(value, 0);
  return payload;
}

/** A protobuf message prefixed as gRPC frames it. */
export function grpcMessage(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** etcd's PutRequest{key, value} as protobuf bytes (fields 1 and 2), for values under 128 bytes. */
export function putRequestBytes(key: string, value: string): Buffer {
  const keyBytes = Buffer.from(key);
  const valueBytes = Buffer.from(value);
  return Buffer.concat([
    Buffer.from([0x0a, keyBytes.length]),
    keyBytes,
    Buffer.from([0x12, valueBytes.length]),
    valueBytes,
  ]);
}

export interface ReceivedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** What the attacker saw come back. */
export interface Tally {
  goAway?: { code: number; reason: string };
  /** RST_STREAM error codes received, by code. */
  resets: Map<number, number>;
  /** HEADERS frames that ended a stream (trailers), with their decoded fields. */
  trailers: Array<Record<string, string>>;
  bytesRead: number;
}

/** A raw connection to an HTTP/2 port. */
export class Attacker {
  readonly tally: Tally = { resets: new Map(), trailers: [], bytesRead: 0 };
  closed = false;
  readonly ended: Promise<void>;
  private pingAcks = 0;
  /** SETTINGS frames the server sent (each ACKed at once). */
  private serverSettings = 0;
  private input: Buffer = Buffer.alloc(0);
  private readonly decoder = new HeaderDecoder();

  private constructor(readonly socket: net.Socket) {
    // Not once(socket, 'close'): that rejects on the 'error' a write into a connection the server
    // closed raises (EPIPE), unhandled until someone awaits `ended`. 'close' follows every error.
    this.ended = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true;
        resolve();
      }),
    );
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
  }

  /** Connects; with `preface` it also sends the preface and an empty SETTINGS, and waits for the server's. */
  static async connect(port: number, preface = true): Promise<Attacker> {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const attacker = new Attacker(socket);
    if (preface) {
      attacker.write(Buffer.concat([http2Preface, frameBytes(FrameType.settings, 0, 0)]));
      // The server's SETTINGS and our ACK come first: an ACK sent in the middle of an attack's
      // header block would be a protocol error of its own.
      await attacker.waitFor("the server's SETTINGS", () => attacker.serverSettings > 0);
    }
    return attacker;
  }

  /** Stops reading: the server's writes pile up in its own queue. */
  stopReading(): void {
    this.socket.pause();
  }

  write(bytes: Buffer): boolean {
    return !this.closed && this.socket.write(bytes);
  }

  /**
   * Writes `chunks()` until it returns undefined, a GOAWAY arrives or the connection closes; after
   * a write the socket would not take, waits for 'drain' at most `stallMs`, and stops there if the
   * server has stopped reading. Resolves with the bytes written.
   */
  async flood(chunks: () => Buffer | undefined, stallMs = 2_000): Promise<number> {
    let written = 0;
    for (let chunk = chunks(); chunk !== undefined && !this.closed; chunk = chunks()) {
      written += chunk.length;
      const taken = this.write(chunk);
      // Reads wait for the event loop's poll phase. A write the kernel takes at once emits 'drain'
      // in the same turn, so without this a fast reader on the other side kept the loop writing
      // for seconds while the server's GOAWAY sat unread, until its close reset the connection
      // and took the GOAWAY with it.
      await setImmediate();
      if (this.tally.goAway !== undefined) break;
      if (taken || !this.socket.writableNeedDrain) continue;
      const drained = await Promise.race([
        once(this.socket, 'drain').then(
          () => true,
          () => false,
        ),
        this.ended.then(() => false),
        sleep(stallMs, false, { ref: false }),
      ]);
      if (!drained) break;
    }
    return written;
  }

  /** Waits for frames until `done()` says so; throws if the connection closes first. */
  async waitFor(what: string, done: () => boolean): Promise<void> {
    while (!done()) {
      if (this.closed) throw new Error(`the connection closed before ${what}`);
      await this.nextRead();
    }
  }

  /**
   * Sends a PING and resolves once its ACK arrives (so the server has read everything written
   * before it) or the connection has closed: an attack the server did not stop ends here too.
   */
  async settled(): Promise<void> {
    const acksBefore = this.pingAcks;
    this.write(frameBytes(FrameType.ping, 0, 0, Buffer.from('settled?')));
    while (this.pingAcks === acksBefore && !this.closed) await this.nextRead();
  }

  close(): void {
    this.socket.destroy();
  }

  /** The next read, or the close (a reset connection is a close here too). */
  private async nextRead(): Promise<void> {
    await Promise.race([once(this.socket, 'data').catch(() => undefined), this.ended]);
  }

  private receive(chunk: Buffer): void {
    this.tally.bytesRead += chunk.length;
    this.input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    let at = 0;
    while (this.input.length - at >= 9) {
      const length = this.input.readUIntBE(at, 3);
      if (this.input.length - at < 9 + length) break;
      const frame: ReceivedFrame = {
        type: this.input[at + 3]!,
        flags: this.input[at + 4]!,
        streamId: this.input.readUInt32BE(at + 5) & 0x7fffffff,
        payload: this.input.subarray(at + 9, at + 9 + length),
      };
      this.seen(frame);
      at += 9 + length;
    }
    this.input = this.input.subarray(at);
  }

  private seen(frame: ReceivedFrame): void {
    if (frame.type === FrameType.goaway) {
      this.tally.goAway = {
        code: frame.payload.readUInt32BE(4),
        reason: frame.payload.subarray(8).toString('utf8'),
      };
    } else if (frame.type === FrameType.rstStream) {
      const code = frame.payload.readUInt32BE(0);
      this.tally.resets.set(code, (this.tally.resets.get(code) ?? 0) + 1);
    } else if (frame.type === FrameType.headers) {
      const fields: string[] = [];
      this.decoder.decode(frame.payload, fields);
      if ((frame.flags & FrameFlag.endStream) === 0) return;
      const record: Record<string, string> = {};
      for (let i = 0; i < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
      this.tally.trailers.push(record);
    } else if (frame.type === FrameType.ping && (frame.flags & FrameFlag.ack) !== 0) {
      this.pingAcks++;
    } else if (frame.type === FrameType.settings && (frame.flags & FrameFlag.ack) === 0) {
      this.serverSettings++;
      this.write(frameBytes(FrameType.settings, FrameFlag.ack, 0));
    }
  }
}
