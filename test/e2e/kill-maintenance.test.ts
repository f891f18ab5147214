/**
 * kill -9 in the middle of a snapshot save, a restore and a defragmentation loses nothing: after
 * the member restarts every acknowledged write is there and the data dir takes new writes; the
 * snapshot file of a save cut short never appears under its final name (etcdctl writes FILE.part
 * and renames it); a restore killed mid-way leaves no data dir (only its .part dir), and a restore
 * run again removes a leftover .part dir instead of building on it.
 * Enough keys are loaded that each operation takes a while; every wait is a bounded loop.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EtcdGrpc } from '../support/etcd-grpc.js';
import { runCommand, runEtcdctl } from '../support/etcdctl.js';
import { memberDataPaths } from '../../src/lib/paths.js';
import { backupCopyMemoryDir } from '../../src/lib/limits.js';
import { Member } from '../support/member.js';
import { endpointOf, ok, restoreInto } from '../support/snapshots.js';
import { sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const skip = sut.command === undefined ? { skip: sut.skipReason } : {};
const keysLoaded = 60_000;
const txnPuts = 100;
const pollMs = 2;
const pollsMax = 15_000;
const compiledCtl = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ctl', 'main.js');
const ctlLoader = `import(${JSON.stringify(compiledCtl)}).then((m) => m.run(process.argv.slice(1)))`;
/** A restore or a defragmentation is killed once the database it writes holds this many bytes on disk. */
const killAfterBytes = 2 * 1024 * 1024;

/** Bytes of `path` on disk (0 when it does not exist yet). */
function allocatedBytes(path: string): number {
  try {
    return statSync(path).blocks * 512;
  } catch {
    return 0;
  }
}

async function loadKeys(grpc: EtcdGrpc): Promise<void> {
  const value = Buffer.alloc(256, 'v');
  for (let start = 0; start < keysLoaded; start += txnPuts * 8) {
    await Promise.all(
      Array.from({ length: 8 }, async (_, worker) => {
        const from = start + worker * txnPuts;
        const success = [];
        for (let index = from; index < Math.min(keysLoaded, from + txnPuts); index++)
          success.push({ requestPut: { key: Buffer.from(`load/${String(index).padStart(6, '0')}`), value } });
        if (success.length === 0) return;
        const answer = await grpc.unary('etcdserverpb.KV/Txn', { compare: [], success, failure: [] });
        assert.equal(answer.code, 0, answer.message);
      }),
    );
  }
}

/** Puts acked/<n> one after another until a put fails (the member was killed); returns the acknowledged keys, in order. */
async function putUntilFailure(grpc: EtcdGrpc): Promise<string[]> {
  const acknowledged: string[] = [];
  for (let index = 0; index < 1_000_000; index++) {
    const key = `acked/${String(index).padStart(7, '0')}`;
    const answer = await grpc.unary('etcdserverpb.KV/Put', { key: Buffer.from(key), value: Buffer.from('x') });
    if (answer.code !== 0) return acknowledged;
    acknowledged.push(key);
  }
  throw new Error('the member was never killed');
}

/** Waits (bounded) until `seen()` holds. */
async function until(what: string, seen: () => boolean): Promise<void> {
  for (let poll = 0; poll < pollsMax; poll++) {
    if (seen()) return;
    await sleep(pollMs);
  }
  throw new Error(`${what} did not happen within ${pollsMax} polls`);
}

/** etcdctl's bound on one request here: it stops a hang, not a slow machine. */
const commandTimeoutFlag = '--command-timeout=30s';

async function keysWithPrefix(endpoint: string, prefix: string): Promise<string[]> {
  // The first reads after a restart on a loaded machine have outlasted etcdctl's 5 s default.
  const args = ['get', prefix, '--prefix', '--keys-only', commandTimeoutFlag];
  const out = await ok(runEtcdctl(endpoint, args, { timeoutMs: 60_000 }));
  return out.split('\n').filter((line) => line !== '');
}

/** After the restart: every acknowledged write and every loaded key is there, and the member takes a write. */
async function checkNothingLost(member: Member, acknowledged: string[]): Promise<void> {
  const endpoint = endpointOf(member);
  // Every acknowledged put is there; the one put in flight at the kill may have committed or not.
  const present = await keysWithPrefix(endpoint, 'acked/');
  assert.deepEqual(present.slice(0, acknowledged.length), acknowledged);
  assert.ok(
    present.length <= acknowledged.length + 1,
    `at most the put in flight besides, saw ${present.length - acknowledged.length}`,
  );
  assert.equal((await keysWithPrefix(endpoint, 'load/')).length, keysLoaded);
  await ok(runEtcdctl(endpoint, ['put', 'after-restart', 'ok', commandTimeoutFlag]));
}

function snapDir(member: Member): string {
  return join(member.dataDir, 'member', 'snap');
}

/** A save's backend copies of the member process `pid`: beside the backend, or in memory (backupCopyMemoryDir). */
function backupCopies(member: Member, pid: number): string[] {
  const inMemory = existsSync(backupCopyMemoryDir)
    ? readdirSync(backupCopyMemoryDir).filter((name) => name.startsWith(`tsetcd-backup-${pid}-`))
    : [];
  return [...readdirSync(snapDir(member)).filter((name) => name.startsWith('backup-')), ...inMemory];
}

test(
  'kill -9 during snapshot save: acknowledged writes survive, and no file appears under the final name',
  skip,
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsetcd-kill-save-'));
    const member = await Member.start({ command: sut.command as MemberCommand });
    const grpc = new EtcdGrpc(member.clientUrl);
    try {
      await loadKeys(grpc);
      const file = join(dir, 'cut.db');
      // etcdctl's save (without --command-timeout) retries its stream against the dead member
      // forever, so once the member is killed it is stopped as well, before the member restarts.
      const stopSave = new AbortController();
      const save = runEtcdctl(endpointOf(member), ['snapshot', 'save', file], {
        timeoutMs: 60_000,
        signal: stopSave.signal,
      });
      const writes = putUntilFailure(grpc);
      const killedPid = member.pid;
      await until('a backup being built', () => backupCopies(member, killedPid).length > 0);
      await member.kill9();
      const acknowledged = await writes;
      stopSave.abort();
      const saved = await save;
      assert.notEqual(saved.code, 0, 'the save was cut short');
      assert.equal(existsSync(file), false, 'a cut-short snapshot never carries the final name');
      grpc.close();
      await member.restart();
      await checkNothingLost(member, acknowledged);
      assert.deepEqual(backupCopies(member, killedPid), [], 'the cut-short backup copy is gone');
    } finally {
      grpc.close();
      await member.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test('kill -9 during defragment: acknowledged writes survive and the data dir takes writes', skip, async () => {
  const member = await Member.start({ command: sut.command as MemberCommand });
  const grpc = new EtcdGrpc(member.clientUrl);
  try {
    await loadKeys(grpc);
    const defrag = runEtcdctl(endpointOf(member), ['defrag'], { timeoutMs: 60_000 });
    const writes = putUntilFailure(grpc);
    // Killed once the compacted copy holds some of the database (the whole one holds about 20 MiB):
    // a copy cut short mid-way, which must never take the backend's place.
    const copy = join(snapDir(member), 'db-defrag', 'data.mdb');
    await until('a defragmentation copy being written', () => allocatedBytes(copy) >= killAfterBytes);
    await member.kill9();
    const acknowledged = await writes;
    await defrag;
    grpc.close();
    await member.restart();
    await checkNothingLost(member, acknowledged);
    assert.equal(existsSync(join(snapDir(member), 'db-defrag')), false, 'the cut-short copy is gone');
    // A start opens the backend before it looks at leftovers, so what a start did to the data dir
    // shows at the start after it.
    await member.stop();
    await member.restart();
    await checkNothingLost(member, acknowledged);
  } finally {
    grpc.close();
    await member.destroy();
  }
});

test(
  'kill -9 in the middle of tsetcdctl snapshot restore leaves no data dir, and a restore run again over a leftover .part dir serves only its own file',
  skip,
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsetcd-kill-restore-'));
    const members: Member[] = [];
    const ctl = (args: string[]) => ['--input-type=module', '-e', ctlLoader, ...args];
    try {
      const source = await Member.start({ command: sut.command as MemberCommand });
      members.push(source);
      const grpc = new EtcdGrpc(source.clientUrl);
      await loadKeys(grpc);
      grpc.close();
      const file = join(dir, 'whole.db');
      await ok(runEtcdctl(endpointOf(source), ['snapshot', 'save', file], { timeoutMs: 60_000 }));
      // A later snapshot of the same member: the same records, then keys whole.db does not have.
      for (const key of ['late/1', 'late/2']) await ok(runEtcdctl(endpointOf(source), ['put', key, 'x']));
      const later = join(dir, 'later.db');
      await ok(runEtcdctl(endpointOf(source), ['snapshot', 'save', later], { timeoutMs: 60_000 }));
      await source.stop();

      // The restores write the data dir a member then starts on.
      const restored = await Member.create({ command: sut.command as MemberCommand, name: 'restored' });
      members.push(restored);
      const partDir = `${restored.dataDir}.part`;
      const child = spawn(process.execPath, ctl(restoreInto(file, restored)), { stdio: 'ignore' });
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.once('exit', (_, signal) => resolve(signal)),
      );
      // Killed once the database being restored holds some of the records (blocks on disk, as the
      // write map's file is sparse), which is before the restore's end. It is looked for in the
      // data dir as well, so a restore that wrote there in place is killed too (and fails below).
      const databases = [partDir, restored.dataDir].map((at) => join(memberDataPaths(at, '').backendPath, 'data.mdb'));
      await until('the restore writing records', () => databases.some((at) => allocatedBytes(at) >= killAfterBytes));
      child.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL', 'the restore ended by the kill');
      assert.equal(existsSync(restored.dataDir), false, 'a cut-short restore leaves no data dir');
      assert.ok(existsSync(partDir), 'the kill landed mid-way: the restore had not yet renamed its .part dir');

      // The leftover .part dir as a restore of later.db killed just before its rename leaves it:
      // every record written and committed. etcdctl 3.4 writes into the data dir itself and refuses
      // a re-run with `data-dir "D" exists`; tsetcdctl's re-run removes the leftover .part dir, so
      // none of later.db's records reach the data dir restored from whole.db.
      await rm(partDir, { recursive: true, force: true });
      const intoPart = restoreInto(later, restored).map((arg) => (arg === restored.dataDir ? partDir : arg));
      await ok(runCommand(process.execPath, ctl(intoPart)));
      await ok(runCommand(process.execPath, ctl(restoreInto(file, restored))));
      assert.equal(existsSync(partDir), false, 'the re-run removed the leftover .part dir');
      await restored.restart();
      assert.equal((await keysWithPrefix(endpointOf(restored), 'load/')).length, keysLoaded);
      assert.deepEqual(await keysWithPrefix(endpointOf(restored), 'late/'), [], 'nothing of the leftover .part dir');
    } finally {
      for (const member of members) await member.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
