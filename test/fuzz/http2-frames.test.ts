import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { test } from 'node:test';
import type { Logger } from 'pino';
import type { GrpcRoute, GrpcRoutes } from '../../actors/client/grpc/calls.js';
import { GrpcTraffic, MethodStats } from '../../actors/client/grpc/call-stats.js';
import { serveGrpcConnection } from '../../actors/client/http2/server.js';
import type { WireMessage } from '../../src/api/proto-wire.js';
import { decodeRangeRequest } from '../../src/api/request-decoder.js';
import { FrameFlag, FrameType, Http2ErrorCode, http2Preface } from '../../src/http2/frames.js';
import { concat, runFuzzYielding } from './fuzz.js';

/** One frame: the 9-byte header, then the payload. */
function frame(type: number, flags: number, streamId: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return concat(header, payload);
}

/** A literal header field without indexing, both name and value literal (RFC 7541, 6.2.2). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([
    Buffer.from([0, name.length]),
    Buffer.from(name),
    Buffer.from([value.length]),
    Buffer.from(value),
  ]);
}

/** A gRPC request's header block: POST, http, the path as a literal, content-type and te (added to the table). */
function requestBlock(path: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x83, 0x86, 0x04, path.length]),
    Buffer.from(path),
    Buffer.from([0x5f, 16]),
    Buffer.from('application/grpc'),
    literal('te', 'trailers'),
  ]);
}

/** A gRPC message in a DATA payload: the 5-byte prefix, then the bytes. */
const grpcMessage = (bytes: Uint8Array): Uint8Array => concat(Buffer.from([0, 0, 0, 0, bytes.length]), bytes);
const rangeRequest = Buffer.from([0x0a, 0x01, 0x61, 0x18, 0x05]);
const echoBlock = requestBlock('/test.Echo/Echo');
const rangeBlock = requestBlock('/test.Echo/Range');

/** Frame sequences a client sends after its preface: settings, calls whole and in pieces, flow control, pings, resets. */
const corpus: Uint8Array[] = [
  concat(
    frame(FrameType.settings, 0, 0, Buffer.from([0, 4, 0, 1, 0, 0, 0, 5, 0, 0, 0x40, 0])),
    frame(FrameType.settings, FrameFlag.ack, 0),
    frame(FrameType.headers, FrameFlag.endHeaders, 1, echoBlock),
    frame(FrameType.data, FrameFlag.endStream, 1, grpcMessage(Buffer.from('hello'))),
  ),
  concat(
    frame(
      FrameType.headers,
      FrameFlag.padded | FrameFlag.priority,
      3,
      concat(Buffer.from([2, 0, 0, 0, 0, 16]), rangeBlock.subarray(0, 6), Buffer.alloc(2)),
    ),
    frame(FrameType.continuation, FrameFlag.endHeaders, 3, rangeBlock.subarray(6)),
    frame(
      FrameType.data,
      FrameFlag.padded,
      3,
      concat(Buffer.from([1]), grpcMessage(rangeRequest).subarray(0, 4), Buffer.alloc(1)),
    ),
    frame(FrameType.data, FrameFlag.endStream, 3, grpcMessage(rangeRequest).subarray(4)),
    frame(FrameType.windowUpdate, 0, 0, Buffer.from([0, 0, 0x10, 0])),
    frame(FrameType.windowUpdate, 0, 3, Buffer.from([0, 0, 0x10, 0])),
  ),
  concat(
    frame(FrameType.ping, 0, 0, Buffer.alloc(8)),
    frame(FrameType.priority, 0, 5, Buffer.from([0, 0, 0, 0, 16])),
    frame(FrameType.headers, FrameFlag.endHeaders | FrameFlag.endStream, 5, requestBlock('/test.Nope/Nope')),
    frame(FrameType.headers, FrameFlag.endHeaders, 7, echoBlock),
    frame(FrameType.rstStream, 0, 7, Buffer.from([0, 0, 0, 8])),
    frame(FrameType.goaway, 0, 0, Buffer.from([0, 0, 0, 7, 0, 0, 0, 0])),
  ),
];

/** What the connection logged: an error log means an exception that was not a protocol error. */
interface Logged {
  errors: unknown[];
  goAwayCodes: number[];
}

function fakeLogger(logged: Logged): Logger {
  const ignore = (): void => undefined;
  const logger = {
    error: (fields: unknown) => logged.errors.push(fields),
    fatal: (fields: unknown) => logged.errors.push(fields),
    warn: (fields: { code?: number }) => {
      if (typeof fields?.code === 'number') logged.goAwayCodes.push(fields.code);
    },
    info: ignore,
    debug: ignore,
    trace: ignore,
    child: () => logger,
  };
  return logger as unknown as Logger;
}

function routesFor(logged: Logged): GrpcRoutes {
  const wrap = (bytes: Buffer): WireMessage => ({ bytes });
  const bytesOf = (message: WireMessage): Uint8Array => message.bytes as Buffer;
  const echo: GrpcRoute = {
    kind: 'unary',
    decode: wrap,
    encode: bytesOf,
    handler: async (request) => request,
    stats: new MethodStats('test.Echo', 'Echo', 'unary'),
  };
  const range: GrpcRoute = {
    kind: 'unary',
    decode: (bytes) => decodeRangeRequest(bytes) as unknown as WireMessage,
    encode: () => new Uint8Array(0),
    handler: async () => ({}),
    stats: new MethodStats('test.Echo', 'Range', 'unary'),
  };
  return {
    byPath: new Map([
      ['/test.Echo/Echo', echo],
      ['/test.Echo/Range', range],
    ]),
    services: new Set(['test.Echo']),
    receiveLimitBytes: 64 * 1024,
    logger: fakeLogger(logged),
    traffic: new GrpcTraffic(),
  };
}

/** Feeds the preface and `input` to a new connection in two reads; returns what it logged. */
function serve(input: Uint8Array): Logged {
  const logged: Logged = { errors: [], goAwayCodes: [] };
  const socket = new Duplex({
    read: () => undefined,
    write: (_chunk, _encoding, done: () => void) => done(),
  });
  serveGrpcConnection(socket, routesFor(logged));
  // The bytes arrive in two reads, so frames split across reads are put together again.
  const bytes = concat(http2Preface, input);
  const cut = bytes.length > 2 ? (bytes[bytes.length - 1]! * 131) % bytes.length : 0;
  for (const chunk of [bytes.subarray(0, cut), bytes.subarray(cut)])
    if (chunk.length > 0) socket.emit('data', Buffer.from(chunk));
  socket.destroy();
  return logged;
}

test('the frame sequences the fuzzer starts from are served without GOAWAY', () => {
  for (const input of corpus) assert.deepEqual(serve(input), { errors: [], goAwayCodes: [] });
});

test('the HTTP/2 frame reader answers any bytes after the preface, ending the connection only with a protocol GOAWAY', async () => {
  await runFuzzYielding('http2-frames', {
    corpus,
    inputBytesMax: 32 * 1024,
    check(input) {
      const logged = serve(input);
      assert.deepEqual(logged.errors, [], 'the connection logged an unexpected error');
      assert.ok(!logged.goAwayCodes.includes(Http2ErrorCode.internalError), 'GOAWAY with INTERNAL_ERROR');
    },
  });
});
