/**
 * A client port bound with waitForServe (a member not yet published) accepts connections and
 * leaves them unread; serve() answers those that waited, over plain TCP and TLS alike, and close()
 * ends them. That nothing is answered before serve() is compared with etcd in
 * test/e2e/ready-order-etcd.test.ts.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { test } from 'node:test';
import { pino } from 'pino';
import { listenClient, type ClientListener } from '../../actors/client/listener.js';
import { createGrpcServer } from '../../actors/client/grpc/router.js';
import { FakeKv } from '../api/fake-kv.js';
import { readFileSync } from 'node:fs';
import { hasOpenssl, makeCertificates } from '../support/tls.js';

async function waitingListener(tls?: { key: Buffer; cert: Buffer }): Promise<ClientListener> {
  return listenClient({
    host: '127.0.0.1',
    port: 0,
    grpcServer: createGrpcServer({ kv: new FakeKv(), logger: pino({ level: 'silent' }) }),
    http: { health: () => ({ health: true, reason: '' }) },
    ...(tls === undefined ? {} : { tls }),
    waitForServe: true,
  });
}

/** Everything the socket receives until the server closes it. */
function received(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(text));
  });
}

const healthRequest = 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n';

test('a request sent before serve() is answered once serve() is called', async () => {
  const listener = await waitingListener();
  try {
    const socket = connect(listener.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const answer = received(socket);
    socket.write(healthRequest);
    listener.serve();
    assert.match(await answer, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\{"health":"true"\}$/);
  } finally {
    await listener.close();
  }
});

const tlsSkip = hasOpenssl() ? {} : { skip: 'openssl is not installed' };

test('a TLS client that connected before serve() completes its handshake after it', tlsSkip, async () => {
  const certificates = makeCertificates();
  const files = certificates.member('server');
  const listener = await waitingListener({ key: readFileSync(files.keyFile), cert: readFileSync(files.certFile) });
  try {
    const socket = tlsConnect({ port: listener.port, host: '127.0.0.1', ca: readFileSync(files.trustedCaFile) });
    const answer = received(socket);
    const secure = new Promise((resolve) => socket.once('secureConnect', resolve));
    socket.write(healthRequest);
    listener.serve();
    await secure;
    assert.match(await answer, /\{"health":"true"\}$/);
  } finally {
    await listener.close();
    certificates.remove();
  }
});

test('close() ends the connections still waiting', async () => {
  const listener = await waitingListener();
  const socket = connect(listener.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const answer = received(socket);
  socket.write(healthRequest);
  await listener.close();
  assert.equal(await answer, '');
});
