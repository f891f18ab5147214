/**
 * With auth enabled and --client-cert-auth, a call that carries no token is made by the user the
 * common name of its verified client certificate names; a token, when given, wins; the JSON
 * gateway refuses a request whose certificate has a common name rather than take a name from it. Real etcd and tsetcd start with the same
 * TLS flags and must answer the same etcdctl and curl commands alike.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { TlsConfig } from '../../src/config/config.js';
import { gatewayTexts } from '../../src/api/errors.js';
import { hasOpenssl, makeCertificates, type TestCertificates } from '../peer/helpers.js';
import { runCommand, runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { freePorts, loopbackHost } from '../support/ports.js';
import { etcdBinaryPath, etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const startMsMax = 20_000;
const sut = sutCommand();
const skip = !existsSync(etcdBinaryPath)
  ? `${etcdBinaryPath} is not installed`
  : !hasOpenssl()
    ? 'openssl is not installed'
    : (sut.skipReason ?? false);

interface TlsMember {
  label: string;
  endpoint: string;
  child: ChildProcess;
  workDir: string;
}

let certs: TestCertificates;
let server: TlsConfig;
const identities: Record<string, TlsConfig> = {};
const members: TlsMember[] = [];

function curl(url: string, identity: TlsConfig, extra: string[] = []): Promise<CommandResult> {
  return runCommand('curl', [
    ...['-s', '--max-time', '5', '--cacert', server.trustedCaFile],
    ...['--cert', identity.certFile, '--key', identity.keyFile, ...extra, url],
  ]);
}

async function startTlsMember(command: MemberCommand): Promise<void> {
  const [clientPort, peerPort] = await freePorts(2);
  const workDir = mkdtempSync(join(tmpdir(), `tsetcd-auth-cn-${command.label}-`));
  const endpoint = `https://${loopbackHost}:${clientPort}`;
  const peerUrl = `http://${loopbackHost}:${peerPort}`;
  const flags = [
    ...['--data-dir', join(workDir, 'data'), '--bcrypt-cost', '4'],
    ...['--listen-client-urls', endpoint, '--advertise-client-urls', endpoint],
    ...[
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      `default=${peerUrl}`,
    ],
    ...['--cert-file', server.certFile, '--key-file', server.keyFile],
    ...['--trusted-ca-file', server.trustedCaFile, '--client-cert-auth'],
  ];
  const child = spawn(command.command, [...command.args, ...flags], { stdio: 'ignore' });
  members.push({ label: command.label, endpoint, child, workDir });
  const deadline = Date.now() + startMsMax;
  while (Date.now() < deadline) {
    assert.equal(child.exitCode, null, `${command.label} exited before serving https`);
    const health = await curl(`${endpoint}/health`, identities.root!);
    if (health.code === 0 && health.stdout.includes('"health":"true"')) return;
    await sleep(100);
  }
  throw new Error(`${command.label} did not answer /health over https within ${startMsMax} ms`);
}

/** etcdctl as the certificate's user (common name), with `args`, on every member in order. */
function asCertificate(name: string, ...args: string[]): Promise<CommandResult[]> {
  const identity = identities[name]!;
  const tls = ['--cacert', server.trustedCaFile, '--cert', identity.certFile, '--key', identity.keyFile];
  return Promise.all(members.map((member) => runEtcdctl(member.endpoint, [...tls, '--command-timeout=3s', ...args])));
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
    assert.equal(normalise(other), normalise(etcd!), `${members[index + 1]!.label} differs from etcd`);
  return etcd!;
}

before(async () => {
  if (skip !== false) return;
  certs = makeCertificates();
  server = certs.member('server');
  for (const name of ['root', 'alice', 'mallory']) identities[name] = certs.member(name);
  await startTlsMember(etcdCommand());
  await startTlsMember(sut.command!);
  for (const args of [
    ['user', 'add', 'root:rootpw'],
    ['user', 'grant-role', 'root', 'root'],
    ['user', 'add', 'alice:apw'],
    ['role', 'add', 'a-writer'],
    ['role', 'grant-permission', '--prefix', 'a-writer', 'readwrite', 'a/'],
    ['user', 'grant-role', 'alice', 'a-writer'],
    ['auth', 'enable'],
  ]) {
    for (const result of await asCertificate('root', ...args)) assert.equal(result.code, 0, result.stderr);
  }
});

after(async () => {
  for (const member of members) {
    if (member.child.exitCode === null) {
      const exited = new Promise((resolve) => member.child.once('exit', resolve));
      member.child.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000)]);
      if (member.child.exitCode === null) member.child.kill('SIGKILL');
    }
    rmSync(member.workDir, { recursive: true, force: true });
  }
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
      members.map((member) => curl(`${member.endpoint}/v3/kv/range`, identities.alice!, ['-X', 'POST', '-d', body])),
    );
    assert.equal(alike(answers).stdout, `${gatewayTexts.commonNameIgnored}\n`);
  });
});
