/**
 * snapshot save on a terminal, three ways (etcdctl against etcd, tsetcdctl against etcd and
 * against tsetcd): etcdctl 3.4.23 prints the same zap lines and "Snapshot saved at" on a tty as on
 * a pipe (no progress bar; 3.5 added one), so the transcripts must agree byte for byte once the
 * numbers (times, sizes, ports, line numbers) and the file name are normalised.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCommand } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, tsetcdctlBinPath } from '../support/sut.js';

/** util-linux's script gives the command a terminal; without it the test cannot run. */
const scriptMissing = spawnSync('script', ['--version']).error !== undefined;
if (scriptMissing) console.log('# skipped: util-linux script(1), which gives the command a terminal, is not installed');

/** Quotes one word for sh -c. */
function shellWord(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Only the numbers and the file name, never whitespace, dashes or line ends (the tty's \r\n stays). */
function normalise(text: string, file: string): string {
  return text
    .split(file)
    .join('<file>')
    .replace(/\d[\d.e+-]*/g, 'N');
}

describe('snapshot save on a terminal prints what etcdctl prints', { skip: scriptMissing }, () => {
  let members: Member[] = [];
  let dir = '';

  before(async () => {
    const tsetcd = sutCommand().command;
    assert.ok(tsetcd !== undefined, 'expected tsetcd to be built');
    dir = await mkdtemp(join(tmpdir(), 'tsetcd-ctl-tty-'));
    members = await Promise.all([
      Member.start({ command: etcdCommand() }),
      Member.start({ command: etcdCommand() }),
      Member.start({ command: tsetcd }),
    ]);
  });

  after(async () => {
    await Promise.all(members.map((member) => member.destroy()));
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('with the same zap lines, "Snapshot saved at" and exit status as etcdctl', async () => {
    const clients = [[etcdctlBinaryPath], [process.execPath, tsetcdctlBinPath], [process.execPath, tsetcdctlBinPath]];
    const transcripts = await Promise.all(
      members.map(async (member, index) => {
        const file = join(dir, `backup-${index}.db`);
        const words = [
          ...(clients[index] ?? []),
          `--endpoints=127.0.0.1:${member.clientPort}`,
          'snapshot',
          'save',
          file,
        ];
        const line = `${words.map(shellWord).join(' ')}; echo "exit $?"`;
        const result = await runCommand('script', ['-qec', line, '/dev/null'], { env: { ETCDCTL_API: '3' } });
        assert.equal(result.code, 0, `expected script(1) to run, saw ${result.stderr}`);
        return normalise(result.stdout, file);
      }),
    );
    const [expected, ...actual] = transcripts;
    assert.match(expected ?? '', /Snapshot saved at <file>\r\n/);
    for (const [index, transcript] of actual.entries())
      assert.equal(transcript, expected, `tsetcdctl against ${['etcd', 'tsetcd'][index]}`);
  });
});
