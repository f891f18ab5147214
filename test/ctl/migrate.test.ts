/**
 * migrate against etcdctl 3.4.23 over stopped members' data dirs: every usage and error case
 * (missing or empty directories, --wal-dir, --transformer that cannot start, bad flags) must print
 * what etcdctl prints and exit as it exits. tsetcdctl keeps no v2 store to convert, so over a
 * tsetcd data dir it answers etcdctl's "no v2 keys to migrate" and leaves the member able to
 * start with its keys; over an etcd data dir, whose v2 store it does not rebuild, it refuses
 * with a clear error (etcdctl there replays the WAL and reports no v2 keys either).
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCommand, runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, tsetcdctlBinPath } from '../support/sut.js';

function transcript(result: CommandResult): string {
  return `stdout:\n${result.stdout}stderr:\n${result.stderr}exit ${result.code}`;
}

describe('migrate answers as etcdctl 3.4.23 does', () => {
  let dir = '';
  let etcd: Member | undefined;
  let tsetcd: Member | undefined;

  const run = (program: 'etcdctl' | 'tsetcdctl', args: readonly string[]): Promise<CommandResult> => {
    const options = { cwd: dir, env: { ETCDCTL_API: '3' }, timeoutMs: 30_000 };
    return program === 'etcdctl'
      ? runCommand(etcdctlBinaryPath, args, options)
      : runCommand(process.execPath, [tsetcdctlBinPath, ...args], options);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsetcdctl-migrate-'));
    const tsetcdCommand = sutCommand().command;
    assert.ok(tsetcdCommand !== undefined, 'expected tsetcd to be built');
    [etcd, tsetcd] = await Promise.all([
      Member.start({ command: etcdCommand() }),
      Member.start({ command: tsetcdCommand }),
    ]);
    for (const member of [etcd, tsetcd]) {
      const put = await runEtcdctl(`127.0.0.1:${member.clientPort}`, ['put', 'kept', 'value']);
      assert.equal(put.stdout, 'OK\n', put.stderr);
    }
    await Promise.all([etcd.stop(), tsetcd.stop()]);
    await mkdir(join(dir, 'empty'));
    await mkdir(join(dir, 'snap-only', 'member', 'snap'), { recursive: true });
    await writeFile(join(dir, 'not-executable'), '#!/bin/sh\n');
    await chmod(join(dir, 'not-executable'), 0o644);
  });

  after(async () => {
    await Promise.all([etcd?.destroy(), tsetcd?.destroy()]);
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  const etcdDataDir = (): string => etcd!.dataDir;
  /** <etcd> stands for the stopped etcd member's data dir. */
  const cases: string[][] = [
    ['migrate'],
    ['migrate', 'extra', '--data-dir', 'empty'],
    ['migrate', '--data-dir', 'empty'],
    ['migrate', '--data-dir', '/nonexistent/tsetcd-migrate', '--no-ttl'],
    ['migrate', '--data-dir', 'snap-only'],
    ['migrate', '--data-dir', '<etcd>', '--wal-dir', 'empty'],
    ['migrate', '--data-dir', '<etcd>', '--wal-dir', '/nonexistent/tsetcd-wal'],
    ['migrate', '--data-dir', '<etcd>', '--transformer', 'no-such-transformer'],
    ['migrate', '--data-dir', '<etcd>', '--transformer', './not-executable'],
    ['migrate', '--data-dir', '<etcd>', '--transformer', '/nonexistent/transformer'],
    ['migrate', '--data-dir', 'empty', '--transformer', '/bin/cat'],
    ['migrate', '--bogus'],
    ['migrate', '--data-dir'],
    ['migrate', '--no-ttl=maybe'],
    ['migrate', '--help'],
  ];
  for (const words of cases) {
    it(`prints what etcdctl prints for ${words.join(' ')}`, async () => {
      const args = words.map((word) => (word === '<etcd>' ? etcdDataDir() : word));
      const [expected, actual] = await Promise.all([run('etcdctl', args), run('tsetcdctl', args)]);
      assert.equal(transcript(actual), transcript(expected));
    });
  }

  it('finds no v2 keys in a tsetcd data dir, and the member starts on it with its keys', async () => {
    const result = await run('tsetcdctl', ['migrate', '--data-dir', tsetcd!.dataDir]);
    assert.equal(transcript(result), 'stdout:\nusing default transformer\nno v2 keys to migrate\nstderr:\nexit 0');
    await tsetcd!.restart();
    const read = await runEtcdctl(`127.0.0.1:${tsetcd!.clientPort}`, ['get', 'kept', '--print-value-only']);
    assert.equal(read.stdout, 'value\n', read.stderr);
  });

  it('refuses an etcd data dir, whose v2 store it does not rebuild, where etcdctl reports no v2 keys', async () => {
    const [expected, actual] = await Promise.all([
      run('etcdctl', ['migrate', '--data-dir', etcdDataDir()]),
      run('tsetcdctl', ['migrate', '--data-dir', etcdDataDir()]),
    ]);
    assert.match(expected.stdout, /^using default transformer\n(\{"level":"info".*\n)+no v2 keys to migrate\n$/);
    assert.equal(expected.code, 0);
    const walDir = join(etcdDataDir(), 'member', 'wal');
    assert.equal(
      transcript(actual),
      `stdout:\nusing default transformer\nstderr:\nError: ${walDir} is not a tsetcd WAL: tsetcdctl does not rebuild etcd's v2 store; run etcdctl 3.4's migrate on this data dir\nexit 1`,
    );
  });
});
