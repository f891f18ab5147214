/**
 * The npm etcd3 client with password auth, on real etcd and on the system under test: it logs in,
 * puts, gets, deletes and watches where its role allows, and meets etcd's permission-denied,
 * authentication-failed and missing-user errors (as etcd3's own error classes) where it does not.
 * Both members run the same steps; the transcripts must match.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const skipReason = sut.skipReason;
/** etcd3 retries and waits on its own; a step that takes longer than this is reported as hung. */
const stepTimeoutMs = 10_000;

test(
  `the etcd3 client with credentials sees the same on ${sut.command?.label ?? 'tsetcd'} as on etcd`,
  skipReason === undefined ? {} : { skip: skipReason },
  async () => {
    const sutSide = sut.command as MemberCommand;
    const [expected, actual] = await Promise.all([runOn(etcdCommand()), runOn(sutSide)]);
    assert.deepEqual(actual, expected, `${sutSide.label} differs from etcd for the etcd3 client`);
  },
);

async function runOn(command: MemberCommand): Promise<string[]> {
  const member = await Member.start({ command });
  try {
    await setUp(member.clientUrl);
    return await transcript(member.clientUrl);
  } finally {
    await member.destroy();
  }
}

/** Users root, alice (read and write app/, read pub/) and auth on, through etcdctl. */
async function setUp(endpoint: string): Promise<void> {
  const commands = [
    ['put', 'pub/a', 'public'],
    ['put', 'secret/a', 'hidden'],
    ['user', 'add', 'root:rootpw'],
    ['user', 'add', 'alice:alicepw'],
    ['role', 'add', 'app'],
    ['role', 'grant-permission', 'app', 'readwrite', 'app/', '--prefix'],
    ['role', 'grant-permission', 'app', 'read', 'pub/', '--prefix'],
    ['user', 'grant-role', 'alice', 'app'],
    ['auth', 'enable'],
  ];
  for (const args of commands) {
    const result = await runEtcdctl(endpoint, args);
    assert.equal(result.code, 0, `etcdctl ${args.join(' ')}: ${result.stderr}`);
  }
}

/** Runs one client step and describes what it gave: `ok <value>` or `<error class>: <message>`. */
async function step(name: string, action: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${stepTimeoutMs} ms`)), stepTimeoutMs);
  });
  try {
    const value = await Promise.race([action(), timeout]);
    return `${name}: ok ${JSON.stringify(value ?? null)}`;
  } catch (error) {
    const { name: errorName, message } = error as Error;
    return `${name}: ${errorName}: ${message}`;
  } finally {
    clearTimeout(timer);
  }
}

async function transcript(endpoint: string): Promise<string[]> {
  const hosts = [endpoint];
  const alice = new Etcd3({ hosts, auth: { username: 'alice', password: 'alicepw' } });
  const root = new Etcd3({ hosts, auth: { username: 'root', password: 'rootpw' } });
  const wrong = new Etcd3({ hosts, auth: { username: 'alice', password: 'wrong' } });
  const anonymous = new Etcd3({ hosts });
  try {
    const lines: string[] = [];
    lines.push(await step('alice put app/x', async () => (await alice.put('app/x').value('1')).header.revision));
    lines.push(await step('alice get app/x', () => alice.get('app/x').string()));
    lines.push(await step('alice get pub/a', () => alice.get('pub/a').string()));
    lines.push(
      await step('alice put pub/a', () =>
        alice
          .put('pub/a')
          .value('2')
          .exec()
          .then(() => 'put'),
      ),
    );
    lines.push(await step('alice get secret/a', () => alice.get('secret/a').string()));
    lines.push(await step('alice get app/ prefix', () => alice.getAll().prefix('app/').keys()));
    lines.push(await step('alice get everything', () => alice.getAll().keys()));
    lines.push(await step('alice delete app/x', async () => (await alice.delete().key('app/x')).deleted));
    lines.push(await step('alice lists users', async () => (await alice.getUsers()).map((user) => user.name)));
    lines.push(await step('root lists users', async () => (await root.getUsers()).map((user) => user.name)));
    lines.push(await step('root get secret/a', () => root.get('secret/a').string()));
    lines.push(await step('wrong password get pub/a', () => wrong.get('pub/a').string()));
    lines.push(await step('no credentials get pub/a', () => anonymous.get('pub/a').string()));
    lines.push(await step('alice watch app/ sees a put by root', () => watchOnePut(alice, root)));
    return lines;
  } finally {
    for (const client of [alice, root, wrong, anonymous]) client.close();
  }
}

/** Alice watches app/ and root writes app/w; resolves with what alice's watcher saw. */
async function watchOnePut(watcherClient: Etcd3, writer: Etcd3): Promise<string> {
  const watcher = await watcherClient.watch().prefix('app/').create();
  try {
    const seen = new Promise<string>((resolve) =>
      watcher.on('put', (kv) => resolve(`${kv.key.toString()}=${kv.value.toString()}`)),
    );
    await writer.put('app/w').value('from root');
    return await seen;
  } finally {
    await watcher.cancel();
  }
}
