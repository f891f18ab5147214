/**
 * migrate against etcdctl 3.4.23 over stopped members' data dirs: every usage and error case
 * (missing or empty directories, --wal-dir, --transformer that cannot start, bad flags) must print
 * what etcdctl prints and exit as it exits. Over an etcd data dir holding v2 keys (written through
 * etcd's v2 API, with a v2 snapshot cut and more log after it), etcdctl and tsetcdctl each convert
 * their own copy; the transcripts must be equal, and etcd started on each copy must then serve the
 * same keys, revisions, leases and hash. A tsetcd data dir keeps no v2 store: "no v2 keys to migrate".
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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

  it('finds no v2 keys in an etcd data dir without them, logging the members it replays as etcdctl does', async () => {
    const args = ['migrate', '--data-dir', etcdDataDir()];
    const [expected, actual] = await Promise.all([run('etcdctl', args), run('tsetcdctl', args)]);
    assert.match(expected.stdout, /^using default transformer\n(\{"level":"info".*\n)+no v2 keys to migrate\n$/);
    assert.equal(transcript(actual), transcript(expected));
  });

  it('waits while a running etcd holds the backend, then goes on once it stops, as etcdctl does', async () => {
    const transcripts: string[] = [];
    for (const program of ['etcdctl', 'tsetcdctl'] as const) {
      await etcd!.restart();
      const command = program === 'etcdctl' ? [etcdctlBinaryPath] : [process.execPath, tsetcdctlBinPath];
      const child = spawn(command[0]!, [...command.slice(1), 'migrate', '--data-dir', etcdDataDir()], {
        env: { ...process.env, ETCDCTL_API: '3' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
      try {
        for (let waited = 0; !stderr.includes('waiting for etcd') && waited < 20_000; waited += 100) await sleep(100);
        assert.match(stderr, /waiting for etcd to close and release its lock/, `${program}: ${stdout}${stderr}`);
        assert.equal(child.exitCode, null, `${program} must still wait while etcd runs`);
      } finally {
        await etcd!.stop();
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      transcripts.push(`stdout:\n${stdout}stderr:\n${stderr}exit ${code}`);
    }
    assert.equal(transcripts[1], transcripts[0]);
  });
});

/** The etcd v2 API calls that build the data dir: keys, dirs, TTLs, in-order keys, swaps and deletes. */
const v2Writes: [method: 'PUT' | 'POST' | 'DELETE', path: string, form: string][] = [
  ['PUT', 'a', 'value=1'],
  ['PUT', 'a', 'value=2'],
  ['PUT', 'dir', 'dir=true'],
  ['PUT', 'dir/x', 'value=hello'],
  ['PUT', 'dir/sub/y', 'value=deep'],
  ['PUT', 'ttl-long', 'value=kept&ttl=600'],
  ['PUT', 'ttl-short', 'value=gone&ttl=1'],
  ['POST', 'queue', 'value=first'],
  ['POST', 'queue', 'value=second'],
  ['PUT', 'cas', 'value=old&prevExist=false'],
  ['PUT', 'cas', 'value=new&prevValue=old'],
  ['PUT', 'cas', 'value=refused&prevValue=old'],
  ['PUT', '_hidden', 'value=h'],
  ['PUT', 'empty-dir', 'dir=true'],
  ...Array.from({ length: 12 }, (_, at): [method: 'PUT', path: string, form: string] => [
    'PUT',
    `loop/k${at}`,
    `value=v${at}`,
  ]),
  ['DELETE', 'loop/k3', ''],
  ['PUT', 'loop/k4', 'value=over'],
];

/** Writes after the expiry of ttl-short, so a v2 snapshot comes before some of the log. */
const v2WritesAfterExpiry: [method: 'PUT' | 'DELETE', path: string, form: string][] = [
  ['PUT', 'after', 'value=yes'],
  ['DELETE', 'dir/sub?recursive=true', ''],
  ['PUT', 'ttl-refreshed', 'value=r&ttl=900'],
];

/** A transformer program: each value upper-cased under /moved, written back as etcdctl reads KeyValues. */
const transformerSource = `
const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  const text = Buffer.concat(chunks).toString();
  const out = [];
  let depth = 0, start = 0, inString = false, escaped = false;
  const varint = (n) => { const bytes = []; while (n >= 0x80) { bytes.push((n & 0x7f) | 0x80); n = Math.floor(n / 0x80); } bytes.push(n); return bytes; };
  const field = (tag, bytes) => [tag, ...varint(bytes.length), ...bytes];
  for (let at = 0; at < text.length; at++) {
    const c = text[at];
    if (inString) { if (escaped) escaped = false; else if (c === '\\\\') escaped = true; else if (c === '"') inString = false; continue; }
    if (c === '"') inString = true;
    else if (c === '{') { if (depth++ === 0) start = at; }
    else if (c === '}' && --depth === 0) {
      const node = JSON.parse(text.slice(start, at + 1));
      if (node.dir) continue;
      const kv = Buffer.from([
        ...field(0x0a, [...Buffer.from('/moved' + node.key)]),
        0x10, ...varint(node.createdIndex), 0x18, ...varint(node.modifiedIndex), 0x20, 1,
        ...field(0x2a, [...Buffer.from(node.value.toUpperCase())]),
      ]);
      const length = Buffer.alloc(8);
      length.writeBigUInt64LE(BigInt(kv.length));
      out.push(length, kv);
    }
  }
  process.stdout.write(Buffer.concat(out));
  // etcdctl closes the program's stdout once the program exits, so one that exits straight after
  // writing may lose the KeyValues etcdctl has not read yet; it stays a moment.
  setTimeout(() => process.exit(Number(process.env.TRANSFORMER_EXIT ?? 0)), 500);
});
`;

describe("migrate converts an etcd 3.4 data dir's v2 keys as etcdctl 3.4.23 does", () => {
  let dir = '';
  let source: Member | undefined;
  const copies: Member[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsetcdctl-migrate-v2-'));
    source = await Member.start({ command: etcdCommand(), extraFlags: ['--enable-v2', '--snapshot-count', '10'] });
    const write = async ([method, path, form]: [string, string, string]): Promise<void> => {
      const response = await fetch(`${source!.clientUrl}/v2/keys/${path}`, {
        method,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        ...(form === '' ? {} : { body: form }),
        signal: AbortSignal.timeout(10_000),
      });
      await response.arrayBuffer();
    };
    for (const call of v2Writes) await write(call);
    // etcd expires TTL keys by logged SYNC requests, which its leader proposes every 500 ms while any exist.
    await sleep(2_000);
    for (const call of v2WritesAfterExpiry) await write(call);
    const put = await runEtcdctl(`127.0.0.1:${source.clientPort}`, ['put', 'v3-key', 'v3-value']);
    assert.equal(put.stdout, 'OK\n', put.stderr);
    const grant = await runEtcdctl(`127.0.0.1:${source.clientPort}`, ['lease', 'grant', '900']);
    assert.equal(grant.code, 0, grant.stderr);
    await source.stop();
    await writeFile(join(dir, 'transformer.js'), `#!${process.execPath}\n${transformerSource}`);
    await chmod(join(dir, 'transformer.js'), 0o755);
  });

  after(async () => {
    await Promise.all([source?.destroy(), ...copies.map((member) => member.destroy())]);
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  /** A stopped etcd member on the source's ports, its data dir a copy of the source's. */
  const copyOfSource = async (): Promise<Member> => {
    const member = await Member.create({
      command: etcdCommand(),
      ports: { client: source!.clientPort, peer: source!.peerPort },
    });
    copies.push(member);
    await cp(source!.dataDir, member.dataDir, { recursive: true });
    return member;
  };

  /** What etcd serves from a data dir: every key with its revisions, the leases, the hash of the keys. */
  const served = async (member: Member): Promise<string> => {
    await member.restart();
    try {
      const endpoint = `127.0.0.1:${member.clientPort}`;
      const answers = await Promise.all(
        [
          ['get', '--prefix', '', '-w', 'json'],
          ['lease', 'list'],
          ['endpoint', 'hashkv'],
        ].map((args) => runEtcdctl(endpoint, args)),
      );
      return answers.map(transcript).join('\n');
    } finally {
      await member.stop();
    }
  };

  const convertBoth = async (
    flags: readonly string[],
    env: Record<string, string> = {},
  ): Promise<{ expected: string; actual: string; etcdctlCopy: Member; tsetcdctlCopy: Member }> => {
    const [etcdctlCopy, tsetcdctlCopy] = [await copyOfSource(), await copyOfSource()];
    const options = { cwd: dir, env: { ETCDCTL_API: '3', ...env }, timeoutMs: 30_000 };
    const [expected, actual] = await Promise.all([
      runCommand(etcdctlBinaryPath, ['migrate', '--data-dir', etcdctlCopy.dataDir, ...flags], options),
      runCommand(
        process.execPath,
        [tsetcdctlBinPath, 'migrate', '--data-dir', tsetcdctlCopy.dataDir, ...flags],
        options,
      ),
    ]);
    return { expected: transcript(expected), actual: transcript(actual), etcdctlCopy, tsetcdctlCopy };
  };

  it('with the default transformer: the same transcript, then the same keys, revisions, leases and hash', async () => {
    const { expected, actual, etcdctlCopy, tsetcdctlCopy } = await convertBoth([]);
    assert.match(expected, /finished transforming keys\n/);
    assert.equal(actual, expected);
    const reference = await served(etcdctlCopy);
    assert.match(reference, /"key":"L2FmdGVy"/, 'expected etcd to serve the converted key /after');
    assert.match(reference, /"key":"L3R0bC1sb25n"/, 'expected etcd to serve the TTL key /ttl-long');
    assert.equal(await served(tsetcdctlCopy), reference);
  });

  it('with --no-ttl and a transformer program: the same transcript, then the same keys, revisions and hash', async () => {
    const flags = ['--no-ttl', '--transformer', join(dir, 'transformer.js')];
    const { expected, actual, etcdctlCopy, tsetcdctlCopy } = await convertBoth(flags);
    assert.equal(actual, expected);
    const reference = await served(etcdctlCopy);
    assert.match(reference, /"key":"L21vdmVkL2FmdGVy"/, 'expected etcd to serve the transformed key /moved/after');
    assert.doesNotMatch(reference, /"key":"L21vdmVkL3R0bC1sb25n"/, 'expected --no-ttl to leave /ttl-long out');
    assert.equal(await served(tsetcdctlCopy), reference);
  });

  it('reports a transformer that fails as etcdctl does', async () => {
    const flags = ['--transformer', join(dir, 'transformer.js')];
    const { expected, actual } = await convertBoth(flags, { TRANSFORMER_EXIT: '3' });
    assert.match(expected, /failed to transform keys\n/);
    assert.equal(actual, expected);
  });
});
