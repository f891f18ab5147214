/**
 * A member whose auth is enabled starts its password-checking thread once it serves, so the first
 * Authenticate after a start does not also pay for the thread and its bcrypt load; a member
 * without auth starts none. Threads are told apart by the names the member gives them in /proc.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { authDialTimeoutFlag, etcdctlOk, runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const skip = sut.skipReason === undefined ? {} : { skip: sut.skipReason };
const bcryptThreadName = 'tsetcd-bcrypt';
/** Bound on the wait for the thread after the member serves. */
const threadWaitMs = 15_000;
/** How long a member without auth is watched for a password thread it should not start. */
const quietWatchMs = 1_500;

/** Threads of `pid` named `name` (a thread that ends while read is skipped). */
function threadsNamed(pid: number, name: string): number {
  let count = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      if (readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8').trim() === name) count += 1;
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return count;
}

test(
  'a member with auth enabled starts its password thread once it serves, and one without auth none',
  skip,
  async () => {
    const member = await Member.start({ command: sut.command as MemberCommand, extraFlags: ['--bcrypt-cost', '4'] });
    try {
      await etcdctlOk(member, ['user', 'add', 'root:rootpw']);
      await etcdctlOk(member, ['user', 'grant-role', 'root', 'root']);
      // A user was hashed, but auth is off: the restarted member has no reason to start the thread.
      await member.stop();
      await member.restart();
      await sleep(quietWatchMs);
      assert.equal(threadsNamed(member.pid, bcryptThreadName), 0, 'no password thread while auth is off');

      await etcdctlOk(member, ['auth', 'enable']);
      await member.stop();
      await member.restart();
      let seen = 0;
      for (let waitedMs = 0; seen === 0 && waitedMs < threadWaitMs; waitedMs += 100) {
        seen = threadsNamed(member.pid, bcryptThreadName);
        if (seen === 0) await sleep(100);
      }
      assert.equal(seen, 1, 'one password thread started before any Authenticate');
      const get = await runEtcdctl(member.clientUrl, [authDialTimeoutFlag, '--user', 'root:rootpw', 'get', 'a']);
      assert.equal(get.code, 0, get.stderr);
    } finally {
      await member.destroy();
    }
  },
);
