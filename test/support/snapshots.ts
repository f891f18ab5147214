/** What the snapshot tests share: the same writes on any member, and what etcdctl shows of them. */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { runCommand, runEtcdctl, type CommandResult } from './etcdctl.js';
import type { Member } from './member.js';
import { etcdctlBinaryPath } from './sut.js';

export function endpointOf(member: Member): string {
  return member.clientUrl.replace(/^http:\/\//, '');
}

export async function ok(result: Promise<CommandResult>): Promise<string> {
  const done = await result;
  assert.equal(done.code, 0, `etcdctl failed: ${done.stderr}${done.stdout}`);
  return done.stdout;
}

/** The same writes on any member: revisions of one key, a delete, a txn, a lease with keys, a compaction. */
export async function writeHistory(endpoint: string): Promise<string> {
  const etcdctl = (...args: string[]) => ok(runEtcdctl(endpoint, args));
  await etcdctl('put', 'a', 'one');
  await etcdctl('put', 'b', 'two');
  await etcdctl('put', 'a', 'three');
  await etcdctl('del', 'b');
  await etcdctl('put', 'c', 'four');
  await ok(runEtcdctl(endpoint, ['txn'], { stdin: '\nput d five\nput e six\n\n\n' }));
  const granted = await etcdctl('lease', 'grant', '600');
  const leaseId = /lease ([0-9a-f]+) granted/.exec(granted)?.[1];
  assert.ok(leaseId !== undefined, `expected a lease id in ${granted}`);
  await etcdctl('put', '--lease', leaseId, 'leased', 'seven');
  await etcdctl('compact', '--physical', '4');
  await etcdctl('put', 'a', 'eight');
  await etcdctl('del', 'c');
  return leaseId;
}

export interface SnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

export async function saveAndStatus(endpoint: string, path: string): Promise<SnapshotStatus> {
  await ok(runEtcdctl(endpoint, ['snapshot', 'save', path], { timeoutMs: 60_000 }));
  const size = (await stat(path)).size;
  assert.equal(size % 512, 32, `a snapshot file is 32 bytes (its sha256) over a multiple of 512, saw ${size}`);
  const status = await ok(runCommand(etcdctlBinaryPath, ['snapshot', 'status', path, '-w', 'json']));
  return JSON.parse(status) as SnapshotStatus;
}

/** What `etcdctl get` shows of every key, without the header's member and cluster IDs. */
export async function keyValues(endpoint: string): Promise<unknown> {
  const got = JSON.parse(await ok(runEtcdctl(endpoint, ['get', '', '--prefix', '-w', 'json']))) as {
    header: { revision: number };
    kvs: unknown[];
    count: number;
  };
  return { revision: got.header.revision, kvs: got.kvs, count: got.count };
}

export async function leaseView(endpoint: string, leaseId: string): Promise<unknown> {
  const list = await ok(runEtcdctl(endpoint, ['lease', 'list']));
  const live = JSON.parse(await ok(runEtcdctl(endpoint, ['lease', 'timetolive', leaseId, '--keys', '-w', 'json']))) as {
    id: number;
    'granted-ttl': number;
    keys: string[];
  };
  return { list, id: live.id, grantedTtl: live['granted-ttl'], keys: live.keys };
}
