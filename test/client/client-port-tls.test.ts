/**
 * The client port over TLS: ALPN sends h2 to our own HTTP/2 and http/1.1 to the HTTP routes, on
 * the same listener, as members serve their https:// client URLs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { listenClient, type ClientListener } from '../../actors/client/listener.js';
import { createGrpcServer } from '../../actors/client/grpc/router.js';
import { hasOpenssl, makeCertificates, type TestCertificates } from '../support/tls.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { FakeKv } from '../api/fake-kv.js';

const skip = hasOpenssl() ? false : 'openssl is not installed';
let certs: TestCertificates;
let listener: ClientListener;
let endpoint: string;
let caFile: string;

before(async () => {
  if (skip) return;
  certs = makeCertificates();
  const files = certs.member('server');
  caFile = files.trustedCaFile;
  const grpcServer = createGrpcServer({ kv: new FakeKv(), logger: pino({ level: 'silent' }) });
  listener = await listenClient({
    host: '127.0.0.1',
    port: 0,
    grpcServer,
    http: { health: () => ({ health: true, reason: '' }) },
    tls: { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) },
  });
  endpoint = `https://127.0.0.1:${listener.port}`;
});

after(async () => {
  await listener?.close();
  certs?.remove();
});

describe('the client port over TLS', { skip }, () => {
  test('etcdctl puts and gets over https with the CA it is given', async () => {
    const put = await runEtcdctl(endpoint, ['--cacert', caFile, 'put', 'tls-key', 'tls-value']);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(put.stdout, 'OK\n');
    const get = await runEtcdctl(endpoint, ['--cacert', caFile, 'get', 'tls-key']);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, 'tls-key\ntls-value\n');
  });

  test('etcdctl without the CA fails its handshake and the port keeps serving', async () => {
    const refused = await runEtcdctl(endpoint, ['--command-timeout=2s', 'get', 'tls-key']);
    assert.notEqual(refused.code, 0);
    const get = await runEtcdctl(endpoint, ['--cacert', caFile, 'get', 'tls-key', '--print-value-only']);
    assert.equal(get.stdout, 'tls-value\n');
  });

  test('/health answers over https on the same port', async () => {
    const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = https.get(`${endpoint}/health`, { ca: readFileSync(caFile) }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      });
      request.on('error', reject);
    });
    assert.deepEqual(body, { status: 200, text: '{"health":"true","reason":""}' });
  });
});
