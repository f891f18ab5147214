/**
 * --client-cert-allowed-hostname on the client port: a client certificate must be valid for the
 * hostname (the test certificates carry DNS:localhost), else the connection is closed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { listenClient, type ClientListener } from '../../actors/client/listener.js';
import { createGrpcServer } from '../../actors/client/grpc/router.js';
import { allowedHostnameCheck, readClientTlsMaterial, serverTlsOptions } from '../../actors/client/tls.js';
import type { TlsConfig } from '../../src/config/config.js';
import { hasOpenssl, makeCertificates, type TestCertificates } from '../support/tls.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { FakeKv } from '../api/fake-kv.js';

const skip = hasOpenssl() ? false : 'openssl is not installed';
let certs: TestCertificates;
let client: TlsConfig;
const listeners: ClientListener[] = [];

/** A TLS client port that demands client certificates valid for `allowedHostname`; returns its endpoint. */
async function listenWithHostname(allowedHostname: string): Promise<string> {
  const server = { ...certs.member('server'), allowedHostname };
  const acceptClient = allowedHostnameCheck(server);
  const listener = await listenClient({
    host: '127.0.0.1',
    port: 0,
    grpcServer: createGrpcServer({ kv: new FakeKv(), logger: pino({ level: 'silent' }) }),
    http: { health: () => ({ health: true, reason: '' }) },
    tls: serverTlsOptions(readClientTlsMaterial(server)),
    ...(acceptClient === undefined ? {} : { acceptClient }),
  });
  listeners.push(listener);
  return `https://127.0.0.1:${listener.port}`;
}

before(() => {
  if (skip) return;
  certs = makeCertificates();
  client = certs.member('client');
});

after(async () => {
  for (const listener of listeners) await listener.close();
  certs?.remove();
});

function put(endpoint: string) {
  const identity = ['--cacert', client.trustedCaFile, '--cert', client.certFile, '--key', client.keyFile];
  return runEtcdctl(endpoint, [...identity, '--command-timeout=2s', 'put', 'k', 'v']);
}

describe('the client port with --client-cert-allowed-hostname', { skip }, () => {
  test('a client certificate valid for the allowed hostname is served', async () => {
    const result = await put(await listenWithHostname('localhost'));
    assert.deepEqual([result.code, result.stdout], [0, 'OK\n'], result.stderr);
  });

  test('a client certificate not valid for the allowed hostname is refused', async () => {
    const result = await put(await listenWithHostname('other.example'));
    assert.notEqual(result.code, 0, result.stdout);
  });
});
