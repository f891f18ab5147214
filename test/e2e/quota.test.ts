/**
 * --quota-backend-bytes: once the backend is full, writes are refused with etcd's
 * "database space exceeded" (even small ones: the NOSPACE alarm is up), /health turns 503, and
 * reads keep working. The same steps run
 * against real etcd alongside. Backends differ in size, so the test asserts the behaviour, not the
 * exact write at which it starts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Member, probeHealth } from '../support/member.js';
import { runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const quotaBytes = 2 * 1024 * 1024;
const valueBytes = 100 * 1024;
/** Bound on puts: ~3x the quota, far more than either backend can hold under it. */
const putsMax = 60;

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined
    ? { label: 'tsetcd', skip: sut.skipReason }
    : { label: sut.command.label, command: sut.command },
];

// etcd's member and tsetcd's run side by side on their own ports: neither needs the other.
describe('full backends of etcd and of tsetcd, side by side', { concurrency: true }, () => {
  for (const target of targets) {
    const options = target.skip === undefined ? {} : { skip: target.skip };
    test(
      `a full backend refuses writes with etcd's error and keeps serving reads on ${target.label}`,
      options,
      async () => {
        const member = await Member.start({
          command: target.command as MemberCommand,
          extraFlags: ['--quota-backend-bytes', String(quotaBytes)],
        });
        try {
          const endpoint = member.clientUrl.replace(/^http:\/\//, '');
          const value = 'v'.repeat(valueBytes);
          let refusedAt = -1;
          let refusal: CommandResult = { stdout: '', stderr: '', code: 0 } as CommandResult;
          for (let index = 0; index < putsMax; index++) {
            const result = await runEtcdctl(endpoint, ['put', `big/${index}`, value]);
            if (result.code !== 0) {
              refusedAt = index;
              refusal = result;
              break;
            }
          }
          assert.ok(refusedAt > 0, `expected some puts to fit and a later one to be refused; refused at ${refusedAt}`);
          assert.equal(refusal.code, 1);
          assert.match(refusal.stderr, /^Error: etcdserver: mvcc: database space exceeded$/m);
          const read = await runEtcdctl(endpoint, ['get', 'big/0', '--print-value-only']);
          assert.equal(read.code, 0, read.stderr);
          assert.equal(read.stdout.trim().length, valueBytes);
          const again = await runEtcdctl(endpoint, ['put', 'small', 'x']);
          assert.match(again.stderr, /database space exceeded/);
          // etcd answers /health with 503 while the NOSPACE alarm is active.
          assert.match(await probeHealth(member.clientUrl), /^status 503:/);
        } finally {
          await member.destroy();
        }
      },
    );
  }
});
