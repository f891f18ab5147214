/**
 * With auth enabled and --client-cert-auth, a call that carries no token is made by the user the
 * common name of its verified client certificate names; a token, when given, wins; the JSON
 * gateway refuses a request whose certificate has a common name rather than take a name from it. Real etcd and tsetcd start with the same
 * TLS flags and must answer the same etcdctl and curl commands alike.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TlsConfig } from '../../src/config/config.js';
import { gatewayTexts } from '../../src/api/errors.js';
import { authSetupCommands, runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand } from '../support/sut.js';
import { curlTls, makeCertificates, tlsSkipReason, type TestCertificates } from '../support/tls.js';

const sut = sutCommand();
const skip = tlsSkipReason(sut);

let certs: TestCertificates;
let server: TlsConfig;
const identities: Record<string, TlsConfig> = {};
const members: Member[] = [];

/** etcdctl as the certificate's user (common name), with `args`, on every member in order. */
function asCertificate(name: string, ...args: string[]): Promise<CommandResult[]> {
  const identity = identities[name]!;
  const tls = ['--cacert', server.trustedCaFile, '--cert', identity.certFile, '--key', identity.keyFile];
  return Promise.all(members.map((member) => runEtcdctl(member.clientUrl, [...tls, '--command-timeout=3s', ...args])));
}

function normalise(result: CommandResult): string {
  const text = `${String(result.code)}\n${result.stdout}\n${result.stderr}`;
  return text
    .replace(/"ts":"[^"]*"/g, '"ts":"<ts>"')
    .replace(/"target":"[^"]*"/g, '"target":<target>')
    .replace(/"(cluster_id|member_id|raft_term|revision)":"?\d+"?/g, '"$1":<$1>');
}

/** Every member answered as etcd (the first) did; returns etcd's answer. */
function alike(results: CommandResult[]): CommandResult {
  const [etcd, ...others] = results;
  for (const [index, other] of others.entries())
    assert.equal(normalise(other), normalise(etcd!), `${members[index + 1]!.command.label} differs from etcd`);
  return etcd!;
}

before(async () => {
  if (skip !== false) return;
  certs = makeCertificates();
  server = certs.member('server');
  for (const name of ['root', 'alice', 'mallory']) identities[name] = certs.member(name);
  for (const command of [etcdCommand(), sut.command!])
    members.push(
      await Member.start({
        command,
        clientTls: server,
        probeIdentity: identities.root!,
        extraFlags: ['--bcrypt-cost', '4'],
      }),
    );
  for (const args of authSetupCommands()) {
    for (const result of await asCertificate('root', ...args)) assert.equal(result.code, 0, result.stderr);
  }
});

after(async () => {
  for (const member of members) await member.destroy();
  certs?.remove();
});

describe('a client certificate names the user when no token is given', { skip }, () => {
  test("alice's certificate writes what alice may and nothing else", async () => {
    assert.equal(alike(await asCertificate('alice', 'put', 'a/1', 'v')).stdout, 'OK\n');
    assert.equal(alike(await asCertificate('alice', 'get', 'a/1', '--print-value-only')).stdout, 'v\n');
    assert.match(alike(await asCertificate('alice', 'put', 'b', 'v')).stderr, /etcdserver: permission denied/);
    assert.match(alike(await asCertificate('alice', 'user', 'list')).stderr, /etcdserver: permission denied/);
  });

  test('a certificate naming no user is refused, and a token wins over the certificate', async () => {
    assert.match(alike(await asCertificate('mallory', 'get', 'a/1')).stderr, /etcdserver: permission denied/);
    assert.equal(alike(await asCertificate('mallory', '--user', 'root:rootpw', 'put', 'b', 'v')).stdout, 'OK\n');
    assert.match(
      alike(await asCertificate('root', '--user', 'alice:apw', 'put', 'c', 'v')).stderr,
      /permission denied/,
    );
  });

  test('the JSON gateway refuses a named certificate rather than take the caller from it', async () => {
    const body = JSON.stringify({ key: Buffer.from('a/1').toString('base64') });
    const answers = await Promise.all(
      members.map((member) =>
        curlTls(`${member.clientUrl}/v3/kv/range`, server.trustedCaFile, identities.alice!, ['-X', 'POST', '-d', body]),
      ),
    );
    assert.equal(alike(answers).stdout, `${gatewayTexts.commonNameIgnored}\n`);
  });
});
