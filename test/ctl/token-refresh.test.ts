/**
 * An auth token that expires while a command runs is fetched anew, as clientv3's retry
 * interceptor does: members run with --auth-token-ttl 1, so a simple token unused for a second
 * is gone, and `lock L --user ... -- CMD` unlocks with a token that expired while CMD ran. etcdctl against etcd (the reference), tsetcdctl against
 * another etcd and tsetcdctl against tsetcd must answer alike: the command's output and exit 0.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCommand, runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, tsetcdctlBinPath, type MemberCommand } from '../support/sut.js';

const tsetcd = sutCommand();
/** Past etcd's one-second TTL and its keeper's one-second round: the token is gone when the command ends. */
const holdSeconds = '3';

/** Drops clientv3's retry warnings (the refresh logs one), which carry timestamps and random client names. */
function comparable(result: CommandResult): CommandResult {
  return { code: result.code, stdout: result.stdout, stderr: result.stderr.replace(/^\{"level":"warn".*\n/gm, '') };
}

describe('a token that expires during a command is fetched anew', { skip: tsetcd.skipReason ?? false }, () => {
  const members: Member[] = [];

  before(async () => {
    const commands: MemberCommand[] = [etcdCommand(), etcdCommand(), tsetcd.command as MemberCommand];
    for (const command of commands) {
      const member = await Member.start({ command, extraFlags: ['--auth-token-ttl', '1'] });
      members.push(member);
      for (const args of [
        ['user', 'add', 'root:pw'],
        ['auth', 'enable'],
      ]) {
        const result = await runEtcdctl(member.clientUrl, args);
        assert.equal(result.code, 0, result.stderr);
      }
    }
  });

  after(async () => {
    await Promise.all(members.map((member) => member.destroy()));
  });

  /** The same command line three ways: etcdctl on the first member, tsetcdctl on the others. */
  async function threeWays(args: readonly string[]): Promise<CommandResult[]> {
    return Promise.all(
      members.map((member, index) => {
        const full = [`--endpoints=${member.clientUrl}`, '--user=root:pw', ...args];
        const [command, prefix] = index === 0 ? [etcdctlBinaryPath, []] : [process.execPath, [tsetcdctlBinPath]];
        return runCommand(command, [...prefix, ...full], { env: { ETCDCTL_API: '3' } }).then(comparable);
      }),
    );
  }

  it('lock NAME -- CMD unlocks after the command outlived the token', async () => {
    const [reference, ...ours] = await threeWays(['lock', 'L', '--', 'sh', '-c', `sleep ${holdSeconds}; echo held`]);
    assert.deepEqual(reference, { code: 0, stdout: 'held\n', stderr: '' });
    for (const result of ours) assert.deepEqual(result, reference);
  });
});
