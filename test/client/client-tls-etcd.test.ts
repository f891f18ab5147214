/**
 * Client TLS against real etcd: both members start with the same --cert-file, --key-file,
 * --trusted-ca-file and --client-cert-auth, and the same etcdctl and curl commands must succeed or
 * be refused alike. etcdctl's refusals carry timestamps, client ids and ports; only those are
 * normalised before comparing.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TlsConfig } from '../../src/config/config.js';
import { runCommand, runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';
import { curlTls, makeCertificates, tlsSkipReason, type TestCertificates } from '../support/tls.js';

/** A start that etcd refuses ends well within this. */
const refusalMsMax = 15_000;

const sut = sutCommand();
const skip = tlsSkipReason(sut);

let certs: TestCertificates;
let server: TlsConfig;
let client: TlsConfig;
let otherClient: TlsConfig;
const members: Member[] = [];

/** The one TLS 1.2 suite both members allow (--cipher-suites), and one they must refuse. */
const allowedSuite = { go: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', openssl: 'ECDHE-ECDSA-AES128-GCM-SHA256' };
const refusedSuite = 'ECDHE-ECDSA-AES256-GCM-SHA384';

/** A TLS 1.2 handshake offering only `cipher`; exit code 0 when the member accepts it. */
function handshakeTls12(endpoint: string, cipher: string): Promise<CommandResult> {
  const identity = ['-cert', client.certFile, '-key', client.keyFile, '-CAfile', server.trustedCaFile];
  const address = endpoint.replace('https://', '');
  return runCommand('openssl', ['s_client', '-connect', address, '-tls1_2', '-cipher', cipher, ...identity]);
}

/** curl trusting the test CA, with the client certificate when given. */
function curl(url: string, identity: TlsConfig | undefined, extra: string[] = []): Promise<CommandResult> {
  return curlTls(url, server.trustedCaFile, identity, extra);
}

/** A member serving https with --client-cert-auth and the one allowed cipher suite. */
async function startTlsMember(command: MemberCommand): Promise<void> {
  const extraFlags = ['--logger', 'zap', '--cipher-suites', allowedSuite.go];
  members.push(await Member.start({ command, clientTls: server, probeIdentity: client, extraFlags }));
}

/** etcdctl's refusal text without what differs between runs: times, client ids, ports. */
function normalise(text: string): string {
  return text
    .replace(/"ts":"[^"]*"/g, '"ts":"<ts>"')
    .replace(/client-[0-9a-f-]{36}/g, 'client-<id>')
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>');
}

/** Runs the same etcdctl command against both members; answers in member order. */
function bothEtcdctl(args: (member: Member) => string[]): Promise<CommandResult[]> {
  return Promise.all(members.map((member) => runEtcdctl(member.clientUrl, args(member))));
}

function tlsArgs(identity: TlsConfig | undefined): string[] {
  const base = ['--cacert', server.trustedCaFile, '--command-timeout=3s'];
  return identity === undefined ? base : [...base, '--cert', identity.certFile, '--key', identity.keyFile];
}

before(async () => {
  if (skip !== false) return;
  certs = makeCertificates();
  server = certs.member('server');
  client = certs.member('client');
  otherClient = certs.member('client', 'otherCa');
  await startTlsMember(etcdCommand());
  await startTlsMember(sut.command!);
});

after(async () => {
  for (const member of members) await member.destroy();
  certs?.remove();
});

describe('client TLS flags behave as in etcd 3.4', { skip }, () => {
  test('etcdctl with a certificate from the trusted CA puts and gets on both', async () => {
    const puts = await bothEtcdctl(() => [...tlsArgs(client), 'put', 'tls-key', 'tls-value']);
    for (const put of puts) assert.deepEqual([put.code, put.stdout], [0, 'OK\n'], put.stderr);
    const gets = await bothEtcdctl(() => [...tlsArgs(client), 'get', 'tls-key']);
    for (const get of gets) assert.deepEqual([get.code, get.stdout], [0, 'tls-key\ntls-value\n'], get.stderr);
  });

  test('etcdctl without a client certificate is refused by both, with the same error', async () => {
    const [etcd, ours] = await bothEtcdctl(() => [...tlsArgs(undefined), 'get', 'tls-key']);
    assert.notEqual(etcd!.code, 0);
    assert.deepEqual(
      { code: ours!.code, stdout: ours!.stdout, stderr: normalise(ours!.stderr) },
      { code: etcd!.code, stdout: etcd!.stdout, stderr: normalise(etcd!.stderr) },
    );
  });

  test('etcdctl with a certificate from another CA is refused by both, with the same error', async () => {
    const [etcd, ours] = await bothEtcdctl(() => [...tlsArgs(otherClient), 'get', 'tls-key']);
    assert.notEqual(etcd!.code, 0);
    assert.deepEqual(
      { code: ours!.code, stdout: ours!.stdout, stderr: normalise(ours!.stderr) },
      { code: etcd!.code, stdout: etcd!.stdout, stderr: normalise(etcd!.stderr) },
    );
  });

  test('a plaintext client on the https port is refused by both, and the port keeps serving', async () => {
    const results = await Promise.all(
      members.map((member) =>
        runEtcdctl(member.clientUrl.replace('https://', 'http://'), ['--command-timeout=3s', 'get', 'tls-key']),
      ),
    );
    const [etcd, ours] = results;
    assert.notEqual(etcd!.code, 0);
    assert.deepEqual(
      { code: ours!.code, stderr: normalise(ours!.stderr) },
      { code: etcd!.code, stderr: normalise(etcd!.stderr) },
    );
    const gets = await bothEtcdctl(() => [...tlsArgs(client), 'get', 'tls-key', '--print-value-only']);
    for (const get of gets) assert.deepEqual([get.code, get.stdout], [0, 'tls-value\n'], get.stderr);
  });

  test('curl with the CA and a client certificate reads /health on both; without a certificate both refuse', async () => {
    for (const member of members) {
      const health = await curl(`${member.clientUrl}/health`, client);
      assert.equal(health.code, 0, `${member.command.label}: ${health.stderr}`);
      assert.equal(JSON.parse(health.stdout).health, 'true', member.command.label);
    }
    // curl's exit code for a refused handshake depends on when the alert arrives (55 or 56 under
    // TLS 1.3, where the server checks the certificate after curl has sent its request), so only
    // the refusal itself is compared.
    for (const member of members) {
      const refused = await curl(`${member.clientUrl}/health`, undefined);
      assert.notEqual(refused.code, 0, member.command.label);
      assert.equal(refused.stdout, '', member.command.label);
    }
  });

  test('--cipher-suites limits TLS 1.2 to the listed suites on both', async () => {
    for (const member of members) {
      const accepted = await handshakeTls12(member.clientUrl, allowedSuite.openssl);
      assert.equal(accepted.code, 0, `${member.command.label}: ${accepted.stderr}`);
      const refused = await handshakeTls12(member.clientUrl, refusedSuite);
      assert.notEqual(refused.code, 0, `${member.command.label} accepted ${refusedSuite}`);
    }
  });

  test('the JSON gateway answers over https on both', async () => {
    const key = Buffer.from('tls-key').toString('base64');
    for (const member of members) {
      const range = await curl(`${member.clientUrl}/v3/kv/range`, client, ['-d', JSON.stringify({ key })]);
      assert.equal(range.code, 0, `${member.command.label}: ${range.stderr}`);
      const value = JSON.parse(range.stdout).kvs[0].value as string;
      assert.equal(Buffer.from(value, 'base64').toString(), 'tls-value', member.command.label);
    }
  });
});

/** Starts a member that should refuse to start; returns its exit status and the error of its last log line. */
async function refusedStart(
  command: MemberCommand,
  extra: string[],
): Promise<{ status: number | null; error: string }> {
  const member = await Member.create({ command, clientTls: 'https only', extraFlags: ['--logger', 'zap', ...extra] });
  try {
    const result = member.runUntilExit(refusalMsMax);
    const fatal = result.stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.level === 'fatal');
    return { status: result.status, error: normalise(String(fatal?.error)) };
  } finally {
    await member.destroy();
  }
}

describe('client TLS start-up errors match etcd 3.4', { skip }, () => {
  test('an https client URL without --cert-file and --key-file stops both with the same error and exit code', async () => {
    const etcd = await refusedStart(etcdCommand(), []);
    assert.equal(etcd.status, 1);
    assert.deepEqual(await refusedStart(sut.command!, []), etcd);
  });

  test('a missing certificate file stops both with the same error and exit code', async () => {
    const missing = ['--cert-file', join(certs.dir, 'absent.crt'), '--key-file', server.keyFile];
    const etcd = await refusedStart(etcdCommand(), missing);
    assert.equal(etcd.status, 1);
    assert.deepEqual(await refusedStart(sut.command!, missing), etcd);
  });

  test('a missing key file, a key not matching the certificate, a missing CA and an unknown cipher suite stop both alike', async () => {
    const pair = ['--cert-file', server.certFile, '--key-file', server.keyFile];
    const cases = [
      ['--cert-file', server.certFile, '--key-file', join(certs.dir, 'absent.key')],
      ['--cert-file', server.certFile, '--key-file', client.keyFile],
      [...pair, '--trusted-ca-file', join(certs.dir, 'absent-ca.crt')],
      [...pair, '--cipher-suites', `${allowedSuite.go},TLS_NO_SUCH_SUITE`],
    ];
    for (const flags of cases) {
      const etcd = await refusedStart(etcdCommand(), flags);
      assert.equal(etcd.status, 1, flags.join(' '));
      assert.deepEqual(await refusedStart(sut.command!, flags), etcd, flags.join(' '));
    }
  });
});
