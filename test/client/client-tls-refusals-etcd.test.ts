/**
 * Refused client TLS connections against real etcd 3.4.23: both members start with the same
 * certificates, --client-crl-file, --client-cert-allowed-hostname and --cipher-suites, and the
 * same etcdctl and openssl commands are refused or served alike. Each refusal is logged as etcd's
 * zap warning 'rejected connection' with the same field names; the error text itself is
 * OpenSSL's or ours where etcd's is Go's, so only its presence is compared.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { TlsConfig } from '../../src/config/config.js';
import { runCommand, runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';
import { makeCertificates, revoke, tlsSkipReason, type TestCertificates } from '../support/tls.js';

/** How long an openssl s_client handshake may take before it is killed. */
const handshakeMsMax = 5_000;
/** How often a member's log is read while waiting for a refusal to appear in it, and how many times. */
const logPollMs = 50;
const logPollsMax = 100;

const sut = sutCommand();
const skip = tlsSkipReason(sut);

let certs: TestCertificates;
let server: TlsConfig;
let client: TlsConfig;
let otherCa: TlsConfig;
let revoked: TlsConfig;
let elsewhere: TlsConfig;
/** etcd first, then the system under test. */
const members: Member[] = [];

const allowedSuite = 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256';

async function startMember(command: MemberCommand, crlFile: string): Promise<void> {
  const extraFlags = [
    '--logger',
    'zap',
    '--client-crl-file',
    crlFile,
    '--client-cert-allowed-hostname',
    'localhost',
    '--cipher-suites',
    allowedSuite,
  ];
  members.push(await Member.start({ command, clientTls: server, probeIdentity: client, extraFlags }));
}

before(async () => {
  if (skip !== false) return;
  certs = makeCertificates();
  server = certs.member('server');
  client = certs.member('client');
  otherCa = certs.member('client', 'otherCa');
  revoked = certs.member('revoked');
  elsewhere = certs.member('elsewhere', 'ca', ['DNS:other.example']);
  const crlFile = revoke(certs.dir, revoked.certFile);
  await startMember(etcdCommand(), crlFile);
  await startMember(sut.command!, crlFile);
});

after(async () => {
  for (const member of members) await member.destroy();
  certs?.remove();
});

/** The member's log lines that are 'rejected connection' warnings, parsed. */
function rejections(member: Member): Record<string, unknown>[] {
  return readFileSync(member.logPath, 'utf8')
    .split('\n')
    .filter((line) => line.includes('"rejected connection'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/**
 * Whether a rejection records the client giving up on the handshake (it sent an alert: Go says
 * 'remote error: tls: ...', OpenSSL '... alert ...') rather than the server refusing it. etcdctl
 * makes such attempts while it retries within its timeout, as many as the timing allows, so they
 * are left out of the comparison.
 */
function clientGaveUp(line: Record<string, unknown>): boolean {
  return typeof line.error === 'string' && /^remote error: tls: | alert /.test(line.error);
}

/** Waits until the member has logged more than `seen` rejections; returns the new ones. */
async function newRejections(member: Member, seen: number): Promise<Record<string, unknown>[]> {
  for (let poll = 0; poll < logPollsMax; poll++) {
    const lines = rejections(member);
    if (lines.length > seen) return lines.slice(seen);
    await new Promise((resolve) => setTimeout(resolve, logPollMs));
  }
  return [];
}

/**
 * Fields every line has that are not the refusal's: zap's ts and caller, and tsetcd's member
 * name, which it puts on every log line.
 */
const commonFields = ['level', 'ts', 'caller', 'msg', 'member'];

/** What a rejection line says that both members must share: level, message and field names. */
function shape(line: Record<string, unknown>, ignored: readonly string[]): string {
  const fields = Object.keys(line)
    .filter((key) => !commonFields.includes(key) && !ignored.includes(key))
    .sort();
  return JSON.stringify({ level: line.level, msg: line.msg, fields });
}

/** The distinct shapes of some rejection lines, leaving out the `ignored` fields. */
function shapes(lines: Record<string, unknown>[], ignored: readonly string[] = []): string[] {
  return [...new Set(lines.filter((line) => !clientGaveUp(line)).map((line) => shape(line, ignored)))].sort();
}

/** Runs `attempt` against each member; returns the results and the rejections each logged meanwhile. */
async function onBoth(
  attempt: (member: Member) => Promise<CommandResult>,
): Promise<{ results: CommandResult[]; logged: Record<string, unknown>[][] }> {
  const seen = members.map((member) => rejections(member).length);
  const results = await Promise.all(members.map(attempt));
  const logged = await Promise.all(members.map((member, index) => newRejections(member, seen[index]!)));
  return { results, logged };
}

function etcdctlWith(identity: TlsConfig | undefined, member: Member): Promise<CommandResult> {
  const tls = ['--cacert', server.trustedCaFile, '--command-timeout=2s'];
  const args = identity === undefined ? tls : [...tls, '--cert', identity.certFile, '--key', identity.keyFile];
  return runEtcdctl(member.clientUrl, [...args, 'put', 'k', 'v']);
}

/** etcdctl's refusal without what differs between runs: times, client ids, ports. */
function normalise(text: string): string {
  return text
    .replace(/"ts":"[^"]*"/g, '"ts":"<ts>"')
    .replace(/client-[0-9a-f-]{36}/g, 'client-<id>')
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>');
}

/**
 * Asserts both refused alike (exit code, output) and logged 'rejected connection' lines of the
 * same shape, leaving out the `ignored` fields.
 */
function assertRefusedAlike(
  outcome: { results: CommandResult[]; logged: Record<string, unknown>[][] },
  ignored: readonly string[] = [],
) {
  const [etcd, ours] = outcome.results as [CommandResult, CommandResult];
  const [etcdLog, ourLog] = outcome.logged as [Record<string, unknown>[], Record<string, unknown>[]];
  assert.notEqual(etcd.code, 0, 'etcd refused');
  assert.deepEqual(
    { code: ours.code, stdout: ours.stdout, stderr: normalise(ours.stderr) },
    { code: etcd.code, stdout: etcd.stdout, stderr: normalise(etcd.stderr) },
  );
  assert.ok(etcdLog.length > 0, 'etcd logged the refusal');
  // etcdctl retries within its timeout, so the number of lines may differ; their shapes may not.
  const errors = (lines: Record<string, unknown>[]) => JSON.stringify(lines.map((line) => line.error));
  assert.deepEqual(
    shapes(ourLog, ignored),
    shapes(etcdLog, ignored),
    `errors logged: tsetcd ${errors(ourLog)}, etcd ${errors(etcdLog)}`,
  );
  for (const line of ourLog) assert.equal(typeof line.error, 'string');
}

describe('refused client TLS connections are answered and logged as etcd 3.4 does', { skip }, () => {
  test('a certificate from the trusted CA, not revoked and valid for the allowed hostname, is served on both', async () => {
    for (const member of members) {
      const put = await etcdctlWith(client, member);
      assert.deepEqual([put.code, put.stdout], [0, 'OK\n'], `${member.command.label}: ${put.stderr}`);
    }
  });

  test('no client certificate', async () => {
    assertRefusedAlike(await onBoth((member) => etcdctlWith(undefined, member)));
  });

  test('a certificate from another CA', async () => {
    assertRefusedAlike(await onBoth((member) => etcdctlWith(otherCa, member)));
  });

  test('a certificate the --client-crl-file revokes', async () => {
    // etcd checks the CRL after Go's handshake and lists the certificate's names; OpenSSL checks it
    // inside the handshake and Node has dropped the certificate when it reports the refusal.
    assertRefusedAlike(await onBoth((member) => etcdctlWith(revoked, member)), ['ip-addresses', 'dns-names']);
  });

  test('a certificate not valid for --client-cert-allowed-hostname', async () => {
    assertRefusedAlike(await onBoth((member) => etcdctlWith(elsewhere, member)));
  });

  test('a plaintext client on the TLS port', async () => {
    assertRefusedAlike(
      await onBoth((member) =>
        runEtcdctl(member.clientUrl.replace('https://', 'http://'), ['--command-timeout=2s', 'put', 'k', 'v']),
      ),
    );
  });
});

/** An openssl s_client handshake at one TLS version with the valid client certificate. */
function handshake(member: Member, version: '-tls1_1' | '-tls1_3'): Promise<CommandResult> {
  const identity = ['-cert', client.certFile, '-key', client.keyFile, '-CAfile', server.trustedCaFile];
  const address = member.clientUrl.replace('https://', '');
  return runCommand('openssl', ['s_client', '-connect', address, version, ...identity], { timeoutMs: handshakeMsMax });
}

describe('TLS versions under --cipher-suites as in etcd 3.4', { skip }, () => {
  test('a TLS 1.1 client is refused by both, and both log it', async () => {
    const outcome = await onBoth((member) => handshake(member, '-tls1_1'));
    for (const result of outcome.results) assert.notEqual(result.code, 0);
    const [etcdLog, ourLog] = outcome.logged as [Record<string, unknown>[], Record<string, unknown>[]];
    assert.deepEqual(shapes(ourLog), shapes(etcdLog));
  });

  test('a TLS 1.3 client is accepted by both', async () => {
    for (const member of members) {
      const result = await handshake(member, '-tls1_3');
      assert.equal(result.code, 0, `${member.command.label}: ${result.stderr}`);
      assert.match(result.stdout, /TLSv1\.3/);
    }
  });
});
