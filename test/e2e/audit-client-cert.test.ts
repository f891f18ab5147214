/**
 * The audit log on a member with --client-cert-auth and auth enabled: a gRPC call made without a
 * token by the holder of a verified client certificate is recorded under the certificate's common
 * name (identity_source "certificate"), allowed and refused calls alike; a handshake refused for a
 * certificate from an untrusted CA is recorded as denied, naming nobody; every line validates
 * against schemas/audit-event.schema.json.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TlsConfig } from '../../src/config/config.js';
import { tlsHandshakeMethod } from '../../src/audit/audit-record.js';
import { auditLineProblems } from '../support/audit-schema.js';
import { authSetupCommands, runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { sutCommand } from '../support/sut.js';
import { hasOpenssl, makeCertificates } from '../support/tls.js';

const sut = sutCommand();
const skip = sut.skipReason ?? (hasOpenssl() ? false : 'openssl is not installed');

interface AuditRecord {
  method: string;
  outcome: string;
  identity?: string;
  identity_source?: string;
  key?: string;
}

test('a client certificate names the caller of every audited gRPC call', { skip }, async () => {
  const certs = makeCertificates();
  const server = certs.member('server');
  const identity = (name: string): TlsConfig => certs.member(name);
  const auditPath = join(certs.dir, 'audit.jsonl');
  try {
    const started = await Member.start({
      command: sut.command!,
      clientTls: server,
      probeIdentity: identity('root'),
      extraFlags: ['--bcrypt-cost', '4', '--audit-log-path', auditPath],
    });
    const as = async (name: string, ...args: string[]) => {
      const tls = identity(name);
      const flags = ['--cacert', server.trustedCaFile, '--cert', tls.certFile, '--key', tls.keyFile];
      return runEtcdctl(started.clientUrl, [...flags, '--command-timeout=3s', ...args]);
    };
    try {
      for (const args of authSetupCommands()) assert.equal((await as('root', ...args)).code, 0, args.join(' '));
      assert.equal((await as('root', 'put', 'r/1', 'v')).code, 0);
      assert.equal((await as('alice', 'put', 'a/1', 'v')).code, 0);
      assert.notEqual((await as('alice', 'put', 'b/1', 'v')).code, 0);
      assert.notEqual((await as('alice', 'user', 'list')).code, 0);
      const stranger = certs.member('alice', 'otherCa');
      const refused = await runEtcdctl(started.clientUrl, [
        ...['--cacert', server.trustedCaFile, '--cert', stranger.certFile, '--key', stranger.keyFile],
        ...['--command-timeout=2s', '--dial-timeout=1s', 'get', 'a/1'],
      ]);
      assert.notEqual(refused.code, 0);
    } finally {
      await started.destroy();
    }
    const lines = readFileSync(auditPath, 'utf8')
      .split('\n')
      .filter((line) => line !== '');
    for (const line of lines) assert.deepEqual(auditLineProblems(line), [], line);
    const records = lines.map((line) => JSON.parse(line) as AuditRecord);
    const seen = (method: string, outcome: string, key?: string) =>
      records
        .filter((r) => r.method === method && r.outcome === outcome && (key === undefined || r.key === key))
        .map((r) => `${r.identity ?? '(none)'} by ${r.identity_source ?? '(none)'}`);
    assert.deepEqual(seen('/etcdserverpb.KV/Put', 'ok', 'r/1'), ['root by certificate']);
    assert.deepEqual(seen('/etcdserverpb.KV/Put', 'ok', 'a/1'), ['alice by certificate']);
    assert.deepEqual(seen('/etcdserverpb.KV/Put', 'denied', 'b/1'), ['alice by certificate']);
    assert.deepEqual(seen('/etcdserverpb.Auth/UserList', 'denied'), ['alice by certificate']);
    // A certificate from a CA the member does not trust: the handshake is refused and audited, naming nobody.
    const handshakes = records.filter((r) => r.method === tlsHandshakeMethod);
    assert.ok(handshakes.length > 0, 'expected a refused handshake in the audit log');
    assert.deepEqual(
      new Set(handshakes.map((r) => `${r.outcome} ${r.identity ?? '(none)'}`)),
      new Set(['denied (none)']),
    );
    // Before auth is enabled nobody is named: the certificate counts only once auth is on.
    assert.deepEqual(seen('/etcdserverpb.Auth/UserAdd', 'ok'), ['(none) by (none)', '(none) by (none)']);
  } finally {
    certs.remove();
  }
});
