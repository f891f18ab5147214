/**
 * `etcdctl migrate`: moves a v2 store's keys into the mvcc store of a stopped member's data dir.
 * Over an etcd 3.4 data dir it does what etcdctl does: loads the newest v2 snapshot from
 * member/snap, replays the WAL after it (src/v2store), hands the keys under /1 as etcd's v2 JSON
 * to the transformer and writes the KeyValues it returns into member/snap/db under their
 * ModRevision, raising the consistent index to the last replayed entry. The default transformer
 * keeps every value with its v2 indexes as revisions and version 1, no lease; --no-ttl leaves TTL
 * keys out. A tsetcd data dir keeps no v2 store, so there it answers that there is nothing to move.
 */
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { delimiter, join } from 'node:path';
import { decodeKeyValue } from '../src/api/key-value-codec.js';
import type { KeyValue } from '../src/api/types.js';
import { putKeyValuesIntoEtcdDb } from '../src/snap/etcd-db-update.js';
import { loadNewestEtcdSnapshot } from '../src/snap/etcd-snap-file.js';
import { exportV2Keys, replayV2Store, ttlSecondsAt, type V2KeyNode } from '../src/v2store/replay.js';
import { formatGoTimeNs } from '../src/v2store/store.js';
import { looksLikeEtcdWal, readEtcdWalEntries } from '../src/wal/etcd-wal-reader.js';
import { fsyncDirectory } from '../src/wal/fs-sync.js';
import { readWal } from '../src/wal/reader.js';
import { waitForFlockRelease } from './bolt-lock.js';
import type { CommandContext } from './context.js';
import { goJsonString } from './go-format.js';
import { nodeChildProcess } from './lazy-modules.js';
import { ExitCode, exitWithError, type Output } from './output.js';

/** Why Go's exec.Command(program).Start() would fail, in its words, or undefined when it would start. */
function transformerStartError(program: string, env: NodeJS.ProcessEnv): string | undefined {
  const runnable = (path: string): 'ok' | 'missing' | 'denied' => {
    try {
      if (!statSync(path).isFile()) return 'denied';
      accessSync(path, constants.X_OK);
      return 'ok';
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'denied';
    }
  };
  if (!program.includes('/')) {
    const found = (env.PATH ?? '')
      .split(delimiter)
      .some((dir) => runnable(join(dir === '' ? '.' : dir, program)) === 'ok');
    return found ? undefined : `exec: "${program}": executable file not found in $PATH`;
  }
  const state = runnable(program);
  if (state === 'ok') return undefined;
  return `fork/exec ${program}: ${state === 'missing' ? 'no such file or directory' : 'permission denied'}`;
}

/** A key as etcd's v2 JSON (the NodeExtern a transformer reads): key, value, dir, expiration, ttl, indexes. */
export function v2KeyJson(node: V2KeyNode, nowNs: bigint): string {
  const fields = [`"key":${goJsonString(node.key)}`];
  if (!node.dir) fields.push(`"value":${goJsonString(node.value)}`);
  else fields.push('"dir":true');
  if (node.expireNs !== undefined) {
    fields.push(`"expiration":"${formatGoTimeNs(node.expireNs)}"`);
    const ttl = ttlSecondsAt(node, nowNs);
    if (ttl !== 0) fields.push(`"ttl":${ttl}`);
  }
  if (node.modifiedIndex !== 0) fields.push(`"modifiedIndex":${node.modifiedIndex}`);
  if (node.createdIndex !== 0) fields.push(`"createdIndex":${node.createdIndex}`);
  return `{${fields.join(',')}}`;
}

/** The v2 JSON of every key to convert, concatenated as etcdctl writes them to the transformer. */
function transformerInput(nodes: readonly V2KeyNode[], noTtl: boolean, nowNs: bigint): string {
  return nodes
    .filter((node) => !noTtl || ttlSecondsAt(node, nowNs) === 0)
    .map((node) => v2KeyJson(node, nowNs))
    .join('');
}

/** etcdctl's own transformer: each value with its v2 indexes as revisions and version 1; directories dropped. */
function defaultTransform(nodes: readonly V2KeyNode[], noTtl: boolean, nowNs: bigint): KeyValue[] {
  const encoder = new TextEncoder();
  return nodes
    .filter((node) => !node.dir && (!noTtl || ttlSecondsAt(node, nowNs) === 0))
    .map((node) => ({
      key: encoder.encode(node.key),
      value: encoder.encode(node.value),
      createRevision: node.createdIndex,
      modRevision: node.modifiedIndex,
      version: 1,
      lease: 0n,
    }));
}

/** The KeyValues a transformer wrote: each an 8-byte little-endian length, then mvccpb.KeyValue; stops at the first bad one. */
function decodeTransformerOutput(bytes: Buffer): KeyValue[] {
  const kvs: KeyValue[] = [];
  let offset = 0;
  while (offset + 8 <= bytes.length) {
    const length = bytes.readBigInt64LE(offset);
    offset += 8;
    if (length < 0n || length > BigInt(bytes.length - offset)) break;
    try {
      kvs.push(decodeKeyValue(bytes.subarray(offset, offset + Number(length))));
    } catch {
      break;
    }
    offset += Number(length);
  }
  return kvs;
}

/** Runs the user's transformer on `input`; its stderr is ours. Resolves with its stdout and exit status. */
function runTransformer(program: string, input: string): Promise<{ stdout: Buffer; exitText: string | undefined }> {
  const child = nodeChildProcess().spawn(program, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.stdin.on('error', () => undefined);
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const exitText =
        signal !== null ? `signal: ${signalText(signal)}` : code !== 0 ? `exit status ${code}` : undefined;
      resolve({ stdout: Buffer.concat(chunks), exitText });
    });
  });
}

/** Go's names for the signals a transformer is likely to die of. */
function signalText(signal: NodeJS.Signals): string {
  const names: Partial<Record<NodeJS.Signals, string>> = {
    SIGKILL: 'killed',
    SIGTERM: 'terminated',
    SIGINT: 'interrupt',
    SIGSEGV: 'segmentation fault',
    SIGABRT: 'aborted',
    SIGPIPE: 'broken pipe',
  };
  return names[signal] ?? signal;
}

/**
 * Writes the KeyValues into the member's backend file (created when missing), durably: the new file
 * is written beside the old one, synced and renamed over it, so a crash leaves one or the other whole.
 */
function writeBackend(dataDir: string, kvs: readonly KeyValue[], index: number): void {
  const dir = join(dataDir, 'member', 'snap');
  const path = join(dir, 'db');
  const file = existsSync(path) ? readFileSync(path) : undefined;
  const updated = putKeyValuesIntoEtcdDb(file, kvs, index);
  const staged = `${path}.migrate`;
  const fd = openSync(staged, 'w', 0o600);
  try {
    let written = 0;
    while (written < updated.length) written += writeSync(fd, updated, written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(staged, path);
  fsyncDirectory(dir);
}

/** Converts an etcd data dir's v2 keys as etcdctl does. */
async function migrateEtcdDataDir(
  output: Output,
  options: { dataDir: string; snapDir: string; walDir: string; transformer: string; noTtl: boolean },
): Promise<void> {
  let replayed: ReturnType<typeof replayV2Store>;
  try {
    const snapshot = loadNewestEtcdSnapshot(options.snapDir);
    const entries = readEtcdWalEntries(options.walDir, snapshot ?? { index: 0, term: 0 });
    replayed = replayV2Store(snapshot, entries);
  } catch (error) {
    exitWithError(output, ExitCode.error, (error as Error).message);
  }
  for (const line of replayed.logs) output.out(`${line}\n`);
  // etcdctl opens the backend next, waiting while a running etcd holds it.
  const dbPath = join(options.snapDir, 'db');
  await waitForFlockRelease(dbPath, () =>
    output.err(`waiting for etcd to close and release its lock on ${goJsonString(dbPath)}\n`),
  );
  const nodes = exportV2Keys(replayed.store);
  if (nodes === undefined) {
    output.out('no v2 keys to migrate\n');
    return;
  }
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  let kvs: KeyValue[];
  let failure: string | undefined;
  if (options.transformer === '') kvs = defaultTransform(nodes, options.noTtl, nowNs);
  else {
    const result = await runTransformer(options.transformer, transformerInput(nodes, options.noTtl, nowNs));
    kvs = decodeTransformerOutput(result.stdout);
    failure = result.exitText;
  }
  writeBackend(options.dataDir, kvs, replayed.index);
  if (failure !== undefined) {
    output.out('failed to transform keys\n');
    exitWithError(output, ExitCode.error, failure);
  }
  output.out('finished transforming keys\n');
}

/** `etcdctl migrate [--data-dir dir] [--wal-dir dir] [--transformer program] [--no-ttl]`. */
export async function runMigrate(context: CommandContext): Promise<void> {
  const { output, flags } = context;
  const transformer = flags.string('transformer');
  if (transformer === '') output.out('using default transformer\n');
  else {
    const startError = transformerStartError(transformer, context.env);
    if (startError !== undefined) exitWithError(output, ExitCode.error, startError);
  }
  const dataDir = flags.string('data-dir');
  // etcdctl loads the member's snapshots first, then reads its WAL.
  const snapDir = join(dataDir, 'member', 'snap');
  const walDir = flags.string('wal-dir') !== '' ? flags.string('wal-dir') : join(dataDir, 'member', 'wal');
  let walNames: string[] = [];
  for (const dir of [snapDir, walDir]) {
    try {
      walNames = readdirSync(dir);
    } catch {
      exitWithError(output, ExitCode.error, `open ${dir}: no such file or directory`);
    }
  }
  if (!walNames.some((name) => name.endsWith('.wal'))) exitWithError(output, ExitCode.error, 'wal: file not found');
  if (looksLikeEtcdWal(walDir)) {
    const noTtl = flags.bool('no-ttl');
    await migrateEtcdDataDir(output, { dataDir, snapDir, walDir, transformer, noTtl });
    return;
  }
  try {
    readWal(walDir);
  } catch (error) {
    exitWithError(output, ExitCode.error, (error as Error).message);
  }
  output.out('no v2 keys to migrate\n');
}
