/**
 * tsetcdctl snapshot status and restore on a real etcd's snapshot: status prints what etcdctl
 * prints in every output format, restore refuses what etcdctl refuses with its words and exit
 * codes, and a tsetcd member started on the data dir restored (with --skip-hash-check) from the
 * database without its sha256 serves the same keys, revisions, versions and leases, and takes new
 * writes at the next revision.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { authDialTimeoutFlag, runCommand, runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import {
  authView,
  endpointOf,
  keyValues,
  leaseView,
  ok,
  saveAndStatus,
  writeAuth,
  writeHistory,
  restoreInto,
} from '../support/snapshots.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, tsetcdctlBinPath, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();

function tsetcdctl(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<CommandResult> {
  return runCommand(process.execPath, [tsetcdctlBinPath, ...args], { env });
}

/** etcdctl's restore logs JSON lines on stderr; only its "Error:" line is compared. */
function errorLine(result: CommandResult): { error: string; code: number | null } {
  return { error: result.stderr.split('\n').find((line) => line.startsWith('Error:')) ?? '', code: result.code };
}

test(
  'tsetcdctl snapshot status and restore work on a real etcd snapshot, and tsetcd serves the restored data',
  sut.command === undefined ? { skip: sut.skipReason } : {},
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsetcdctl-snapshot-'));
    const members: Member[] = [];
    try {
      const etcd = await Member.start({ command: etcdCommand() });
      members.push(etcd);
      const leaseId = await writeHistory(endpointOf(etcd));
      const file = join(dir, 'etcd.db');
      await saveAndStatus(endpointOf(etcd), file);
      const expected = await keyValues(endpointOf(etcd));
      const expectedLease = await leaseView(endpointOf(etcd), leaseId);
      await etcd.stop();

      for (const format of ['simple', 'table', 'json', 'fields', 'protobuf']) {
        const args = ['snapshot', 'status', file, '-w', format];
        assert.deepEqual(await tsetcdctl(args), await runCommand(etcdctlBinaryPath, args), `status -w ${format}`);
      }
      // etcdctl reads its ETCDCTL_* variables only as it makes a client, which status never does.
      const envFormat = { ETCDCTL_WRITE_OUT: 'json' };
      const statusArgs = ['snapshot', 'status', file];
      assert.deepEqual(
        await tsetcdctl(statusArgs, envFormat),
        await runCommand(etcdctlBinaryPath, statusArgs, { env: envFormat }),
        'status with ETCDCTL_WRITE_OUT',
      );

      // Refusals, each against etcdctl's.
      const restoreArgs = (path: string, dataDir: string, ...more: string[]) => [
        'snapshot',
        'restore',
        path,
        '--data-dir',
        dataDir,
        ...more,
      ];
      const noHash = join(dir, 'no-hash.db');
      await copyFile(file, noHash);
      await truncate(noHash, statSync(file).size - 32);
      const badHash = join(dir, 'bad-hash.db');
      await copyFile(file, badHash);
      const bytes = readFileSync(badHash);
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
      await writeFile(badHash, bytes);
      const existing = join(dir, 'existing');
      await mkdir(existing);
      const refusals = [
        restoreArgs(file, existing),
        restoreArgs(noHash, join(dir, 'r1')),
        restoreArgs(badHash, join(dir, 'r2')),
        restoreArgs(file, join(dir, 'r3'), '--name', 'other'),
        ['snapshot', 'restore'],
      ];
      for (const args of refusals) {
        const theirs = errorLine(await runCommand(etcdctlBinaryPath, args));
        // etcdctl leaves a half-made data dir behind some refusals; tsetcdctl checks before it writes.
        for (const made of ['r1', 'r2']) await rm(join(dir, made), { recursive: true, force: true });
        assert.deepEqual(errorLine(await tsetcdctl(args)), theirs, args.join(' '));
      }

      // The database without its sha256 (as copied from a data dir) restores with --skip-hash-check,
      // as etcdctl restores it; the member below is started on that restore.
      await ok(runCommand(etcdctlBinaryPath, restoreArgs(noHash, join(dir, 'r4'), '--skip-hash-check')));
      const restored = await Member.start({
        command: sut.command as MemberCommand,
        name: 'restored',
        beforeStart: async (member) => {
          await ok(tsetcdctl([...restoreInto(noHash, member), '--skip-hash-check']));
        },
      });
      members.push(restored);
      assert.deepEqual(await keyValues(endpointOf(restored)), expected);
      assert.deepEqual(await leaseView(endpointOf(restored), leaseId), expectedLease);
      await ok(runEtcdctl(endpointOf(restored), ['put', 'after', 'restore']));
      const after = JSON.parse(await ok(runEtcdctl(endpointOf(restored), ['get', 'after', '-w', 'json']))) as {
        kvs: { mod_revision: number }[];
      };
      assert.equal(after.kvs[0]?.mod_revision, (expected as { revision: number }).revision + 1);
    } finally {
      for (const member of members) await member.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  "tsetcdctl snapshot restore reads etcd's auth buckets: tsetcd restored from a real etcd snapshot authenticates the same users and enforces the same permissions",
  sut.command === undefined ? { skip: sut.skipReason } : {},
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsetcdctl-snapshot-auth-'));
    const members: Member[] = [];
    try {
      const etcd = await Member.start({ command: etcdCommand() });
      members.push(etcd);
      await writeAuth(endpointOf(etcd));
      const file = join(dir, 'etcd.db');
      await ok(
        runEtcdctl(endpointOf(etcd), [authDialTimeoutFlag, '--user', 'root:root-secret', 'snapshot', 'save', file], {
          timeoutMs: 60_000,
        }),
      );
      const restored = await Member.start({
        command: sut.command as MemberCommand,
        name: 'restored',
        beforeStart: async (member) => {
          await ok(tsetcdctl([...restoreInto(file, member)]));
        },
      });
      members.push(restored);
      const seen = await authView(endpointOf(restored));
      assert.deepEqual(seen, await authView(endpointOf(etcd)));
      assert.ok(
        seen.some((outcome) => (outcome as { error: string }).error.includes('permission denied')),
        'some command was refused',
      );
    } finally {
      for (const member of members) await member.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
