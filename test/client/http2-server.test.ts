/**
 * Our own HTTP/2 server for gRPC (actors/client/http2/server.ts and actors/client/grpc/calls.ts) against real clients on
 * loopback: grpc-js for what etcd's clients see, Node's HTTP/2 client for the headers as sent, and
 * a raw socket speaking frames for flow control and protocol errors that no polite client makes.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import type { GrpcRoute, GrpcRoutes, GrpcStreamCall } from '../../actors/client/grpc/calls.js';
import { GrpcTraffic, MethodStats } from '../../actors/client/grpc/call-stats.js';
import { GrpcHeaderEncoder } from '../../actors/client/grpc/headers.js';
import { serveGrpcConnection } from '../../actors/client/http2/server.js';
import { listenClient } from '../../actors/client/listener.js';
import { createGrpcServer, type UnaryContext } from '../../actors/client/grpc/router.js';
import type { WireMessage } from '../../src/api/proto-wire.js';
import { EtcdError, GrpcCode } from '../../src/api/errors.js';
import { HeaderDecoder } from '../../src/http2/hpack.js';
import { FrameFlag, FrameType, Http2ErrorCode, Setting, http2Preface } from '../../src/http2/frames.js';
import { FakeKv } from '../api/fake-kv.js';

/** Every wait in this file ends with its test: nothing here should take more than a few seconds. */
const bounded = { timeout: 10_000 };

/**
 * Known bug, reported and not fixed here: a stream-level WINDOW_UPDATE sends a streaming call's
 * queued bytes but never emits 'drain', so the call waits until some connection-level event.
 * Remove the todo from the two tests that use this once it is fixed.
 */

const service = 'test.Echo';
const silent = pino({ level: 'silent' });

// ---- the routes under test: messages are their bytes, so a test sees exactly what went over ----

/** A message of the test routes: the payload as it came off the wire. */
const wrap = (bytes: Buffer): WireMessage => ({ bytes });
const bytesOf = (message: WireMessage): Buffer => message.bytes as Buffer;

/** What the handlers saw, for tests to wait on: the client cannot see the server side of a call. */
const observed = new EventEmitter();

async function echo(request: WireMessage): Promise<WireMessage> {
  return request;
}

/** Echoes a millisecond later, as a put answers once its entry is durable. */
async function echoLater(request: WireMessage): Promise<WireMessage> {
  await new Promise((resolve) => setTimeout(resolve, 1));
  return request;
}

/** Fails with an EtcdError whose message is the request's text. */
async function fail(request: WireMessage): Promise<WireMessage> {
  throw new EtcdError(GrpcCode.failedPrecondition, bytesOf(request).toString('utf8'));
}

/** Never answers; tells the test when the call's signal aborts (deadline or cancel). */
function stall(_request: WireMessage, context: UnaryContext): Promise<WireMessage> {
  return new Promise((_resolve, reject) => {
    context.signal.addEventListener('abort', () => {
      observed.emit('stall-aborted');
      reject(new Error('aborted'));
    });
    observed.emit('stall-started');
  });
}

/** Bidi: echoes each message and ends with OK once the client half-closes. */
function chat(call: GrpcStreamCall): void {
  call.on('data', (message: WireMessage) => call.write(message));
  call.on('end', () => {
    observed.emit('chat-end');
    call.end();
  });
}

interface FloodStats {
  refusedWrites: number;
  drains: number;
}

/**
 * Server streaming: the request is JSON {count, size}; writes `count` messages of `size` bytes,
 * message i starting with i big-endian and filled with i's low byte, waiting for 'drain' whenever
 * write() says to, and ending right after the last write, which may still be queued.
 */
function flood(call: GrpcStreamCall): void {
  const { count, size } = JSON.parse(bytesOf(call.request).toString('utf8')) as { count: number; size: number };
  const stats: FloodStats = { refusedWrites: 0, drains: 0 };
  let sent = 0;
  let waiting = false;
  const writeSome = () => {
    while (sent < count) {
      const accepted = call.write(wrap(floodMessage(sent, size)));
      sent++;
      if (!accepted && sent < count) {
        stats.refusedWrites++;
        waiting = true;
        return;
      }
    }
    // end() goes behind whatever is still waiting for window, as grpc-js's does.
    call.end();
    observed.emit('flood-done', stats);
  };
  call.on('drain', () => {
    if (!waiting) return;
    waiting = false;
    stats.drains++;
    writeSome();
  });
  writeSome();
}

function floodMessage(index: number, size: number): Buffer {
  const message = Buffer.alloc(size, index & 0xff);
  message.writeUInt32BE(index, 0);
  return message;
}

/** Bidi that never ends by itself: reports its first message and its cancellation. */
function hold(call: GrpcStreamCall): void {
  call.once('data', () => observed.emit('hold-data', call));
  call.on('cancelled', () => observed.emit('hold-cancelled', call));
}

/** Bidi that ends the call with PERMISSION_DENIED, the request's text as details, grpc-js style. */
function refuse(call: GrpcStreamCall): void {
  call.on('data', (message: WireMessage) =>
    call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: bytesOf(message).toString('utf8') }),
  );
}

/** A unary handler that throws before it returns a promise, as a non-async function can. */
function throwAtOnce(): Promise<WireMessage> {
  throw new Error('thrown before any promise');
}

/** Bidi whose 'data' listener throws: a bug in a handler, which must cost only its connection. */
function explode(call: GrpcStreamCall): void {
  call.on('data', () => {
    throw new Error('a listener bug');
  });
}

function testRoutes(receiveLimitBytes: number): GrpcRoutes {
  const unary = (handler: (request: WireMessage, context: UnaryContext) => Promise<WireMessage>): GrpcRoute => ({
    kind: 'unary',
    decode: wrap,
    encode: bytesOf,
    handler,
    stats: new MethodStats(service, 'unary', 'unary'),
  });
  const stream = (clientStreaming: boolean, handler: (call: GrpcStreamCall) => void): GrpcRoute => ({
    kind: 'stream',
    clientStreaming,
    decode: wrap,
    encode: bytesOf,
    handler,
    stats: new MethodStats(service, 'stream', clientStreaming ? 'bidi_stream' : 'server_stream'),
  });
  const byPath = new Map<string, GrpcRoute>([
    [`/${service}/Echo`, unary(echo)],
    [`/${service}/EchoLater`, unary(echoLater)],
    [`/${service}/Fail`, unary(fail)],
    [`/${service}/Stall`, unary(stall)],
    [`/${service}/Chat`, stream(true, chat)],
    [`/${service}/Flood`, stream(false, flood)],
    [`/${service}/Hold`, stream(true, hold)],
    [`/${service}/Refuse`, stream(true, refuse)],
    [`/${service}/Throw`, unary(throwAtOnce)],
    [`/${service}/Explode`, stream(true, explode)],
  ]);
  return { byPath, services: new Set([service]), receiveLimitBytes, logger: silent, traffic: new GrpcTraffic() };
}

// ---- a TCP server whose every connection is ours ----

interface TestServer {
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

async function startServer(routes: GrpcRoutes): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    state.accepted++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serveGrpcConnection(socket, routes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const state: TestServer = {
    port: (server.address() as net.AddressInfo).port,
    accepted: 0,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
  return state;
}

const receiveLimitBytes = 8 << 20;
let server: TestServer;

before(async () => {
  server = await startServer(testRoutes(receiveLimitBytes));
});

after(async () => {
  await server.close();
});

// ---- grpc-js as the client ----

const identity = (bytes: Buffer): Buffer => bytes;

/** A client with a connection of its own: grpc-js otherwise shares one per target across clients. */
function newClient(port = server.port): grpc.Client {
  return new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  });
}

/** A unary call; without options it has a 5-second deadline, so a broken answer fails rather than hangs. */
function unary(
  client: grpc.Client,
  method: string,
  body: Buffer,
  options: grpc.CallOptions = { deadline: Date.now() + 5_000 },
  path = `/${service}/${method}`,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(path, identity, identity, body, new grpc.Metadata(), options, (error, response) => {
      if (error) reject(error);
      else resolve(response!);
    });
  });
}

/** Rejects-with check for a grpc-js call: the status code and details the client saw. */
function status(code: grpc.status, details: string): (error: unknown) => boolean {
  return (error: unknown) => {
    const failure = error as grpc.ServiceError;
    assert.equal(failure.code, code, `status code, details "${failure.details}"`);
    assert.equal(failure.details, details);
    return true;
  };
}

interface StreamOutcome {
  messages: Buffer[];
  status: grpc.StatusObject;
}

/** Everything a streaming call receives, once its status is in and its stream has ended. */
function outcome(
  call: grpc.ClientReadableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer>,
): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    const messages: Buffer[] = [];
    let finalStatus: grpc.StatusObject | undefined;
    let ended = false;
    const settle = () => {
      if (finalStatus !== undefined && ended) resolve({ messages, status: finalStatus });
    };
    call.on('data', (message: Buffer) => messages.push(message));
    call.on('status', (received: grpc.StatusObject) => {
      finalStatus = received;
      settle();
    });
    call.on('end', () => {
      ended = true;
      settle();
    });
    call.on('error', () => {
      ended = true;
      settle();
    });
  });
}

describe('unary calls from grpc-js', () => {
  let client: grpc.Client;
  before(() => {
    client = newClient();
  });
  after(() => client.close());

  test('an echo comes back with the bytes it was sent', bounded, async () => {
    const body = Buffer.from('hello, etcd');
    assert.deepEqual(await unary(client, 'Echo', body), body);
    assert.deepEqual(await unary(client, 'Echo', Buffer.alloc(0)), Buffer.alloc(0));
  });

  test('an EtcdError is answered with its code and message', bounded, async () => {
    await assert.rejects(
      unary(client, 'Fail', Buffer.from('etcdserver: key not found')),
      status(grpc.status.FAILED_PRECONDITION, 'etcdserver: key not found'),
    );
  });

  test('a message outside printable ASCII, and a percent sign, survive percent-encoding', bounded, async () => {
    const text = 'etcdserver: naïve ☃ 100% sure\n';
    await assert.rejects(unary(client, 'Fail', Buffer.from(text)), status(grpc.status.FAILED_PRECONDITION, text));
  });

  test("an unknown method is UNIMPLEMENTED in grpc-go's words", bounded, async () => {
    await assert.rejects(
      unary(client, 'Nope', Buffer.alloc(0)),
      status(grpc.status.UNIMPLEMENTED, `unknown method Nope for service ${service}`),
    );
  });

  test("an unknown service is UNIMPLEMENTED in grpc-go's words", bounded, async () => {
    await assert.rejects(
      unary(client, '', Buffer.alloc(0), {}, '/nope.Missing/Do'),
      status(grpc.status.UNIMPLEMENTED, 'unknown service nope.Missing'),
    );
  });

  test("a deadline that passes answers DEADLINE_EXCEEDED and aborts the handler's signal", bounded, async () => {
    const aborted = once(observed, 'stall-aborted');
    await assert.rejects(
      unary(client, 'Stall', Buffer.alloc(0), { deadline: Date.now() + 100 }),
      (error: grpc.ServiceError) => error.code === grpc.status.DEADLINE_EXCEEDED,
    );
    await aborted;
  });

  test(
    "a message over receiveLimitBytes is RESOURCE_EXHAUSTED with grpc-go's text, and the connection goes on",
    bounded,
    async () => {
      const small = await startServer(testRoutes(1024));
      const limited = newClient(small.port);
      try {
        await assert.rejects(
          unary(limited, 'Echo', Buffer.alloc(2000)),
          status(grpc.status.RESOURCE_EXHAUSTED, 'grpc: received message larger than max (2000 vs. 1024)'),
        );
        // Far over the limit: refused from the prefix of the first DATA frame.
        await assert.rejects(
          unary(limited, 'Echo', Buffer.alloc(3 << 20)),
          status(grpc.status.RESOURCE_EXHAUSTED, `grpc: received message larger than max (${3 << 20} vs. 1024)`),
        );
        assert.deepEqual(await unary(limited, 'Echo', Buffer.alloc(1024, 7)), Buffer.alloc(1024, 7));
        // A streaming call's messages meet the same limit.
        const call = limited.makeBidiStreamRequest(`/${service}/Chat`, identity, identity);
        const result = outcome(call);
        call.write(Buffer.alloc(1500));
        const { status: final } = await result;
        assert.equal(final.code, grpc.status.RESOURCE_EXHAUSTED);
        assert.equal(final.details, 'grpc: received message larger than max (1500 vs. 1024)');
        assert.equal(small.accepted, 1);
      } finally {
        limited.close();
        await small.close();
      }
    },
  );

  test('500 concurrent calls on one connection are each answered with their own bytes', bounded, async () => {
    const acceptedBefore = server.accepted;
    const fresh = newClient();
    try {
      const bodies = Array.from({ length: 500 }, (_, i) => Buffer.from(`call ${i} ${'x'.repeat(i % 37)}`));
      const answers = await Promise.all(bodies.map((body) => unary(fresh, 'Echo', body)));
      answers.forEach((answer, i) => assert.deepEqual(answer, bodies[i], `call ${i}`));
      // And errors interleaved with successes keep the header tables in step.
      const mixed = await Promise.allSettled(
        Array.from({ length: 100 }, (_, i) => unary(fresh, i % 2 === 0 ? 'Echo' : 'Fail', Buffer.from(`m${i}`))),
      );
      mixed.forEach((result, i) => {
        if (i % 2 === 0) assert.deepEqual(result, { status: 'fulfilled', value: Buffer.from(`m${i}`) });
        else assert.equal(result.status === 'rejected' && (result.reason as grpc.ServiceError).details, `m${i}`);
      });
      assert.equal(server.accepted - acceptedBefore, 1, 'grpc-js opened one connection');
    } finally {
      fresh.close();
    }
  });
});

/** A request of `size` bytes whose every byte depends on its position, so a misplaced frame shows. */
function patterned(size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >>> 16)) & 0xff;
  return bytes;
}

describe('large messages from grpc-js', () => {
  test(
    'a 3 MiB request is echoed as a 3 MiB response, past every flow-control window and frame size',
    bounded,
    async () => {
      const client = newClient();
      try {
        // A small call first, so the large one runs with the header table already primed.
        await unary(client, 'Echo', Buffer.from('prime'));
        const body = patterned(3 << 20);
        const answer = await unary(client, 'Echo', body);
        assert.equal(answer.length, body.length);
        assert.ok(answer.equals(body), 'the echo has the same bytes in the same order');
        assert.ok((await unary(client, 'Echo', body)).equals(body), 'a second time, after the windows were refilled');
      } finally {
        client.close();
      }
    },
  );

  test(
    'the first answer on a connection may be larger than one frame, and its headers still decode',
    bounded,
    async () => {
      const client = newClient();
      try {
        const body = patterned(100_000);
        assert.ok((await unary(client, 'Echo', body)).equals(body));
      } finally {
        client.close();
      }
    },
  );
});

describe('streaming calls from grpc-js', () => {
  let client: grpc.Client;
  before(() => {
    client = newClient();
  });
  after(() => client.close());

  test('a bidi call echoes each message, sees the client half-close as end, and ends with OK', bounded, async () => {
    const serverEnd = once(observed, 'chat-end');
    const call = client.makeBidiStreamRequest(`/${service}/Chat`, identity, identity);
    const result = outcome(call);
    const sent = Array.from({ length: 5 }, (_, i) => Buffer.from(`message ${i}`));
    for (const message of sent) call.write(message);
    call.end();
    await serverEnd;
    const { messages, status: final } = await result;
    assert.equal(final.code, grpc.status.OK);
    assert.deepEqual(messages, sent);
  });

  test(
    "a server-streaming call that outruns the client's window queues its writes and resumes on drain",
    bounded,
    async () => {
      const done = once(observed, 'flood-done');
      const count = 200;
      const size = 16_000;
      // The deadline turns a stalled stream into a failure instead of a hang.
      const call = client.makeServerStreamRequest(
        `/${service}/Flood`,
        identity,
        identity,
        Buffer.from(JSON.stringify({ count, size })),
        { deadline: Date.now() + 3_000 },
      );
      const { messages, status: final } = await outcome(call);
      assert.equal(
        final.code,
        grpc.status.OK,
        `status ${final.code} "${final.details}" after ${messages.length} messages`,
      );
      const [stats] = (await done) as [FloodStats];
      assert.equal(messages.length, count);
      messages.forEach((message, i) => assert.ok(message.equals(floodMessage(i, size)), `message ${i}`));
      // 3.2 MB against a 64 KiB window: write() must have said to wait, and 'drain' must have followed.
      assert.ok(stats.refusedWrites >= 1, `refused writes: ${stats.refusedWrites}`);
      assert.equal(stats.drains, stats.refusedWrites);
    },
  );

  test('a client that cancels makes the server call emit cancelled and set cancelled', bounded, async () => {
    const started = once(observed, 'hold-data');
    const cancelled = once(observed, 'hold-cancelled');
    const call = client.makeBidiStreamRequest(`/${service}/Hold`, identity, identity);
    const result = outcome(call);
    call.write(Buffer.from('hello'));
    const [serverCall] = (await started) as [GrpcStreamCall];
    assert.equal(serverCall.cancelled, false);
    call.cancel();
    const [cancelledCall] = (await cancelled) as [GrpcStreamCall];
    assert.equal(cancelledCall, serverCall);
    assert.equal(serverCall.cancelled, true);
    assert.equal((await result).status.code, grpc.status.CANCELLED);
  });

  test(
    "a server call emitting error with a code and details ends the client's call with that status",
    bounded,
    async () => {
      const call = client.makeBidiStreamRequest(`/${service}/Refuse`, identity, identity);
      const result = outcome(call);
      call.write(Buffer.from('etcdserver: permission denied ☃'));
      const { messages, status: final } = await result;
      assert.deepEqual(messages, []);
      assert.equal(final.code, grpc.status.PERMISSION_DENIED);
      assert.equal(final.details, 'etcdserver: permission denied ☃');
    },
  );

  test('a unary handler that throws before returning a promise answers UNKNOWN with its message', bounded, async () => {
    await assert.rejects(
      unary(client, 'Throw', Buffer.from('x')),
      status(grpc.status.UNKNOWN, 'thrown before any promise'),
    );
  });

  test(
    'a streaming listener that throws ends only its own connection, and the server goes on serving',
    bounded,
    async () => {
      const other = newClient();
      try {
        const call = other.makeBidiStreamRequest(`/${service}/Explode`, identity, identity);
        const result = outcome(call);
        call.write(Buffer.from('boom'));
        const { status: final } = await result;
        assert.notEqual(final.code, grpc.status.OK);
      } finally {
        other.close();
      }
      assert.deepEqual(await unary(client, 'Echo', Buffer.from('after')), Buffer.from('after'));
      await stillServing();
    },
  );

  test('unary and streaming calls share the connection with the calls above', bounded, async () => {
    assert.deepEqual(await unary(client, 'Echo', Buffer.from('after streams')), Buffer.from('after streams'));
  });
});

// ---- Node's HTTP/2 client: the headers as the server sent them ----

interface RawAnswer {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
}

/** One request on `session`; resolves once the stream has closed, with what came back. */
function request(
  session: http2.ClientHttp2Session,
  path: string,
  body: Buffer,
  headers: http2.OutgoingHttpHeaders = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (received) => (responseHeaders = received));
    stream.on('trailers', (received) => (trailers = received));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', reject);
    stream.on('close', () => resolve({ headers: responseHeaders, body: Buffer.concat(chunks), trailers }));
    stream.end(body);
  });
}

/** A gRPC message with its 5-byte prefix. */
function framed(message: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

describe("requests from Node's HTTP/2 client", () => {
  let session: http2.ClientHttp2Session;
  before(async () => {
    session = http2.connect(`http://127.0.0.1:${server.port}`);
    await once(session, 'connect');
  });
  after(() => session.close());

  test('a PING is answered with the same eight bytes', bounded, async () => {
    const payload = Buffer.from('tsetcd!!');
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      session.ping(payload, (error, _durationMs, received) => (error ? reject(error) : resolve(received)));
    });
    assert.deepEqual(echoed, payload);
  });

  test('a unary answer is headers, one prefixed message and trailers with grpc-status 0', bounded, async () => {
    const { headers, body, trailers } = await request(session, `/${service}/Echo`, framed(Buffer.from('abc')));
    assert.equal(headers[':status'], 200);
    assert.equal(headers['content-type'], 'application/grpc');
    assert.deepEqual(body, framed(Buffer.from('abc')));
    assert.equal(trailers['grpc-status'], '0');
  });

  test('a content-type that is not gRPC gets HTTP status 415', bounded, async () => {
    const { headers } = await request(session, `/${service}/Echo`, framed(Buffer.from('abc')), {
      'content-type': 'text/plain',
    });
    assert.equal(headers[':status'], 415);
    assert.equal(headers['grpc-status'], String(grpc.status.INTERNAL));
    assert.equal(headers['grpc-message'], 'transport: received unexpected content-type "text/plain"');
  });

  test('a content-type with a suffix is still gRPC, and a method other than POST gets 405', bounded, async () => {
    const proto = await request(session, `/${service}/Echo`, framed(Buffer.from('abc')), {
      'content-type': 'application/grpc+proto',
    });
    assert.equal(proto.trailers['grpc-status'], '0');
    const put = await request(session, `/${service}/Echo`, framed(Buffer.from('abc')), { ':method': 'PUT' });
    assert.equal(put.headers[':status'], 405);
    assert.equal(put.headers['grpc-message'], 'transport: received unexpected method "PUT"');
  });

  test('an error message goes out percent-encoded as UTF-8 bytes', bounded, async () => {
    const { headers } = await request(session, `/${service}/Fail`, framed(Buffer.from('naïve ☃ 100%')));
    assert.equal(headers['grpc-status'], String(grpc.status.FAILED_PRECONDITION));
    assert.equal(headers['grpc-message'], 'na%C3%AFve %E2%98%83 100%25');
  });

  test('a gzip-compressed message is decompressed before the handler sees it', bounded, async () => {
    const message = Buffer.from('compressed '.repeat(100));
    const { body, trailers } = await request(session, `/${service}/Echo`, framed(zlib.gzipSync(message), true), {
      'grpc-encoding': 'gzip',
    });
    assert.equal(trailers['grpc-status'], '0');
    assert.deepEqual(body, framed(message));
  });

  test('a deflate-compressed message is decompressed too', bounded, async () => {
    const message = Buffer.from('deflated '.repeat(100));
    const { body, trailers } = await request(session, `/${service}/Echo`, framed(zlib.deflateSync(message), true), {
      'grpc-encoding': 'deflate',
    });
    assert.equal(trailers['grpc-status'], '0');
    assert.deepEqual(body, framed(message));
  });

  test('a message that decompresses to more than the limit is RESOURCE_EXHAUSTED', bounded, async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(receiveLimitBytes + 100));
    const { headers } = await request(session, `/${service}/Echo`, framed(bomb, true), { 'grpc-encoding': 'gzip' });
    assert.equal(headers['grpc-status'], String(grpc.status.RESOURCE_EXHAUSTED));
    assert.equal(
      headers['grpc-message'],
      `grpc: received message after decompression larger than max (${receiveLimitBytes + 1} vs. ${receiveLimitBytes})`,
    );
  });

  test("an unknown grpc-encoding is UNIMPLEMENTED in grpc-go's words", bounded, async () => {
    const { headers } = await request(session, `/${service}/Echo`, framed(Buffer.from('abc'), true), {
      'grpc-encoding': 'x',
    });
    assert.equal(headers[':status'], 200);
    assert.equal(headers['grpc-status'], String(grpc.status.UNIMPLEMENTED));
    assert.equal(headers['grpc-message'], 'grpc: Decompressor is not installed for grpc-encoding "x"');
  });

  test(
    'the server enforces grpc-timeout itself: DEADLINE_EXCEEDED with no deadline on the client side',
    bounded,
    async () => {
      const aborted = once(observed, 'stall-aborted');
      const { headers } = await request(session, `/${service}/Stall`, framed(Buffer.alloc(0)), {
        'grpc-timeout': '50m',
      });
      assert.equal(headers['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED));
      assert.equal(headers['grpc-message'], 'Deadline exceeded');
      await aborted;
    },
  );

  test(
    'a streaming call whose grpc-timeout passes ends DEADLINE_EXCEEDED and its server call is cancelled',
    bounded,
    async () => {
      const cancelled = once(observed, 'hold-cancelled');
      const { headers } = await request(session, `/${service}/Hold`, framed(Buffer.from('x')), {
        'grpc-timeout': '50m',
      });
      assert.equal(headers['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED));
      assert.equal(headers['grpc-message'], 'Deadline exceeded');
      const [call] = (await cancelled) as [GrpcStreamCall];
      assert.equal(call.cancelled, true);
    },
  );

  test('a request that ends inside its message is INTERNAL "unexpected EOF"', bounded, async () => {
    const { headers } = await request(session, `/${service}/Echo`, framed(Buffer.from('abcdef')).subarray(0, 8));
    assert.equal(headers['grpc-status'], String(grpc.status.INTERNAL));
    assert.equal(headers['grpc-message'], 'grpc: error unmarshalling request: unexpected EOF');
  });
});

// ---- a raw socket speaking frames ----

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** A HEADERS frame's fields, decoded in arrival order; undefined when decoding failed. */
  fields?: Record<string, string>;
  hpackError?: string;
  /** Which socket read brought the frame: frames of one server write arrive in one read on loopback. */
  read: number;
}

/** An HPACK integer with an N-bit prefix after `pattern`'s high bits (RFC 7541, 5.1). */
function hpackInteger(pattern: number, prefixBits: number, value: number): number[] {
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

/** A header block of literals without indexing and with literal names: nothing enters a table. */
function headerBlock(fields: Record<string, string>): Buffer {
  const pieces: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    const nameBytes = Buffer.from(name, 'latin1');
    const valueBytes = Buffer.from(value, 'latin1');
    pieces.push(
      Buffer.from([0x00, ...hpackInteger(0, 7, nameBytes.length)]),
      nameBytes,
      Buffer.from(hpackInteger(0, 7, valueBytes.length)),
      valueBytes,
    );
  }
  return Buffer.concat(pieces);
}

const requestFields = (method: string, extra: Record<string, string> = {}) => ({
  ':method': 'POST',
  ':scheme': 'http',
  ':path': `/${service}/${method}`,
  ':authority': 'localhost',
  'content-type': 'application/grpc',
  te: 'trailers',
  ...extra,
});

function frameBytes(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

function settingsPayload(settings: Array<[number, number]>): Buffer {
  const payload = Buffer.alloc(6 * settings.length);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return payload;
}

function increment(bytes: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(bytes, 0);
  return payload;
}

/**
 * A client connection at the frame level. Frames are parsed as they arrive and HEADERS decoded in
 * order; `until` waits for a frame and fails once the socket has closed without one.
 */
class RawConnection {
  readonly frames: Frame[] = [];
  private readonly returned = new Set<Frame>();
  private input = Buffer.alloc(0);
  private readonly decoder = new HeaderDecoder();
  private readonly arrivals = new EventEmitter();
  private pings = 0;
  private reads = 0;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.arrivals.emit('change');
    });
    socket.on('error', () => socket.destroy());
  }

  /** Connects; unless `settings` is null, sends the client preface and SETTINGS carrying them. */
  static async open(port: number, settings: Array<[number, number]> | null = []): Promise<RawConnection> {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const connection = new RawConnection(socket);
    if (settings !== null)
      connection.write(Buffer.concat([http2Preface, frameBytes(FrameType.settings, 0, 0, settingsPayload(settings))]));
    return connection;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(type: number, flags: number, streamId: number, payload?: Buffer): void {
    this.write(frameBytes(type, flags, streamId, payload));
  }

  /** A whole request: HEADERS, then the framed message in DATA frames of at most 16 KiB, ending the stream. */
  request(streamId: number, method: string, message: Buffer, extra: Record<string, string> = {}): void {
    this.send(FrameType.headers, FrameFlag.endHeaders, streamId, headerBlock(requestFields(method, extra)));
    const body = framed(message);
    for (let at = 0; at < body.length; at += 16_384) {
      const end = Math.min(body.length, at + 16_384);
      this.send(FrameType.data, end === body.length ? FrameFlag.endStream : 0, streamId, body.subarray(at, end));
    }
  }

  /** The first frame, not returned before, that satisfies `match`; waits for it to arrive. */
  async until(what: string, match: (frame: Frame) => boolean): Promise<Frame> {
    for (;;) {
      const found = this.frames.find((frame) => !this.returned.has(frame) && match(frame));
      if (found !== undefined) {
        this.returned.add(found);
        return found;
      }
      if (this.closed) throw new Error(`the connection closed before ${what}`);
      await once(this.arrivals, 'change');
    }
  }

  /** One call answered on stream 1, so the server's response header entries are in our table first. */
  async prime(): Promise<void> {
    this.request(1, 'Echo', Buffer.from('prime the header table'));
    await this.until('the first trailers', endsStream(1));
  }

  /** Sends a PING and waits for its ACK: every frame the server wrote before reading it is in. */
  async barrier(): Promise<void> {
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(++this.pings, 4);
    this.send(FrameType.ping, 0, 0, payload);
    await this.until(
      'the PING ACK',
      (frame) => frame.type === FrameType.ping && (frame.flags & FrameFlag.ack) !== 0 && frame.payload.equals(payload),
    );
  }

  /** DATA bytes received on a stream so far, prefixes included. */
  dataOn(streamId: number): Buffer {
    return Buffer.concat(
      this.frames
        .filter((frame) => frame.type === FrameType.data && frame.streamId === streamId)
        .map((frame) => frame.payload),
    );
  }

  headersOn(streamId: number): Frame[] {
    return this.frames.filter((frame) => frame.type === FrameType.headers && frame.streamId === streamId);
  }

  /** Resolves when the server has closed its side. */
  async ended(): Promise<void> {
    while (!this.closed) await once(this.arrivals, 'change');
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.reads++;
    this.input = Buffer.concat([this.input, chunk]);
    let at = 0;
    while (this.input.length - at >= 9) {
      const length = this.input.readUIntBE(at, 3);
      if (this.input.length - at < 9 + length) break;
      const frame: Frame = {
        type: this.input[at + 3]!,
        flags: this.input[at + 4]!,
        streamId: this.input.readUInt32BE(at + 5) & 0x7fffffff,
        payload: Buffer.from(this.input.subarray(at + 9, at + 9 + length)),
        read: this.reads,
      };
      if (frame.type === FrameType.headers) this.decodeHeaders(frame);
      if (frame.type === FrameType.settings && (frame.flags & FrameFlag.ack) === 0)
        this.send(FrameType.settings, FrameFlag.ack, 0);
      this.frames.push(frame);
      at += 9 + length;
    }
    this.input = this.input.subarray(at);
    this.arrivals.emit('change');
  }

  private decodeHeaders(frame: Frame): void {
    assert.ok(frame.flags & FrameFlag.endHeaders, 'the server sends each header block in one frame');
    const fields: string[] = [];
    try {
      this.decoder.decode(frame.payload, fields);
    } catch (error) {
      frame.hpackError = error instanceof Error ? error.message : String(error);
      return;
    }
    frame.fields = {};
    for (let i = 0; i < fields.length; i += 2) frame.fields[fields[i]!] = fields[i + 1]!;
  }
}

const isGoAway = (frame: Frame) => frame.type === FrameType.goaway;
/** Matches a DATA frame of the stream once that stream has received at least `bytes` of DATA. */
const dataReaches = (connection: RawConnection, streamId: number, bytes: number) => (frame: Frame) =>
  frame.type === FrameType.data && frame.streamId === streamId && connection.dataOn(streamId).length >= bytes;
const endsStream = (streamId: number) => (frame: Frame) =>
  frame.type === FrameType.headers && frame.streamId === streamId && (frame.flags & FrameFlag.endStream) !== 0;

function goAwayOf(frame: Frame): { lastStreamId: number; code: number; reason: string } {
  return {
    lastStreamId: frame.payload.readUInt32BE(0) & 0x7fffffff,
    code: frame.payload.readUInt32BE(4),
    reason: frame.payload.subarray(8).toString('utf8'),
  };
}

/** The fields of a header frame, failing with the decoder's complaint when there were none. */
function fieldsOf(frame: Frame): Record<string, string> {
  assert.equal(frame.hpackError, undefined, 'the header block decodes');
  return frame.fields!;
}

/** A new connection answers a PING and a call: the server is still serving. */
async function stillServing(): Promise<void> {
  const connection = await RawConnection.open(server.port);
  try {
    await connection.barrier();
    connection.request(1, 'Echo', Buffer.from('still here'));
    const trailers = await connection.until('the trailers', endsStream(1));
    assert.equal(fieldsOf(trailers)['grpc-status'], '0');
    assert.deepEqual(connection.dataOn(1), framed(Buffer.from('still here')));
  } finally {
    connection.close();
  }
}

describe('protocol errors from a raw socket', () => {
  test('a bad connection preface gets GOAWAY PROTOCOL_ERROR and the socket is closed', bounded, async () => {
    const connection = await RawConnection.open(server.port, null);
    connection.write(Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    const goAway = goAwayOf(await connection.until('GOAWAY', isGoAway));
    assert.equal(goAway.code, Http2ErrorCode.protocolError);
    assert.equal(goAway.lastStreamId, 0);
    await connection.ended();
    await stillServing();
  });

  test('a frame header announcing more than 16,384 bytes gets GOAWAY FRAME_SIZE_ERROR', bounded, async () => {
    const connection = await RawConnection.open(server.port);
    const header = frameBytes(FrameType.data, 0, 1).subarray(0, 9);
    header.writeUIntBE(16_385, 0, 3);
    connection.write(header);
    const goAway = goAwayOf(await connection.until('GOAWAY', isGoAway));
    assert.equal(goAway.code, Http2ErrorCode.frameSizeError);
    await connection.ended();
    await stillServing();
  });

  test(
    'text after the preface reads as an oversized frame and gets GOAWAY, while a frame of exactly 16,384 bytes does not',
    bounded,
    async () => {
      const connection = await RawConnection.open(server.port);
      // An unknown frame type at the largest allowed size is read and ignored (RFC 9113, 4.1).
      connection.send(0xfa, 0, 0, Buffer.alloc(16_384));
      await connection.barrier();
      connection.write(Buffer.from('this is not a frame at all'));
      const goAway = goAwayOf(await connection.until('GOAWAY', isGoAway));
      assert.equal(goAway.code, Http2ErrorCode.frameSizeError);
      await connection.ended();
    },
  );

  /** RFC 9113's names for error codes: flowControlError reads FLOW_CONTROL_ERROR. */
  const errorNames = new Map<number, string>(
    Object.entries(Http2ErrorCode).map(([name, code]) => [
      code,
      name.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase(),
    ]),
  );
  for (const [what, bytes, code] of [
    ['DATA on stream 0', frameBytes(FrameType.data, 0, 0, Buffer.from('x')), Http2ErrorCode.protocolError],
    ['DATA on a stream never opened', frameBytes(FrameType.data, 0, 5, Buffer.from('x')), Http2ErrorCode.protocolError],
    [
      'HEADERS on an even stream',
      frameBytes(FrameType.headers, FrameFlag.endHeaders, 2, headerBlock(requestFields('Echo'))),
      Http2ErrorCode.protocolError,
    ],
    [
      'HEADERS opening a stream below the last one',
      frameBytes(FrameType.headers, FrameFlag.endHeaders, 1, headerBlock(requestFields('Echo'))),
      Http2ErrorCode.streamClosed,
    ],
    ['a PING of three bytes', frameBytes(FrameType.ping, 0, 0, Buffer.from('abc')), Http2ErrorCode.protocolError],
    [
      'CONTINUATION without HEADERS',
      frameBytes(FrameType.continuation, FrameFlag.endHeaders, 1, Buffer.alloc(0)),
      Http2ErrorCode.protocolError,
    ],
    [
      'a frame where a CONTINUATION is due',
      Buffer.concat([
        frameBytes(FrameType.headers, 0, 5, Buffer.alloc(0)),
        frameBytes(FrameType.ping, 0, 0, Buffer.alloc(8)),
      ]),
      Http2ErrorCode.protocolError,
    ],
    [
      'PUSH_PROMISE from a client',
      frameBytes(FrameType.pushPromise, FrameFlag.endHeaders, 1, Buffer.alloc(4)),
      Http2ErrorCode.protocolError,
    ],
    ['SETTINGS on a stream', frameBytes(FrameType.settings, 0, 1, Buffer.alloc(0)), Http2ErrorCode.protocolError],
    [
      'a connection WINDOW_UPDATE of 0',
      frameBytes(FrameType.windowUpdate, 0, 0, increment(0)),
      Http2ErrorCode.protocolError,
    ],
    [
      'SETTINGS_MAX_FRAME_SIZE below 16,384',
      frameBytes(FrameType.settings, 0, 0, settingsPayload([[Setting.maxFrameSize, 1_000]])),
      Http2ErrorCode.protocolError,
    ],
    [
      'a PRIORITY frame of four bytes',
      frameBytes(FrameType.priority, 0, 1, Buffer.alloc(4)),
      Http2ErrorCode.frameSizeError,
    ],
    ['SETTINGS of five bytes', frameBytes(FrameType.settings, 0, 0, Buffer.alloc(5)), Http2ErrorCode.frameSizeError],
    [
      'a WINDOW_UPDATE of three bytes',
      frameBytes(FrameType.windowUpdate, 0, 0, Buffer.alloc(3)),
      Http2ErrorCode.frameSizeError,
    ],
    [
      'SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1',
      frameBytes(FrameType.settings, 0, 0, settingsPayload([[Setting.initialWindowSize, 2 ** 31]])),
      Http2ErrorCode.flowControlError,
    ],
    [
      'a connection window grown past 2^31-1',
      frameBytes(FrameType.windowUpdate, 0, 0, increment(2 ** 31 - 1)),
      Http2ErrorCode.flowControlError,
    ],
  ] as const) {
    test(`${what} gets GOAWAY ${errorNames.get(code)} naming the last stream served`, bounded, async () => {
      const connection = await RawConnection.open(server.port);
      connection.request(1, 'Echo', Buffer.from('served'));
      await connection.until('the trailers', endsStream(1));
      connection.write(bytes);
      const goAway = goAwayOf(await connection.until('GOAWAY', isGoAway));
      assert.equal(goAway.code, code, goAway.reason);
      assert.equal(goAway.lastStreamId, 1);
      await connection.ended();
    });
  }

  test(
    'DATA after the client ended its stream resets that stream with STREAM_CLOSED and the connection goes on',
    bounded,
    async () => {
      const connection = await RawConnection.open(server.port);
      try {
        const started = once(observed, 'stall-started');
        connection.request(1, 'Stall', Buffer.alloc(0));
        await started;
        connection.send(FrameType.data, 0, 1, framed(Buffer.from('late')));
        const reset = await connection.until(
          'the RST_STREAM',
          (frame) => frame.type === FrameType.rstStream && frame.streamId === 1,
        );
        assert.equal(reset.payload.readUInt32BE(0), Http2ErrorCode.streamClosed);
        connection.request(3, 'Echo', Buffer.from('after'));
        assert.equal(fieldsOf(await connection.until('the trailers', endsStream(3)))['grpc-status'], '0');
      } finally {
        connection.close();
      }
    },
  );

  test('RST_STREAM on a stream never opened gets GOAWAY PROTOCOL_ERROR', bounded, async () => {
    const connection = await RawConnection.open(server.port);
    try {
      connection.send(FrameType.rstStream, 0, 7, increment(Http2ErrorCode.cancel));
      const goAway = goAwayOf(await connection.until('the GOAWAY', isGoAway));
      assert.equal(goAway.code, Http2ErrorCode.protocolError);
      await connection.ended();
    } finally {
      connection.close();
    }
    await stillServing();
  });

  test(
    "a client RST_STREAM on a unary call aborts its handler's signal and the connection goes on",
    bounded,
    async () => {
      const connection = await RawConnection.open(server.port);
      try {
        const started = once(observed, 'stall-started');
        const aborted = once(observed, 'stall-aborted');
        connection.request(1, 'Stall', Buffer.alloc(0));
        await started;
        connection.send(FrameType.rstStream, 0, 1, increment(Http2ErrorCode.cancel));
        await aborted;
        connection.request(3, 'Echo', Buffer.from('after the reset'));
        assert.equal(fieldsOf(await connection.until('the trailers', endsStream(3)))['grpc-status'], '0');
        assert.equal(connection.headersOn(1).length, 0, 'nothing is answered on a reset stream');
      } finally {
        connection.close();
      }
    },
  );

  test('a request ended by a trailers HEADERS frame rather than END_STREAM on DATA is served', bounded, async () => {
    const connection = await RawConnection.open(server.port);
    try {
      connection.send(FrameType.headers, FrameFlag.endHeaders, 1, headerBlock(requestFields('Echo')));
      connection.send(FrameType.data, 0, 1, framed(Buffer.from('with trailers')));
      connection.send(
        FrameType.headers,
        FrameFlag.endHeaders | FrameFlag.endStream,
        1,
        headerBlock({ 'x-client-trailer': 'yes' }),
      );
      assert.equal(fieldsOf(await connection.until('the trailers', endsStream(1)))['grpc-status'], '0');
      assert.deepEqual(connection.dataOn(1), framed(Buffer.from('with trailers')));
    } finally {
      connection.close();
    }
  });

  test('HPACK garbage in a HEADERS frame gets GOAWAY COMPRESSION_ERROR', bounded, async () => {
    for (const garbage of [Buffer.from([0xbf]), Buffer.from([0xff]), Buffer.from([0x00, 0x05, 0x61])]) {
      const connection = await RawConnection.open(server.port);
      connection.send(FrameType.headers, FrameFlag.endHeaders | FrameFlag.endStream, 1, garbage);
      const goAway = goAwayOf(await connection.until('GOAWAY', isGoAway));
      assert.equal(goAway.code, Http2ErrorCode.compressionError, `block ${garbage.toString('hex')}`);
      await connection.ended();
    }
    await stillServing();
  });

  test('a header block split over CONTINUATION frames is put back together', bounded, async () => {
    const connection = await RawConnection.open(server.port);
    try {
      const block = headerBlock(requestFields('Echo'));
      connection.send(FrameType.headers, 0, 1, block.subarray(0, 10));
      connection.send(FrameType.continuation, 0, 1, block.subarray(10, 30));
      connection.send(FrameType.continuation, FrameFlag.endHeaders, 1, block.subarray(30));
      connection.send(FrameType.data, FrameFlag.endStream, 1, framed(Buffer.from('continued')));
      assert.equal(fieldsOf(await connection.until('the trailers', endsStream(1)))['grpc-status'], '0');
      assert.deepEqual(connection.dataOn(1), framed(Buffer.from('continued')));
    } finally {
      connection.close();
    }
  });

  test('a padded HEADERS frame with priority and padded DATA are read without their padding', bounded, async () => {
    const connection = await RawConnection.open(server.port);
    try {
      const block = headerBlock(requestFields('Echo'));
      // Pad length 3, then 5 bytes of priority, the block and the padding.
      const headersPayload = Buffer.concat([Buffer.from([3]), Buffer.alloc(5), block, Buffer.alloc(3)]);
      connection.send(
        FrameType.headers,
        FrameFlag.endHeaders | FrameFlag.padded | FrameFlag.priority,
        1,
        headersPayload,
      );
      const dataPayload = Buffer.concat([Buffer.from([4]), framed(Buffer.from('padded')), Buffer.from('PADS')]);
      connection.send(FrameType.data, FrameFlag.endStream | FrameFlag.padded, 1, dataPayload);
      assert.equal(fieldsOf(await connection.until('the trailers', endsStream(1)))['grpc-status'], '0');
      assert.deepEqual(connection.dataOn(1), framed(Buffer.from('padded')));
    } finally {
      connection.close();
    }
  });
});

describe('PING at the frame level', () => {
  test(
    'an ACK waits for the answer in flight and leaves in the same write; alone it still leaves',
    bounded,
    async () => {
      const connection = await RawConnection.open(server.port);
      try {
        await connection.prime();
        const payload = Buffer.from('bdp-ping');
        connection.write(
          Buffer.concat([
            frameBytes(FrameType.headers, FrameFlag.endHeaders, 3, headerBlock(requestFields('EchoLater'))),
            frameBytes(FrameType.data, FrameFlag.endStream, 3, framed(Buffer.from('later'))),
            frameBytes(FrameType.ping, 0, 0, payload),
          ]),
        );
        const trailers = await connection.until('the trailers', endsStream(3));
        const ack = await connection.until(
          'the PING ACK',
          (frame) => frame.type === FrameType.ping && frame.flags === FrameFlag.ack && frame.payload.equals(payload),
        );
        assert.equal(ack.read, trailers.read, 'the ACK came with the answer, not in a write of its own');
        await connection.barrier();
      } finally {
        connection.close();
      }
    },
  );
});

describe('flow control and settings at the frame level', () => {
  test(
    "the server opens with SETTINGS and a connection WINDOW_UPDATE, and ACKs the client's SETTINGS",
    bounded,
    async () => {
      const connection = await RawConnection.open(server.port);
      try {
        const settings = await connection.until(
          'SETTINGS',
          (frame) => frame.type === FrameType.settings && frame.flags === 0,
        );
        const values = new Map<number, number>();
        for (let at = 0; at < settings.payload.length; at += 6)
          values.set(settings.payload.readUInt16BE(at), settings.payload.readUInt32BE(at + 2));
        assert.equal(values.get(Setting.initialWindowSize), 1 << 20);
        const update = await connection.until(
          'WINDOW_UPDATE',
          (frame) => frame.type === FrameType.windowUpdate && frame.streamId === 0,
        );
        assert.equal(update.payload.readUInt32BE(0), (16 << 20) - 65_535);
        await connection.until(
          'SETTINGS ACK',
          (frame) => frame.type === FrameType.settings && frame.flags === FrameFlag.ack,
        );
      } finally {
        connection.close();
      }
    },
  );

  test(
    'an answer stops where the connection window ends and a stream WINDOW_UPDATE alone does not move it',
    bounded,
    async () => {
      const connection = await RawConnection.open(server.port);
      try {
        await connection.prime();
        // The first answer took 27 bytes of the connection's 65,535.
        const left = 65_535 - 27;
        const message = patterned(200_000);
        connection.request(3, 'Echo', message);
        await connection.until('DATA filling the window', dataReaches(connection, 3, left));
        await connection.barrier();
        assert.equal(connection.dataOn(3).length, left, 'no more than the connection window');
        assert.equal(connection.headersOn(3).length, 1, 'response headers but no trailers yet');
        connection.send(FrameType.windowUpdate, 0, 3, increment(1_000_000));
        await connection.barrier();
        assert.equal(connection.dataOn(3).length, left, 'the connection window is still empty');
        connection.send(FrameType.windowUpdate, 0, 0, increment(100_000));
        await connection.until('DATA filling the window', dataReaches(connection, 3, left + 100_000));
        await connection.barrier();
        assert.equal(connection.dataOn(3).length, left + 100_000, 'exactly what the connection update allowed');
        connection.send(FrameType.windowUpdate, 0, 0, increment(1_000_000));
        assert.equal(fieldsOf(await connection.until('the trailers', endsStream(3)))['grpc-status'], '0');
        assert.deepEqual(connection.dataOn(3), framed(message));
        for (const frame of connection.frames)
          assert.ok(frame.payload.length <= 16_384, `a frame of ${frame.payload.length} bytes`);
      } finally {
        connection.close();
      }
    },
  );

  test(
    'an answer stops at the 65,535-byte stream window in frames of at most 16 KiB and goes on after stream WINDOW_UPDATEs',
    bounded,
    async () => {
      const connection = await RawConnection.open(server.port);
      try {
        // A connection window far larger than the answer: only the stream's window limits it.
        connection.send(FrameType.windowUpdate, 0, 0, increment(50_000_000));
        await connection.prime();
        const message = patterned(200_000);
        connection.request(3, 'Echo', message);
        await connection.until('DATA filling the window', dataReaches(connection, 3, 65_535));
        await connection.barrier();
        assert.equal(connection.dataOn(3).length, 65_535, 'no more than the default stream window');
        connection.send(FrameType.windowUpdate, 0, 3, increment(65_535));
        await connection.until('DATA filling the window', dataReaches(connection, 3, 2 * 65_535));
        await connection.barrier();
        assert.equal(connection.dataOn(3).length, 2 * 65_535, 'exactly what the stream update allowed');
        connection.send(FrameType.windowUpdate, 0, 3, increment(1_000_000));
        assert.equal(fieldsOf(await connection.until('the trailers', endsStream(3)))['grpc-status'], '0');
        assert.deepEqual(connection.dataOn(3), framed(message));
        const sizes = connection.frames
          .filter((frame) => frame.type === FrameType.data && frame.streamId === 3)
          .map((frame) => frame.payload.length);
        assert.ok(
          sizes.every((size) => size <= 16_384),
          `frame sizes ${sizes.join(', ')}`,
        );
        assert.ok(sizes.filter((size) => size === 16_384).length >= 10, 'long runs are split at the frame size');
      } finally {
        connection.close();
      }
    },
  );

  test(
    "the client's SETTINGS_INITIAL_WINDOW_SIZE bounds each stream and a later change moves open streams",
    bounded,
    async () => {
      const connection = await RawConnection.open(server.port, [[Setting.initialWindowSize, 1_000]]);
      try {
        await connection.prime();
        const message = patterned(5_000);
        connection.request(3, 'Echo', message);
        await connection.until('DATA filling the window', dataReaches(connection, 3, 1_000));
        await connection.barrier();
        assert.equal(connection.dataOn(3).length, 1_000);
        connection.send(FrameType.settings, 0, 0, settingsPayload([[Setting.initialWindowSize, 10_000]]));
        assert.equal(fieldsOf(await connection.until('the trailers', endsStream(3)))['grpc-status'], '0');
        assert.deepEqual(connection.dataOn(3), framed(message));
      } finally {
        connection.close();
      }
    },
  );

  test("the client's SETTINGS_MAX_FRAME_SIZE lets an answer go in one larger DATA frame", bounded, async () => {
    const connection = await RawConnection.open(server.port, [[Setting.maxFrameSize, 65_536]]);
    try {
      await connection.prime();
      const message = patterned(40_000);
      connection.request(3, 'Echo', message);
      assert.equal(fieldsOf(await connection.until('the trailers', endsStream(3)))['grpc-status'], '0');
      const data = connection.frames.filter((frame) => frame.type === FrameType.data && frame.streamId === 3);
      assert.deepEqual(
        data.map((frame) => frame.payload.length),
        [40_005],
      );
    } finally {
      connection.close();
    }
  });

  test("a request larger than the server's stream window gets WINDOW_UPDATEs for its stream", bounded, async () => {
    const connection = await RawConnection.open(server.port);
    try {
      const message = patterned(1_500_000);
      // The server's SETTINGS give each stream 1 MiB; sending more needs its WINDOW_UPDATE first.
      connection.send(FrameType.headers, FrameFlag.endHeaders, 1, headerBlock(requestFields('Echo')));
      const body = framed(message);
      const firstPart = 1 << 20;
      for (let at = 0; at < firstPart; at += 16_384)
        connection.send(FrameType.data, 0, 1, body.subarray(at, Math.min(firstPart, at + 16_384)));
      const update = await connection.until(
        'a stream WINDOW_UPDATE',
        (frame) => frame.type === FrameType.windowUpdate && frame.streamId === 1,
      );
      assert.ok(update.payload.readUInt32BE(0) >= 1 << 19, 'the update gives back at least half the window');
      for (let at = firstPart; at < body.length; at += 16_384) {
        const end = Math.min(body.length, at + 16_384);
        connection.send(FrameType.data, end === body.length ? FrameFlag.endStream : 0, 1, body.subarray(at, end));
      }
      connection.send(FrameType.windowUpdate, 0, 1, increment(10_000_000));
      connection.send(FrameType.windowUpdate, 0, 0, increment(10_000_000));
      assert.equal(fieldsOf(await connection.until('the trailers', endsStream(1)))['grpc-status'], '0');
      assert.ok(connection.dataOn(1).equals(body));
    } finally {
      connection.close();
    }
  });

  test(
    'a server-streaming call sends exactly what the windows allow and resumes on drain as both open',
    bounded,
    async () => {
      const connection = await RawConnection.open(server.port);
      try {
        const done = once(observed, 'flood-done');
        const count = 40;
        const size = 10_000;
        connection.request(1, 'Flood', Buffer.from(JSON.stringify({ count, size })));
        let granted = 65_535;
        for (let rounds = 0; rounds < 20; rounds++) {
          await connection.barrier();
          if (connection.frames.some(endsStream(1))) break;
          assert.equal(
            connection.dataOn(1).length,
            granted,
            `round ${rounds}: the server sends what the windows allow, then waits`,
          );
          connection.send(FrameType.windowUpdate, 0, 1, increment(65_535));
          connection.send(FrameType.windowUpdate, 0, 0, increment(65_535));
          granted += 65_535;
        }
        assert.equal(fieldsOf(await connection.until('the trailers', endsStream(1)))['grpc-status'], '0');
        const expected = Buffer.concat(Array.from({ length: count }, (_, i) => framed(floodMessage(i, size))));
        assert.ok(connection.dataOn(1).equals(expected), 'every message, in order');
        const [stats] = (await done) as [FloodStats];
        assert.ok(stats.drains >= 5, `drains: ${stats.drains}`);
      } finally {
        connection.close();
      }
    },
  );

  test('a server-streaming call waiting for drain resumes on stream WINDOW_UPDATEs alone', bounded, async () => {
    const connection = await RawConnection.open(server.port);
    try {
      // A connection window far larger than the answer: only the stream's window limits it.
      connection.send(FrameType.windowUpdate, 0, 0, increment(50_000_000));
      const count = 40;
      const size = 10_000;
      connection.request(1, 'Flood', Buffer.from(JSON.stringify({ count, size })));
      let granted = 65_535;
      for (let rounds = 0; rounds < 20; rounds++) {
        await connection.barrier();
        if (connection.frames.some(endsStream(1))) break;
        const received = connection.dataOn(1).length;
        assert.equal(received, granted, `round ${rounds}: the server sends what the window allows, then waits`);
        connection.send(FrameType.windowUpdate, 0, 1, increment(65_535));
        granted += 65_535;
      }
      assert.equal(fieldsOf(await connection.until('the trailers', endsStream(1)))['grpc-status'], '0');
      assert.equal(connection.dataOn(1).length, count * (size + 5));
    } finally {
      connection.close();
    }
  });

  test(
    'trailers queued behind flow control do not put header indexes on the wire ahead of their entries',
    bounded,
    async () => {
      // A stream window of 50 bytes: the 100-byte message of stream 1 waits, a 5-byte answer does not.
      const connection = await RawConnection.open(server.port, [[Setting.initialWindowSize, 50]]);
      try {
        connection.request(1, 'Flood', Buffer.from(JSON.stringify({ count: 1, size: 100 })));
        await connection.until(
          'the first response headers',
          (frame) => frame.type === FrameType.headers && frame.streamId === 1,
        );
        await connection.barrier();
        connection.request(3, 'Echo', Buffer.alloc(0));
        await connection.until('the unary trailers', endsStream(3));
        assert.deepEqual(connection.headersOn(3).map(fieldsOf), [
          { ':status': '200', 'content-type': 'application/grpc' },
          { 'grpc-status': '0' },
        ]);
        connection.send(FrameType.windowUpdate, 0, 1, increment(1_000));
        assert.equal(fieldsOf(await connection.until('the streaming trailers', endsStream(1)))['grpc-status'], '0');
      } finally {
        connection.close();
      }
    },
  );
});

describe('the GrpcHeaderEncoder read back by the HeaderDecoder', () => {
  function decode(decoder: HeaderDecoder, block: Buffer): string[] {
    const fields: string[] = [];
    decoder.decode(block, fields);
    return fields;
  }

  test('response headers and OK trailers decode the same each time and shrink to indexes after the first', () => {
    const encoder = new GrpcHeaderEncoder();
    const decoder = new HeaderDecoder();
    for (let round = 0; round < 4; round++) {
      const headers = encoder.responseHeaders();
      const trailers = encoder.okTrailers();
      assert.deepEqual(
        decode(decoder, headers),
        [':status', '200', 'content-type', 'application/grpc'],
        `round ${round}`,
      );
      assert.deepEqual(decode(decoder, trailers), ['grpc-status', '0'], `round ${round}`);
      if (round > 0) {
        assert.equal(headers.length, 2, 'two one-byte indexes');
        assert.equal(trailers.length, 1, 'one one-byte index');
      }
    }
  });

  test('trailers-only answers and status trailers carry their code, percent-encoded message and HTTP status', () => {
    const encoder = new GrpcHeaderEncoder();
    const decoder = new HeaderDecoder();
    assert.deepEqual(decode(decoder, encoder.trailersOnly(12, 'unknown service x')), [
      ':status',
      '200',
      'content-type',
      'application/grpc',
      'grpc-status',
      '12',
      'grpc-message',
      'unknown service x',
    ]);
    assert.deepEqual(decode(decoder, encoder.trailersOnly(13, 'bad "ç"', 415)), [
      ':status',
      '415',
      'content-type',
      'application/grpc',
      'grpc-status',
      '13',
      'grpc-message',
      'bad "%C3%A7"',
    ]);
    assert.deepEqual(decode(decoder, encoder.responseHeaders()), [
      ':status',
      '200',
      'content-type',
      'application/grpc',
    ]);
    assert.deepEqual(decode(decoder, encoder.statusTrailers(9, 'not now')), [
      'grpc-status',
      '9',
      'grpc-message',
      'not now',
    ]);
    assert.deepEqual(decode(decoder, encoder.statusTrailers(0, '')), ['grpc-status', '0']);
    assert.deepEqual(decode(decoder, encoder.trailersOnly(5, '')), [
      ':status',
      '200',
      'content-type',
      'application/grpc',
      'grpc-status',
      '5',
    ]);
    assert.deepEqual(decode(decoder, encoder.okTrailers()), ['grpc-status', '0']);
  });

  test('after peerTableBytes(0) the next block starts with a size update and nothing is indexed again', () => {
    const encoder = new GrpcHeaderEncoder();
    const decoder = new HeaderDecoder();
    decode(decoder, encoder.responseHeaders());
    decode(decoder, encoder.okTrailers());
    encoder.peerTableBytes(0);
    const first = encoder.responseHeaders();
    assert.equal(first[0], 0x20, 'a dynamic table size update to 0');
    assert.deepEqual(decode(decoder, first), [':status', '200', 'content-type', 'application/grpc']);
    // The decoder's table is now empty: an index into it would throw.
    for (let round = 0; round < 3; round++) {
      assert.deepEqual(decode(decoder, encoder.okTrailers()), ['grpc-status', '0']);
      const headers = encoder.responseHeaders();
      assert.notEqual(headers[0], 0x20, 'the size update is sent once');
      assert.deepEqual(decode(decoder, headers), [':status', '200', 'content-type', 'application/grpc']);
      assert.deepEqual(decode(decoder, encoder.trailersOnly(8, 'full')), [
        ':status',
        '200',
        'content-type',
        'application/grpc',
        'grpc-status',
        '8',
        'grpc-message',
        'full',
      ]);
    }
    // A fresh decoder told the same size reads every later block: they stand alone.
    const fresh = new HeaderDecoder();
    decode(fresh, Buffer.from([0x20]));
    assert.deepEqual(decode(fresh, encoder.responseHeaders()), [':status', '200', 'content-type', 'application/grpc']);
    assert.deepEqual(decode(fresh, encoder.okTrailers()), ['grpc-status', '0']);
  });

  test('a peer table at least the default size changes nothing', () => {
    const encoder = new GrpcHeaderEncoder();
    const decoder = new HeaderDecoder();
    decode(decoder, encoder.responseHeaders());
    encoder.peerTableBytes(4096);
    encoder.peerTableBytes(65_536);
    const headers = encoder.responseHeaders();
    assert.equal(headers.length, 2);
    assert.deepEqual(decode(decoder, headers), [':status', '200', 'content-type', 'application/grpc']);
  });

  test("a client's SETTINGS_HEADER_TABLE_SIZE of 0 reaches the encoder of its connection", bounded, async () => {
    const connection = await RawConnection.open(server.port, [[Setting.headerTableSize, 0]]);
    try {
      for (let stream = 1; stream <= 7; stream += 2) {
        connection.request(stream, 'Echo', Buffer.from(`call ${stream}`));
        await connection.until('the trailers', endsStream(stream));
        assert.deepEqual(connection.headersOn(stream).map(fieldsOf), [
          { ':status': '200', 'content-type': 'application/grpc' },
          { 'grpc-status': '0' },
        ]);
      }
      const firstBlock = connection.headersOn(1)[0]!.payload;
      assert.equal(firstBlock[0], 0x20, 'the first block tells the client its table is now empty');
    } finally {
      connection.close();
    }
  });
});

describe('listenClient with createGrpcServer on our own HTTP/2', () => {
  /** A protobuf varint, for the lengths of fields encoded by hand. */
  function varint(value: number): number[] {
    const bytes: number[] = [];
    while (value >= 0x80) {
      bytes.push((value & 0x7f) | 0x80);
      value = Math.floor(value / 0x80);
    }
    bytes.push(value);
    return bytes;
  }

  /** A length-delimited protobuf field: etcd's PutRequest key (1) and value (2), RangeRequest key (1). */
  function field(number: number, value: Buffer): Buffer {
    return Buffer.concat([Buffer.from([(number << 3) | 2, ...varint(value.length)]), value]);
  }

  let port: number;
  let close: () => Promise<void>;
  before(async () => {
    const grpcServer = createGrpcServer({ kv: new FakeKv(), logger: silent });
    const listener = await listenClient({
      host: '127.0.0.1',
      port: 0,
      grpcServer,
      http: { health: () => ({ health: true, reason: '' }) },
    });
    port = listener.port;
    close = () => listener.close();
  });
  after(async () => close());

  test('a Put and then a Range of the key come back through the real route table', bounded, async () => {
    const client = newClient(port);
    try {
      const value = Buffer.from('v'.repeat(100));
      await unary(client, '', Buffer.concat([field(1, Buffer.from('k')), field(2, value)]), {}, '/etcdserverpb.KV/Put');
      const range = await unary(client, '', field(1, Buffer.from('k')), {}, '/etcdserverpb.KV/Range');
      assert.ok(range.includes(value), 'the RangeResponse carries the value put');
      await assert.rejects(
        unary(client, '', Buffer.alloc(0), {}, '/etcdserverpb.KV/Nope'),
        status(grpc.status.UNIMPLEMENTED, 'unknown method Nope for service etcdserverpb.KV'),
      );
    } finally {
      client.close();
    }
  });

  test("a Range answer larger than one frame is answered as a connection's first call", bounded, async () => {
    const writer = newClient(port);
    const value = Buffer.from('w'.repeat(20_000));
    try {
      await unary(
        writer,
        '',
        Buffer.concat([field(1, Buffer.from('big')), field(2, value)]),
        {},
        '/etcdserverpb.KV/Put',
      );
    } finally {
      writer.close();
    }
    const reader = newClient(port);
    try {
      const range = await unary(reader, '', field(1, Buffer.from('big')), {}, '/etcdserverpb.KV/Range');
      assert.ok(range.includes(value));
    } finally {
      reader.close();
    }
  });
});
