/**
 * --auto-tls and --peer-auto-tls against real etcd: both members start with https client and peer
 * URLs and no certificate files; each must write a self-signed certificate under
 * <data-dir>/fixtures/{client,peer} that openssl describes alike once serial, dates, key and
 * signature are masked, and serve etcdctl over it. The rest (reuse on restart, the warning when
 * files are given) is checked on applyAutoTls directly.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { applyAutoTls } from '../../actors/supervisor/auto-tls.js';
import type { Logger } from '../../actors/shared/logger.js';
import { loadConfig } from '../../src/config/config.js';
import { hasOpenssl } from '../peer/helpers.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { freePorts, loopbackHost } from '../support/ports.js';
import { etcdBinaryPath, etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const startMsMax = 20_000;
const sut = sutCommand();
const skip = !existsSync(etcdBinaryPath)
  ? `${etcdBinaryPath} is not installed`
  : !hasOpenssl()
    ? 'openssl is not installed'
    : (sut.skipReason ?? false);

interface AutoTlsMember {
  label: string;
  endpoint: string;
  dataDir: string;
  child: ChildProcess;
  workDir: string;
}

const members: AutoTlsMember[] = [];
/** etcdctl trusts a self-signed member only when told to skip verification over TLS. */
const insecureTls = ['--insecure-transport=false', '--insecure-skip-tls-verify', '--command-timeout=3s'];

async function startAutoTlsMember(command: MemberCommand): Promise<AutoTlsMember> {
  const [clientPort, peerPort] = await freePorts(2);
  const workDir = mkdtempSync(join(tmpdir(), `tsetcd-auto-tls-${command.label}-`));
  const dataDir = join(workDir, 'data');
  const endpoint = `https://${loopbackHost}:${clientPort}`;
  const peerUrl = `https://${loopbackHost}:${peerPort}`;
  const flags = [
    ...['--logger', 'zap', '--data-dir', dataDir],
    ...['--listen-client-urls', endpoint, '--advertise-client-urls', endpoint],
    ...['--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl],
    ...['--initial-cluster', `default=${peerUrl}`, '--auto-tls', '--peer-auto-tls'],
  ];
  const child = spawn(command.command, [...command.args, ...flags], { stdio: 'ignore' });
  const member = { label: command.label, endpoint, dataDir, child, workDir };
  members.push(member);
  const deadline = Date.now() + startMsMax;
  while (Date.now() < deadline) {
    assert.equal(child.exitCode, null, `${command.label} exited before serving`);
    if ((await runEtcdctl(endpoint, [...insecureTls, 'endpoint', 'health'])).code === 0) return member;
    await sleep(100);
  }
  throw new Error(`${command.label} did not serve over auto TLS within ${startMsMax} ms`);
}

/** openssl's description of a certificate without what is random or time-dependent. */
function describeCertificate(path: string): string {
  const text = execFileSync('openssl', ['x509', '-in', path, '-noout', '-text'], { encoding: 'utf8' });
  return text
    .replace(/(Serial Number:)\n?.*\n/, '$1 <serial>\n')
    .replace(/(Not (Before|After) ?:).*/g, '$1 <time>')
    .replace(/(pub:|Signature Value:)\n(\s+[0-9a-f:]+\n)+/g, '$1 <bytes>\n');
}

before(async () => {
  if (skip !== false) return;
  await startAutoTlsMember(etcdCommand());
  await startAutoTlsMember(sut.command!);
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
});

describe('--auto-tls and --peer-auto-tls generate certificates as etcd 3.4 does', { skip }, () => {
  test('both write client and peer certificates that openssl describes alike', () => {
    const [etcd, ours] = members;
    for (const side of ['client', 'peer']) {
      const expected = describeCertificate(join(etcd!.dataDir, 'fixtures', side, 'cert.pem'));
      assert.match(expected, /Subject: O = etcd/);
      assert.equal(describeCertificate(join(ours!.dataDir, 'fixtures', side, 'cert.pem')), expected, side);
      assert.match(readFileSync(join(ours!.dataDir, 'fixtures', side, 'key.pem'), 'utf8'), /BEGIN EC PRIVATE KEY/);
    }
  });

  test('etcdctl puts and gets over the generated client certificate on both', async () => {
    for (const member of members) {
      const put = await runEtcdctl(member.endpoint, [...insecureTls, 'put', 'auto', 'tls']);
      assert.deepEqual([put.code, put.stdout], [0, 'OK\n'], `${member.label}: ${put.stderr}`);
      const get = await runEtcdctl(member.endpoint, [...insecureTls, 'get', 'auto', '--print-value-only']);
      assert.deepEqual([get.code, get.stdout], [0, 'tls\n'], `${member.label}: ${get.stderr}`);
    }
  });

  test('a client that verifies the server refuses the self-signed certificate on both', async () => {
    for (const member of members) {
      const refused = await runEtcdctl(member.endpoint, ['--command-timeout=2s', '--dial-timeout=1s', 'get', 'auto']);
      assert.notEqual(refused.code, 0, member.label);
    }
  });
});

/** A logger that keeps what was written. */
function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const record = (first: unknown, second?: unknown) =>
    void lines.push(typeof first === 'string' ? first : `${String(second)} ${JSON.stringify(first)}`);
  const logger = { info: record, warn: record, debug: record, error: record } as unknown as Logger;
  return { logger, lines };
}

describe('applyAutoTls', { skip: hasOpenssl() ? false : 'openssl is not installed' }, () => {
  test('reuses the certificate on restart and warns, without generating, when files are given', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tsetcd-auto-tls-unit-'));
    try {
      const { config } = loadConfig({
        argv: [
          '--data-dir',
          dataDir,
          '--auto-tls',
          '--peer-auto-tls',
          '--peer-cert-file',
          'p.crt',
          '--peer-key-file',
          'p.key',
        ],
        env: {},
      });
      const first = recordingLogger();
      const generated = applyAutoTls(config, first.logger);
      assert.equal(generated.clientTls.certFile, join(dataDir, 'fixtures', 'client', 'cert.pem'));
      assert.equal(generated.clientTls.selfSigned, true);
      assert.equal(generated.peerTls.certFile, 'p.crt');
      assert.ok(first.lines.includes('ignoring peer auto TLS since certs given'), first.lines.join('\n'));
      assert.ok(!existsSync(join(dataDir, 'fixtures', 'peer')));
      const certificate = readFileSync(generated.clientTls.certFile);
      const second = recordingLogger();
      applyAutoTls(config, second.logger);
      assert.deepEqual(readFileSync(generated.clientTls.certFile), certificate);
      assert.ok(!second.lines.some((line) => line.startsWith('created')), second.lines.join('\n'));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
