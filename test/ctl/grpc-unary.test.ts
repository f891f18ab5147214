/**
 * tsetcdctl's unary gRPC client (ctl/grpc-unary.ts over ctl/http2-client.ts) against Node's own
 * HTTP/2 server on loopback, answering as a gRPC server does: an echo of the request message, a
 * trailers-only error and a call left unanswered. The client must fail over past a refused
 * endpoint, move messages larger than every flow-control window both ways, report the status and
 * its percent-encoded message, end a call at its deadline, and cancel one whose signal aborted
 * before it started.
 */
import assert from 'node:assert/strict';
import { createServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { GrpcStatusError, UnaryChannel, grpcFrameHeaderBytes, grpcStatus } from '../../ctl/grpc-unary.js';

/** An echo of what the client sent, or the answer a path names. */
function answer(stream: ServerHttp2Stream, path: string, body: Buffer): void {
  if (path === '/test.Service/Fail') {
    stream.respond(
      {
        ':status': 200,
        'content-type': 'application/grpc',
        'grpc-status': '9',
        'grpc-message': 'etcdserver: %C3%A9 bad',
      },
      { endStream: true },
    );
    return;
  }
  if (path === '/test.Service/Hang') return;
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(body);
}

function serve(server: Http2Server): void {
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => answer(stream, String(headers[':path']), Buffer.concat(chunks)));
    stream.on('error', () => undefined);
  });
}

let tcpServer: Http2Server;
let unixServer: Http2Server;
let workDir = '';
let port = 0;

before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'tsetcd-grpc-unary-'));
  tcpServer = createServer();
  unixServer = createServer();
  serve(tcpServer);
  serve(unixServer);
  await new Promise<void>((resolve) => tcpServer.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => unixServer.listen(join(workDir, 'socket'), resolve));
  port = (tcpServer.address() as AddressInfo).port;
});

after(async () => {
  await new Promise((resolve) => tcpServer.close(resolve));
  await new Promise((resolve) => unixServer.close(resolve));
  await rm(workDir, { recursive: true, force: true });
});

/** A framed request whose message is `messageBytes` bytes of `fill`. */
function request(messageBytes: number, fill: number): Uint8Array {
  return new Uint8Array(grpcFrameHeaderBytes + messageBytes).fill(fill, grpcFrameHeaderBytes);
}

const generousMs = 20_000;

test('a call skips a refused endpoint and gets its answer from the next one', async () => {
  const channel = new UnaryChannel(['127.0.0.1:1', `127.0.0.1:${port}`]);
  try {
    const answerBytes = await channel.call('/test.Service/Echo', request(10, 3), { token: 't' }, generousMs);
    assert.deepEqual(answerBytes, Buffer.alloc(10, 3));
  } finally {
    channel.close();
  }
});

test('messages over every flow-control window go both ways, on a unix socket too', async () => {
  for (const endpoint of [`http://127.0.0.1:${port}`, `unix://${join(workDir, 'socket')}`]) {
    const channel = new UnaryChannel([endpoint]);
    try {
      const messageBytes = 3 * 1024 * 1024 + 7;
      const answerBytes = await channel.call('/test.Service/Echo', request(messageBytes, 7), {}, generousMs);
      assert.equal(answerBytes.length, messageBytes);
      assert.equal(
        answerBytes.every((byte) => byte === 7),
        true,
      );
      // The connection stays usable after it.
      assert.deepEqual(await channel.call('/test.Service/Echo', request(2, 1), {}, generousMs), Buffer.alloc(2, 1));
    } finally {
      channel.close();
    }
  }
});

test('a status other than OK fails the call with its code and decoded message', async () => {
  const channel = new UnaryChannel([`127.0.0.1:${port}`]);
  try {
    await assert.rejects(
      channel.call('/test.Service/Fail', request(1, 0), {}, generousMs),
      (error: unknown) => error instanceof GrpcStatusError && error.code === 9 && error.details === 'etcdserver: é bad',
    );
  } finally {
    channel.close();
  }
});

test('a call the server never answers ends at its deadline', async () => {
  const channel = new UnaryChannel([`127.0.0.1:${port}`]);
  try {
    await assert.rejects(
      channel.call('/test.Service/Hang', request(1, 0), {}, 200),
      (error: unknown) => error instanceof GrpcStatusError && error.code === grpcStatus.deadlineExceeded,
    );
  } finally {
    channel.close();
  }
});

test('a call whose signal aborted before it started is cancelled, not left to its deadline', async () => {
  // As a lock or election call is when the signal comes while the command authenticates.
  const channel = new UnaryChannel([`127.0.0.1:${port}`]);
  try {
    await assert.rejects(
      channel.call('/test.Service/Hang', request(1, 0), {}, generousMs, AbortSignal.abort()),
      (error: unknown) => error instanceof GrpcStatusError && error.code === grpcStatus.cancelled,
    );
  } finally {
    channel.close();
  }
});

test('a server that closes connections before speaking HTTP/2 counts as unreachable until the deadline', async () => {
  // As a TLS server does that refuses the client's certificate after the handshake.
  const closer = createTcpServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => closer.listen(0, '127.0.0.1', resolve));
  const channel = new UnaryChannel([`127.0.0.1:${(closer.address() as AddressInfo).port}`]);
  try {
    await assert.rejects(
      channel.call('/test.Service/Echo', request(1, 0), {}, 300),
      (error: unknown) => error instanceof GrpcStatusError && error.code === grpcStatus.deadlineExceeded,
    );
  } finally {
    channel.close();
    await new Promise((resolve) => closer.close(resolve));
  }
});
