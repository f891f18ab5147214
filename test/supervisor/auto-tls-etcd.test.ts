/**
 * --auto-tls and --peer-auto-tls against real etcd: both members start with https client and peer
 * URLs and no certificate files; each must write a self-signed certificate under
 * <data-dir>/fixtures/{client,peer} that openssl describes alike once serial, dates, key and
 * signature are masked, and serve etcdctl over it. The rest (reuse on restart, the warning when
 * files are given) is checked on applyAutoTls directly.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { applyAutoTls } from '../../actors/supervisor/auto-tls.js';
import type { Logger } from '../../actors/shared/logger.js';
import { loadConfig } from '../../src/config/config.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand } from '../support/sut.js';
import { hasOpenssl, tlsSkipReason } from '../support/tls.js';

const sut = sutCommand();
const skip = tlsSkipReason(sut);

const members: Member[] = [];
/** etcdctl trusts a self-signed member only when told to skip verification over TLS. */
const insecureTls = ['--insecure-transport=false', '--insecure-skip-tls-verify', '--command-timeout=3s'];

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
  for (const command of [etcdCommand(), sut.command!])
    members.push(await Member.start({ command, clientTls: 'auto', extraFlags: ['--logger', 'zap'] }));
});

after(async () => {
  for (const member of members) await member.destroy();
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
      const put = await runEtcdctl(member.clientUrl, [...insecureTls, 'put', 'auto', 'tls']);
      assert.deepEqual([put.code, put.stdout], [0, 'OK\n'], `${member.command.label}: ${put.stderr}`);
      const get = await runEtcdctl(member.clientUrl, [...insecureTls, 'get', 'auto', '--print-value-only']);
      assert.deepEqual([get.code, get.stdout], [0, 'tls\n'], `${member.command.label}: ${get.stderr}`);
    }
  });

  test('a client that verifies the server refuses the self-signed certificate on both', async () => {
    for (const member of members) {
      const refused = await runEtcdctl(member.clientUrl, ['--command-timeout=2s', '--dial-timeout=1s', 'get', 'auto']);
      assert.notEqual(refused.code, 0, member.command.label);
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
