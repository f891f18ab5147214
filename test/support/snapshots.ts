/** What the snapshot tests share: the same writes on any member, and what etcdctl shows of them. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pageFlags } from '../../src/snap/bbolt/format.js';
import { childBucket, readBolt } from '../../src/snap/bbolt/reader.js';
import { authDialTimeoutFlag, runCommand, runEtcdctl, type CommandResult } from './etcdctl.js';
import type { Member } from './member.js';
import { etcdctlBinaryPath } from './sut.js';

/** `snapshot restore FILE` with the flags that make `member`'s data dir a one-member cluster of its own. */
export function restoreInto(file: string, member: Member): string[] {
  const cluster = `${member.name}=${member.peerUrl}`;
  return [
    'snapshot',
    'restore',
    file,
    '--name',
    member.name,
    '--data-dir',
    member.dataDir,
    '--initial-cluster',
    cluster,
    '--initial-advertise-peer-urls',
    member.peerUrl,
  ];
}

/** The backend database `etcdctl snapshot restore` leaves in a data dir. */
export function restoredDbPath(dataDir: string): string {
  return join(dataDir, 'member', 'snap', 'db');
}

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

/** Users, roles and permissions, then auth enabled: root, alice (role reader), and carol without a password. */
export async function writeAuth(endpoint: string): Promise<void> {
  const etcdctl = (...args: string[]) => ok(runEtcdctl(endpoint, args));
  await etcdctl('put', 'a', 'for-alice');
  await etcdctl('put', 'z', 'not-for-alice');
  await etcdctl('user', 'add', 'root:root-secret');
  await etcdctl('user', 'grant-role', 'root', 'root');
  await etcdctl('role', 'add', 'reader');
  await etcdctl('role', 'grant-permission', 'reader', 'read', 'a');
  await etcdctl('role', 'grant-permission', 'reader', 'readwrite', 'b', 'd');
  await etcdctl('role', 'grant-permission', 'reader', 'write', '--prefix', 'w/');
  await etcdctl('user', 'add', 'alice:alice-secret');
  await etcdctl('user', 'grant-role', 'alice', 'reader');
  await etcdctl('user', 'add', 'carol', '--no-password');
  await etcdctl('user', 'grant-role', 'carol', 'reader');
  await etcdctl('auth', 'enable');
}

/**
 * What users can do on a member writeAuth set up: each command's exit code, output and error
 * line, as alice with the right and a wrong password, as carol (no password), and as root.
 */
export async function authView(endpoint: string): Promise<unknown[]> {
  const alice = ['--user', 'alice:alice-secret'];
  const root = ['--user', 'root:root-secret'];
  const commands = [
    [...alice, 'get', 'a'],
    [...alice, 'put', 'c', 'written'],
    [...alice, 'get', 'c'],
    [...alice, 'put', 'w/1', 'x'],
    [...alice, 'get', 'z'],
    [...alice, 'put', 'a', 'no'],
    [...alice, 'get', 'w/1'],
    ['--user', 'alice:wrong', 'get', 'a'],
    ['--user', 'carol:anything', 'get', 'a'],
    ['get', 'a'],
    [...root, 'get', 'z'],
    [...root, 'user', 'list'],
    [...root, 'role', 'list'],
    [...root, 'user', 'get', 'alice'],
    [...root, 'user', 'get', 'carol'],
    [...root, 'role', 'get', 'reader'],
  ];
  const outcomes: unknown[] = [];
  for (const args of commands) {
    const result = await runEtcdctl(endpoint, [authDialTimeoutFlag, ...args]);
    const error = result.stderr.split('\n').find((line) => line.startsWith('Error:')) ?? '';
    outcomes.push({ args: args.join(' '), code: result.code, stdout: result.stdout, error });
  }
  return outcomes;
}

/** Bytes etcd's snapshot save appends to the database: its sha256. */
const snapshotTrailerBytes = 32;

/** The cluster bucket's clusterVersion in a bbolt database file or a saved snapshot (its sha256 trailer left off). */
export function clusterVersionIn(file: string): string | undefined {
  const bytes = readFileSync(file);
  const database = bytes.length % 512 === snapshotTrailerBytes ? bytes.subarray(0, -snapshotTrailerBytes) : bytes;
  const cluster = childBucket(readBolt(database).root, 'cluster');
  const item = cluster?.items.find((entry) => Buffer.from(entry.key).toString() === 'clusterVersion');
  return item === undefined || !('value' in item) ? undefined : Buffer.from(item.value).toString();
}

/**
 * How a saved snapshot's pages are laid out, read page by page apart from the product's reader:
 * the high-water mark and the pages no tree reaches, then, for the root bucket and each bucket on
 * pages of its own, its pages level by level in key order as `kind elements/bytes`, and the names
 * of the buckets stored inline. Page numbers are left out: etcd's depend on which pages its
 * earlier commits freed. The root leaf's length is left out too: it holds the members bucket
 * inline, whose JSON names each member's own IDs and URLs.
 */
export function snapshotPageLayout(file: string): string[] {
  const bytes = readFileSync(file);
  const database = bytes.subarray(0, bytes.length - snapshotTrailerBytes);
  const view = new DataView(database.buffer, database.byteOffset, database.byteLength);
  const pageBytes = view.getUint32(16 + 8, true);
  const metaAt = view.getBigUint64(16 + 48, true) >= view.getBigUint64(pageBytes + 16 + 48, true) ? 0 : pageBytes;
  const pageCount = Number(view.getBigUint64(metaAt + 16 + 40, true));
  const lines: string[] = [];
  const inline: string[] = [];
  let reached = 2;
  const walk = (bucketName: string, rootPageId: number): void => {
    let level = [rootPageId];
    const buckets: [string, number][] = [];
    for (let depth = 0; level.length > 0; depth++) {
      const next: number[] = [];
      const pages: string[] = [];
      for (const pageId of level) {
        const at = pageId * pageBytes;
        const flags = view.getUint16(at + 8, true);
        const count = view.getUint16(at + 10, true);
        reached += 1 + view.getUint32(at + 12, true);
        let used = 16 + count * 16;
        for (let index = 0; index < count; index++) {
          const element = at + 16 + index * 16;
          if (flags === pageFlags.branch) {
            used += view.getUint32(element + 4, true);
            next.push(Number(view.getBigUint64(element + 8, true)));
            continue;
          }
          const [position, keyBytes, valueBytes] = [4, 8, 12].map((offset) => view.getUint32(element + offset, true));
          used += keyBytes! + valueBytes!;
          if ((view.getUint32(element, true) & 1) === 0) continue;
          const key = database.subarray(element + position!, element + position! + keyBytes!);
          const root = Number(view.getBigUint64(element + position! + keyBytes!, true));
          if (root === 0) inline.push(Buffer.from(key).toString());
          else buckets.push([Buffer.from(key).toString(), root]);
        }
        const kind = flags === pageFlags.branch ? 'branch' : 'leaf';
        pages.push(bucketName === '' && depth === 0 ? `${kind} ${count}` : `${kind} ${count}/${used}`);
      }
      lines.push(`${bucketName === '' ? 'root' : bucketName} level ${depth}: ${pages.join(', ')}`);
      level = next;
    }
    for (const [name, root] of buckets) walk(name, root);
  };
  walk('', Number(view.getBigUint64(metaAt + 16 + 16, true)));
  return [`${pageCount} pages, ${pageCount - reached} free`, ...lines, `inline: ${inline.join(' ')}`];
}
