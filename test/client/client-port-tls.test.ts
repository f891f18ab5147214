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
import { DashboardFeed } from '../../actors/client/dashboard.js';

const skip = hasOpenssl() ? false : 'openssl is not installed';
let certs: TestCertificates;
let listener: ClientListener;
let endpoint: string;
let caFile: string;
/** The dashboard as a member serves it, over a view with no members. */
const dashboard = new DashboardFeed({
  memberId: '1',
  clusterView: async () => ({ observer: '1', atMs: Date.now(), members: [] }),
  timeline: { subscribe: () => () => undefined },
});

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
    http: { health: () => ({ health: true, reason: '' }), routes: dashboard.routes() },
    tls: { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) },
  });
  endpoint = `https://127.0.0.1:${listener.port}`;
});

after(async () => {
  dashboard.close();
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
    const body = await httpsGet(`${endpoint}/health`);
    assert.deepEqual(body, { status: 200, text: '{"health":"true"}' });
  });

  test('/dashboard answers over https on the same port', async () => {
    const page = await httpsGet(`${endpoint}/dashboard`);
    assert.equal(page.status, 200);
    assert.match(page.text, /<title>tsetcd dashboard<\/title>/);
  });
});

/** A GET over https trusting the test CA; the whole answer. */
function httpsGet(url: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = https.get(url, { ca: readFileSync(caFile) }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    request.on('error', reject);
  });
}
