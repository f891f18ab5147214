/**
 * tsetcdctl's security flags against etcdctl 3.4, both talking to the same real etcd: one member
 * serves https with --client-cert-auth (for --cacert, --cert, --key, --insecure-skip-tls-verify and
 * --insecure-transport), another plain http with authentication enabled by etcdctl itself (for
 * --user, --password and the password prompt). stdout, stderr and the exit code must agree once
 * clientv3's retry logs (timestamps, random client names) are dropped.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TlsConfig } from '../../src/config/config.js';
import { runCommand, runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, etcdctlBinaryPath, tsetcdctlBinPath } from '../support/sut.js';
import { makeCertificates, tlsSkipReason, type TestCertificates } from '../support/tls.js';

const skip = tlsSkipReason({ command: etcdCommand() });

let certs: TestCertificates;
let server: TlsConfig;
let client: TlsConfig;
let otherCa: TlsConfig;
let tlsMember: Member | undefined;
let tlsEndpoint = '';
let authMember: Member | undefined;

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Drops clientv3's retry warnings, which carry timestamps and random client names. */
function comparable(result: CommandResult): Outcome {
  return { code: result.code, stdout: result.stdout, stderr: result.stderr.replace(/^\{"level":"warn".*\n/gm, '') };
}

/** Runs the same command line through etcdctl and tsetcdctl; answers in that order. */
async function both(args: readonly string[], stdin?: string): Promise<[Outcome, Outcome]> {
  const env = { ETCDCTL_API: '3' };
  const [etcdctl, ours] = await Promise.all([
    runCommand(etcdctlBinaryPath, args, { env, ...(stdin === undefined ? {} : { stdin }) }),
    runCommand(process.execPath, [tsetcdctlBinPath, ...args], { env, ...(stdin === undefined ? {} : { stdin }) }),
  ]);
  return [comparable(etcdctl), comparable(ours)];
}

/** Asserts both clients answered alike, and that etcdctl answered as `expectedCode` says. */
async function agree(args: readonly string[], expectedCode: number, stdin?: string): Promise<Outcome> {
  const [etcdctl, ours] = await both(args, stdin);
  assert.equal(etcdctl.code, expectedCode, `etcdctl: ${etcdctl.stderr}`);
  assert.deepEqual(ours, etcdctl);
  return ours;
}

function identity(config: TlsConfig): string[] {
  return ['--cert', config.certFile, '--key', config.keyFile];
}

before(async () => {
  if (skip !== false) return;
  certs = makeCertificates();
  server = certs.member('server');
  client = certs.member('client');
  otherCa = certs.member('client', 'otherCa');
  tlsMember = await Member.start({ command: etcdCommand(), clientTls: server, probeIdentity: client });
  tlsEndpoint = tlsMember.clientUrl;
  authMember = await Member.start({ command: etcdCommand() });
  const endpoint = `127.0.0.1:${authMember.clientPort}`;
  for (const args of [
    ['user', 'add', 'root:secret'],
    ['auth', 'enable'],
    ['--user', 'root:secret', 'put', 'a', '1'],
  ]) {
    const result = await runEtcdctl(endpoint, args);
    assert.equal(result.code, 0, `etcdctl ${args.join(' ')}: ${result.stderr}`);
  }
});

after(async () => {
  await tlsMember?.destroy();
  await authMember?.destroy();
  certs?.remove();
});

describe('tsetcdctl TLS flags answer as etcdctl 3.4 does', { skip }, () => {
  const at = () => [`--endpoints=${tlsEndpoint}`, '--dial-timeout=1s', '--command-timeout=2s'];
  const trusted = () => [...at(), '--cacert', server.trustedCaFile, ...identity(client)];

  test('the trusted CA and a client certificate put and get over https', async () => {
    await agree([...trusted(), 'put', 'tls-key', 'tls-value'], 0);
    const get = await agree([...trusted(), 'get', 'tls-key'], 0);
    assert.equal(get.stdout, 'tls-key\ntls-value\n');
  });

  test('a bare host:port endpoint is dialled with TLS once a TLS file flag is given', async () => {
    const bare = tlsEndpoint.replace('https://', '');
    const args = [`--endpoints=${bare}`, '--cacert', server.trustedCaFile, ...identity(client), 'get', 'tls-key'];
    assert.equal((await agree(args, 0)).stdout, 'tls-key\ntls-value\n');
  });

  test('a server certificate from another CA is refused', async () => {
    const refused = await agree([...at(), '--cacert', otherCa.trustedCaFile, ...identity(client), 'get', 'x'], 1);
    assert.equal(refused.stderr, 'Error: context deadline exceeded\n');
  });

  test('an https endpoint without --cacert is checked against the system roots and refused', async () => {
    await agree([...at(), ...identity(client), 'get', 'x'], 1);
  });

  test('--insecure-skip-tls-verify skips the server check but still presents the certificate', async () => {
    await agree([...at(), '--insecure-skip-tls-verify', ...identity(client), 'get', 'tls-key'], 0);
    await agree([...at(), '--insecure-skip-tls-verify', 'get', 'tls-key'], 1);
  });

  test('the server refuses a client without a certificate', async () => {
    await agree([...at(), '--cacert', server.trustedCaFile, 'get', 'x'], 1);
  });

  test('bad TLS file flags stop the command with exit code 128 and etcdctl words', async () => {
    const ca = ['--cacert', server.trustedCaFile];
    const cases = [
      [...ca, '--cert', client.certFile],
      [...ca, '--cert', client.certFile, '--key', server.keyFile],
      [...ca, '--cert', client.certFile, '--key', join(certs.dir, 'absent.key')],
      ['--cacert', join(certs.dir, 'absent.crt')],
      ['--cacert', ''],
      [...ca, '--key', ''],
      ['--cacert', client.keyFile],
      [...ca, '--cert', client.keyFile, '--key', client.keyFile],
    ];
    for (const flags of cases) await agree([...at(), ...flags, 'get', 'x'], 128);
  });
});

describe('tsetcdctl --user and --password answer as etcdctl 3.4 does', { skip }, () => {
  const at = () => [`--endpoints=127.0.0.1:${authMember?.clientPort}`, '--command-timeout=3s'];

  test('a good password reads and writes', async () => {
    await agree([...at(), '--user', 'root:secret', 'put', 'b', '2'], 0);
    assert.equal((await agree([...at(), '--user', 'root:secret', 'get', 'a'], 0)).stdout, 'a\n1\n');
    assert.equal((await agree([...at(), '--user', 'root', '--password', 'secret', 'get', 'b'], 0)).stdout, 'b\n2\n');
  });

  test('a bad password or user is refused with exit code 2', async () => {
    const refused = await agree([...at(), '--user', 'root:wrong', 'get', 'a'], 2);
    assert.equal(refused.stderr, 'Error: etcdserver: authentication failed, invalid user ID or password\n');
    await agree([...at(), '--user', 'nobody:secret', 'put', 'a', '2'], 2);
    // With --password, the whole --user is the name.
    await agree([...at(), '--user', 'root:secret', '--password', 'secret', 'get', 'a'], 2);
  });

  test('without a user, or with an empty password, requests go unauthenticated and are refused', async () => {
    await agree([...at(), 'get', 'a'], 1);
    await agree([...at(), '--user', 'root:', 'get', 'a'], 1);
  });

  test('a user without a password is prompted for one on stdin', async () => {
    const good = await agree([...at(), '--user', 'root', 'get', 'a'], 0, 'secret\n');
    assert.equal(good.stdout, 'Password: \na\n1\n');
    await agree([...at(), '--user', 'root', 'get', 'a'], 2, 'wrong\n');
    await agree([...at(), '--user', 'root', 'get', 'a'], 1, '');
  });
});
