/**
 * --client-crl-file on the client port: a client certificate the CRL revokes is refused at the
 * handshake, another from the same CA is served, as etcd's TLS listener does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { listenClient, type ClientListener } from '../../actors/client/listener.js';
import { createGrpcServer } from '../../actors/client/grpc/router.js';
import { readClientTlsMaterial, serverTlsOptions } from '../../actors/client/tls.js';
import type { TlsConfig } from '../../src/config/config.js';
import { hasOpenssl, makeCertificates, revoke, type TestCertificates } from '../support/tls.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { FakeKv } from '../api/fake-kv.js';

const skip = hasOpenssl() ? false : 'openssl is not installed';
let certs: TestCertificates;
let listener: ClientListener;
let endpoint: string;
let revoked: TlsConfig;
let kept: TlsConfig;

before(async () => {
  if (skip) return;
  certs = makeCertificates();
  revoked = certs.member('revoked');
  kept = certs.member('kept');
  const server = certs.member('server');
  const material = readClientTlsMaterial({ ...server, crlFile: revoke(certs.dir, revoked.certFile) });
  listener = await listenClient({
    host: '127.0.0.1',
    port: 0,
    grpcServer: createGrpcServer({ kv: new FakeKv(), logger: pino({ level: 'silent' }) }),
    http: { health: () => ({ health: true, reason: '' }) },
    tls: serverTlsOptions(material),
  });
  endpoint = `https://127.0.0.1:${listener.port}`;
});

after(async () => {
  await listener?.close();
  certs?.remove();
});

function identity(config: TlsConfig): string[] {
  return ['--cacert', config.trustedCaFile, '--cert', config.certFile, '--key', config.keyFile];
}

describe('the client port with --client-crl-file', { skip }, () => {
  test('a revoked client certificate is refused and a valid one is served', async () => {
    const refused = await runEtcdctl(endpoint, [...identity(revoked), '--command-timeout=2s', 'put', 'k', 'v']);
    assert.notEqual(refused.code, 0, refused.stdout);
    const put = await runEtcdctl(endpoint, [...identity(kept), 'put', 'k', 'v']);
    assert.deepEqual([put.code, put.stdout], [0, 'OK\n'], put.stderr);
  });
});
