/**
 * unix:// and unixs:// client listen URLs against real etcd: both members listen on a TCP URL
 * plus a plain and a TLS unix socket. etcd wants host:port in every URL, so unix://localhost:<n>
 * is a socket file named "localhost:<n>" in the member's working directory, and etcdctl (and
 * tsetcdctl, against ours) dial it from there; both must give the same answers.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { TlsConfig } from '../../src/config/config.js';
import { runCommand, runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';
import { makeCertificates, tlsSkipReason, type TestCertificates } from '../support/tls.js';

const compiledCtl = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ctl', 'main.js');
const ctlLoader = `import(${JSON.stringify(compiledCtl)}).then((m) => m.run(process.argv.slice(1)))`;
const sut = sutCommand();
const skip = tlsSkipReason(sut);

/** A member listening on its TCP client URL plus a plain and a TLS unix socket. */
interface SocketMember {
  member: Member;
  workDir: string;
  unixUrl: string;
  unixsUrl: string;
}

let certs: TestCertificates;
let server: TlsConfig;
const members: SocketMember[] = [];

const unixUrlOf = (clientPort: number): string => `unix://localhost:${clientPort + 1}`;
const unixsUrlOf = (clientPort: number): string => `unixs://localhost:${clientPort + 2}`;

async function startSocketMember(command: MemberCommand): Promise<void> {
  const member = await Member.start({
    command,
    extraListenClientUrls: (clientPort) => [unixUrlOf(clientPort), unixsUrlOf(clientPort)],
    runInWorkDir: true,
    extraFlags: ['--logger', 'zap', '--cert-file', server.certFile, '--key-file', server.keyFile],
  });
  const { clientPort, workDir } = member;
  members.push({ member, workDir, unixUrl: unixUrlOf(clientPort), unixsUrl: unixsUrlOf(clientPort) });
}

before(async () => {
  if (skip !== false) return;
  certs = makeCertificates();
  server = certs.member('server');
  await startSocketMember(etcdCommand());
  await startSocketMember(sut.command!);
});

after(async () => {
  for (const { member } of members) await member.destroy();
  certs?.remove();
});

/** What etcdctl said, without clientv3's retry logs and with the member's directory masked. */
function comparable(result: CommandResult, member: SocketMember): CommandResult {
  const clean = (text: string) =>
    text
      .replace(/^\{"level":"warn".*\n/gm, '')
      .split(member.workDir)
      .join('<dir>');
  return { code: result.code, stdout: clean(result.stdout), stderr: clean(result.stderr) };
}

async function onBoth(endpoint: (member: SocketMember) => string, args: string[]): Promise<CommandResult[]> {
  // The socket files are named relative to each member's working directory, so etcdctl dials from there.
  return Promise.all(
    members.map(async (member) =>
      comparable(await runEtcdctl(endpoint(member), args, { cwd: member.workDir }), member),
    ),
  );
}

describe('unix:// and unixs:// client listeners behave as in etcd 3.4', { skip }, () => {
  test('etcdctl puts and gets through the unix socket of both', async () => {
    const puts = await onBoth((member) => member.unixUrl, ['put', 'socket-key', 'socket-value']);
    for (const put of puts) assert.deepEqual([put.code, put.stdout], [0, 'OK\n'], put.stderr);
    const [etcd, ours] = await onBoth((member) => member.unixUrl, ['get', 'socket-key']);
    assert.deepEqual(etcd, { code: 0, stdout: 'socket-key\nsocket-value\n', stderr: '' });
    assert.deepEqual(ours, etcd);
  });

  test('etcdctl answers alike through the TLS unix socket of both', async () => {
    const args = ['--cacert', server.trustedCaFile, '--command-timeout=2s', '--dial-timeout=1s', 'get', 'socket-key'];
    const [etcd, ours] = await onBoth((member) => member.unixsUrl, args);
    assert.deepEqual(etcd, { code: 0, stdout: 'socket-key\nsocket-value\n', stderr: '' });
    assert.deepEqual(ours, etcd);
    const skipVerify = ['--insecure-transport=false', '--insecure-skip-tls-verify', 'get', 'socket-key'];
    const [etcdSkipping, oursSkipping] = await onBoth((member) => member.unixsUrl, skipVerify);
    assert.deepEqual(oursSkipping, etcdSkipping);
  });

  test('tsetcdctl dials a unix socket as etcdctl does', async () => {
    const ours = members[1]!;
    const args = [`--endpoints=${ours.unixUrl}`, 'get', 'socket-key'];
    const [etcdctl, tsetcdctl] = await Promise.all([
      runEtcdctl(ours.unixUrl, ['get', 'socket-key'], { cwd: ours.workDir }),
      runCommand(process.execPath, ['-e', ctlLoader, '--', ...args], { env: { ETCDCTL_API: '3' }, cwd: ours.workDir }),
    ]);
    assert.deepEqual(tsetcdctl, etcdctl);
  });
});
