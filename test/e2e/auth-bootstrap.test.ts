/**
 * --auth-bootstrap-file: a new cluster started with it has the file's users, roles and
 * permissions and auth enabled (as etcdctl shows them); a file that breaks the schema, or enables
 * auth without root, stops the start with exit 1 and names the bad path; and a restart does not
 * apply the file again (a password changed since still works).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Member } from '../support/member.js';
import { authDialTimeoutFlag, runCommand, runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const skip = sut.command === undefined ? { skip: sut.skipReason } : {};
/**
 * How long the bootstrap may take to be applied: a bound on a hang, not on speed (each poll is an
 * etcdctl run, which on a loaded machine takes a good part of a second).
 */
const appliedWaitMs = 60_000;

const goodFile = `
enable: true
roles:
  - name: root
  - name: app
    permissions:
      - { type: readwrite, prefix: app/ }
      - { type: read, key: cfg }
      - { type: write, key: a, range-end: c }
      - { type: read, from-key: z }
users:
  - { name: root, password: rootpw, roles: [root] }
  - { name: alice, password: alicepw, roles: [app] }
  - { name: carol, no-password: true }
`;

async function withFile(text: string, run: (path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tsetcd-auth-bootstrap-'));
  const path = join(dir, 'auth.yaml');
  writeFileSync(path, text);
  try {
    await run(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Waits until the first leader has applied the file: auth enabling is its last step. */
async function untilApplied(member: Member): Promise<void> {
  const endpoint = member.clientUrl.replace(/^http:\/\//, '');
  let last: CommandResult | undefined;
  for (const deadline = Date.now() + appliedWaitMs; Date.now() < deadline;) {
    last = await runEtcdctl(endpoint, ['get', 'app/x']);
    if (/user name is empty/.test(last.stderr)) return;
    await sleep(100);
  }
  assert.fail(
    `the bootstrap file was not applied: ${last?.stdout}${last?.stderr}\nthe member's log:\n${member.logTail()}`,
  );
}

test('a new cluster started with an auth bootstrap file has its users, roles and auth enabled', skip, async () => {
  await withFile(goodFile, async (path) => {
    const member = await Member.start({
      command: sut.command as MemberCommand,
      extraFlags: ['--auth-bootstrap-file', path, '--bcrypt-cost', '4'],
    });
    try {
      const endpoint = member.clientUrl.replace(/^http:\/\//, '');
      await untilApplied(member);
      const role = await runEtcdctl(endpoint, [authDialTimeoutFlag, '--user=root:rootpw', 'role', 'get', 'app']);
      assert.equal(
        role.stdout,
        [
          'Role app',
          'KV Read:',
          '\t[app/, app0) (prefix app/)',
          '\tcfg',
          '\t[z, <open ended>',
          'KV Write:',
          '\t[a, c)',
          '\t[app/, app0) (prefix app/)',
          '',
        ].join('\n'),
      );
      const alice = await runEtcdctl(endpoint, [authDialTimeoutFlag, '--user=root:rootpw', 'user', 'get', 'alice']);
      assert.equal(alice.stdout, 'User: alice\nRoles: app\n');
      const carol = await runEtcdctl(endpoint, [authDialTimeoutFlag, '--user=root:rootpw', 'user', 'get', 'carol']);
      assert.equal(carol.stdout, 'User: carol\nRoles:\n');
      const put = await runEtcdctl(endpoint, [authDialTimeoutFlag, '--user=alice:alicepw', 'put', 'app/x', 'v']);
      assert.equal(put.code, 0, put.stderr);
      const denied = await runEtcdctl(endpoint, [authDialTimeoutFlag, '--user=alice:alicepw', 'put', 'other', 'v']);
      assert.match(denied.stderr, /permission denied/);

      const changed = await runEtcdctl(
        endpoint,
        [authDialTimeoutFlag, '--user=root:rootpw', 'user', 'passwd', 'alice', '--interactive=false'],
        {
          stdin: 'newalicepw\n',
        },
      );
      assert.equal(changed.code, 0, changed.stderr);
      const deleted = await runEtcdctl(endpoint, [
        authDialTimeoutFlag,
        '--user=root:rootpw',
        'user',
        'delete',
        'carol',
      ]);
      assert.equal(deleted.code, 0, deleted.stderr);
      await member.stop();
      await member.restart();
      const gone = await runEtcdctl(endpoint, [authDialTimeoutFlag, '--user=root:rootpw', 'user', 'get', 'carol']);
      assert.match(gone.stderr, /user name not found/, 'a deleted user stays deleted after a restart');
      const log = readFileSync(member.logPath, 'utf8');
      assert.equal(log.match(/auth bootstrap file/g)?.length, 1, `one application, on the first start only:\n${log}`);
      const renewed = await runEtcdctl(endpoint, [authDialTimeoutFlag, '--user=alice:newalicepw', 'put', 'app/y', 'v']);
      assert.equal(renewed.code, 0, `the changed password works after a restart: ${renewed.stderr}`);
      const old = await runEtcdctl(endpoint, [authDialTimeoutFlag, '--user=alice:alicepw', 'put', 'app/y', 'v']);
      assert.match(old.stderr, /authentication failed/, 'the file was not applied again');
    } finally {
      await member.destroy();
    }
  });
});

/** Starts tsetcd with the file and expects it to refuse: exit 1, `message` in its output. */
async function refused(text: string, message: RegExp): Promise<void> {
  await withFile(text, async (path) => {
    const dataDir = join(path, '..', 'data');
    const command = sut.command as MemberCommand;
    const result = await runCommand(command.command, [
      ...command.args,
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      'http://127.0.0.1:0',
      '--advertise-client-urls',
      'http://127.0.0.1:0',
      '--auth-bootstrap-file',
      path,
    ]);
    assert.equal(result.code, 1, `expected exit 1: ${result.stdout}${result.stderr}`);
    assert.match(result.stdout + result.stderr, message);
  });
}

test('an auth bootstrap file that breaks the schema is refused with the bad path', skip, async () => {
  await refused(
    'roles:\n  - name: app\n    permissions:\n      - { type: readmostly, key: a }\nusers:\n  - { name: alice }\n',
    /auth bootstrap file .*\/roles\/0\/permissions\/0\/type: must be equal to one of the allowed values.*\/users\/0: must have required property 'password'/,
  );
});

test('an auth bootstrap file that enables auth without root is refused', skip, async () => {
  await refused(
    'enable: true\nusers:\n  - { name: alice, password: pw }\n',
    /\/enable: enabling auth needs a user \\"root\\" with the role \\"root\\"/,
  );
});
