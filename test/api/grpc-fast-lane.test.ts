import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { listenClient, type ClientListener } from '../../actors/client-listener.js';
import { parseGrpcTimeout, percentEncode } from '../../actors/grpc-fast-lane.js';
import { createGrpcServer } from '../../actors/grpc-server.js';
import { FakeKv } from './fake-kv.js';

/** A Range that never answers while `stuck`, for the deadline test. */
class StuckKv extends FakeKv {
  stuck = false;

  override range(...args: Parameters<FakeKv['range']>): ReturnType<FakeKv['range']> {
    if (!this.stuck) return super.range(...args);
    return new Promise(() => {});
  }
}

let listener: ClientListener;
let endpoint: string;
const kv = new StuckKv();

/** One raw HTTP/2 gRPC call; returns the response headers, body and trailers as sent. */
function rawCall(path: string, message: Buffer, headers: Record<string, string> = {}, prefix?: Buffer): Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer; trailers: http2.IncomingHttpHeaders }> {
  const session = http2.connect(`http://${endpoint}`);
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (responseHeaders = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', reject);
    stream.on('close', () => {
      session.close();
      resolve({ headers: responseHeaders, body: Buffer.concat(chunks), trailers });
    });
    const head = prefix ?? Buffer.from([0, 0, 0, 0, 0]);
    if (prefix === undefined) head.writeUInt32BE(message.length, 1);
    stream.end(Buffer.concat([head, message]));
  });
}

before(async () => {
  const grpcServer = createGrpcServer({ kv, logger: pino({ level: 'silent' }) });
  listener = await listenClient({ host: '127.0.0.1', port: 0, grpcServer, http: { health: () => ({ health: true, reason: '' }) } });
  endpoint = `127.0.0.1:${listener.port}`;
});

after(async () => {
  await listener.close();
});

describe('unary calls on the fast lane', () => {
  test('a Range is answered with headers, one message and grpc-status 0 in the trailers', async () => {
    const { headers, body, trailers } = await rawCall('/etcdserverpb.KV/Range', Buffer.from([0x0a, 0x01, 0x61]));
    assert.equal(headers[':status'], 200);
    assert.equal(headers['content-type'], 'application/grpc');
    assert.equal(body[0], 0);
    assert.equal(body.readUInt32BE(1), body.length - 5);
    assert.equal(trailers['grpc-status'], '0');
  });

  test('a call whose grpc-timeout passes first answers DEADLINE_EXCEEDED and the server keeps serving', async () => {
    kv.stuck = true;
    const { headers } = await rawCall('/etcdserverpb.KV/Range', Buffer.from([0x0a, 0x01, 0x61]), { 'grpc-timeout': '50m' }).finally(() => (kv.stuck = false));
    assert.equal(headers['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED));
    assert.equal(headers['grpc-message'], 'Deadline exceeded');
    const health = await rawCall('/grpc.health.v1.Health/Check', Buffer.alloc(0));
    assert.equal(health.trailers['grpc-status'], '0');
  });

  test('a request whose prefix announces more than the limit is refused with grpc-go\'s text before it is read', async () => {
    const prefix = Buffer.from([0, 0, 0, 0, 0]);
    prefix.writeUInt32BE(64 * 1024 * 1024, 1);
    const { headers } = await rawCall('/etcdserverpb.KV/Put', Buffer.alloc(16), {}, prefix);
    assert.equal(headers['grpc-status'], String(grpc.status.RESOURCE_EXHAUSTED));
    assert.equal(headers['grpc-message'], `grpc: received message larger than max (${64 * 1024 * 1024} vs. ${1.5 * 1024 * 1024 + 512 * 1024})`);
  });

  test('a compressed flag without an encoding is refused as grpc-go refuses it', async () => {
    const { headers } = await rawCall('/etcdserverpb.KV/Range', Buffer.from([0x0a, 0x01, 0x61]), {}, Buffer.from([1, 0, 0, 0, 3]));
    assert.equal(headers['grpc-status'], String(grpc.status.INTERNAL));
    assert.equal(headers['grpc-message'], 'grpc: compressed flag set with identity or empty encoding');
  });

  test('a method without a fast-lane handler still reaches grpc-js, which answers UNIMPLEMENTED in its words', async () => {
    const { headers, trailers } = await rawCall('/etcdserverpb.Maintenance/Defragment', Buffer.alloc(0));
    assert.equal(headers['grpc-status'] ?? trailers['grpc-status'], String(grpc.status.UNIMPLEMENTED));
  });
});

describe('the fast lane\'s header codecs', () => {
  test('grpc-timeout units convert to whole milliseconds, malformed values to none', () => {
    assert.equal(parseGrpcTimeout('100m'), 100);
    assert.equal(parseGrpcTimeout('2S'), 2_000);
    assert.equal(parseGrpcTimeout('1H'), 3_600_000);
    assert.equal(parseGrpcTimeout('1500u'), 2);
    assert.equal(parseGrpcTimeout('5n'), 1);
    assert.equal(parseGrpcTimeout('123456789m'), undefined);
    assert.equal(parseGrpcTimeout('10x'), undefined);
    assert.equal(parseGrpcTimeout(undefined), undefined);
  });

  test('grpc-message keeps printable ASCII and percent-encodes the rest as UTF-8 bytes', () => {
    assert.equal(percentEncode('etcdserver: key not found'), 'etcdserver: key not found');
    assert.equal(percentEncode('100% sure'), '100%25 sure');
    assert.equal(percentEncode('naïve\n'), 'na%C3%AFve%0A');
  });
});
