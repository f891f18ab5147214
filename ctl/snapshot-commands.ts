/**
 * `etcdctl snapshot status` and `snapshot restore`, offline on a backup file in etcd's format
 * (a bbolt database, usually followed by its sha256). Restore turns it into a tsetcd data dir:
 * the backend gets the keys with their revisions, the leases and the compaction revisions; the
 * membership comes from the restore flags, which the member is then started with, as etcd's own
 * restore writes the new cluster's members instead of the old ones. The data dir appears whole or
 * not at all: it is built as <data-dir>.part and renamed.
 */
import type { ServiceError } from '@grpc/grpc-js';
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  statfsSync,
  writeSync,
} from 'node:fs';
import { Worker } from 'node:worker_threads';
import { dirname, join, resolve } from 'node:path';
import { restoreFiles } from './restore-files.js';
import { ConfigError } from '../src/config/config-error.js';
import { parseInitialCluster, verifyBootstrap } from '../src/config/initial-cluster.js';
import { dnsPeerUrlResolver, type PeerUrlResolveLogLine } from '../src/config/peer-url-resolver.js';
import type { ClusterMemberConfig } from '../src/config/config.js';
import { clusterIdFor, formatId, memberIdFor } from '../src/membership/ids.js';
import { encodeAuthState } from '../src/auth/auth-store.js';
import { memberDataPaths } from '../src/lib/paths.js';
import { LmdbBackend, type LmdbBackendOptions } from '../src/mvcc/lmdb-backend.js';
import { type BoltPageSource, windowedPageSource } from '../src/snap/bbolt/reader.js';
import { type EtcdDbRecords, etcdDbStatus, readEtcdDbRecords } from '../src/snap/etcd-db.js';
import type { HashThreadInput } from './snapshot-hash-thread.js';
import type { CommandContext } from './context.js';
import type { Message } from './client.js';
import { goJsonString, goQuote, humanizeBytes } from './go-format.js';
import { CtlExit, ExitCode, exitWithError } from './output.js';

/** etcdctl's rule: a file whose size is 32 over a multiple of 512 ends with its sha256. */
const sha256Bytes = 32;
const hashAlignmentBytes = 512;

/** Go's text for the errno of a failed file operation. */
function goErrnoText(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return error instanceof Error ? error.message : String(error);
}

/** `etcdctl snapshot status <filename>`: the file is read a few pages at a time, never whole. */
export async function runSnapshotStatus(context: CommandContext): Promise<void> {
  if (context.args.length !== 1)
    exitWithError(context.output, ExitCode.badArgs, 'snapshot status requires exactly one argument');
  const printer = context.printer();
  const file = openSnapshotFile(context, context.args[0]!, 'open');
  try {
    printer.dbStatus(etcdDbStatus(filePageSource(file)));
  } catch (error) {
    if (error instanceof CtlExit || !(error instanceof Error)) throw error;
    exitWithError(context.output, ExitCode.error, error.message);
  } finally {
    closeSync(file.fd);
  }
}

/**
 * A snapshot file opened for status or a restore: its descriptor and its size. A directory is
 * refused in etcdctl's words for the call that meets it: bbolt's open for status, the copy's read
 * for a restore.
 */
function openSnapshotFile(
  context: CommandContext,
  path: string,
  directoryCall: 'open' | 'read',
  missingCall: 'stat' | 'open' = 'stat',
): { fd: number; bytes: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    exitWithError(context.output, ExitCode.error, `${missingCall} ${path}: ${goErrnoText(error)}`);
  }
  const stats = fstatSync(fd);
  if (stats.isDirectory()) {
    closeSync(fd);
    exitWithError(context.output, ExitCode.error, `${directoryCall} ${path}: is a directory`);
  }
  return { fd, bytes: stats.size };
}

/** Bytes a restore reads ahead for each page slot: leaf pages mostly follow one another in the file. */
const readAheadBytes = 256 * 1024;

/** The first `bytes` of a snapshot file (all of it when undefined) as a page source that reads ahead. */
function filePageSource(file: { fd: number; bytes: number }, bytes = file.bytes): BoltPageSource {
  return windowedPageSource(bytes, readAheadBytes, (into, length, position) =>
    readFully(file.fd, into, length, position),
  );
}

function readFully(fd: number, buffer: Uint8Array, length: number, position: number): void {
  for (let done = 0; done < length;) {
    const read = readSync(fd, buffer, done, length - done, position + done);
    if (read === 0) throw new Error(`unexpected EOF at byte ${position + done}`);
    done += read;
  }
}

/** The sha256 of the first `length` bytes of `path`, computed on a thread of its own. */
function hashOnThread(path: string, length: number): Promise<Buffer> {
  const input: HashThreadInput = { path, length };
  // No execArgv of this process (such as --input-type, which a worker started from a file refuses).
  const worker = new Worker(new URL('./snapshot-hash-thread.js', import.meta.url), { workerData: input, execArgv: [] });
  return new Promise((resolve, reject) => {
    worker.once('message', (digest: Uint8Array) => resolve(Buffer.from(digest)));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the hash thread exited with code ${code}`)));
  });
}

/** etcdctl's hash check of a snapshot file; the digest is computed while the restore reads the file. */
class HashCheck {
  /** The database's bytes: the file's, less the sha256 at its end when it has one. */
  readonly databaseBytes: number;
  private readonly digest: Promise<Buffer> | undefined;

  constructor(
    private readonly context: CommandContext,
    path: string,
    private readonly file: { fd: number; bytes: number },
  ) {
    const hasHash = file.bytes % hashAlignmentBytes === sha256Bytes;
    const skip = context.flags.bool('skip-hash-check');
    if (!hasHash && !skip)
      exitWithError(context.output, ExitCode.error, 'snapshot missing hash but --skip-hash-check=false');
    this.databaseBytes = hasHash ? file.bytes - sha256Bytes : file.bytes;
    this.digest = hasHash && !skip ? hashOnThread(path, this.databaseBytes) : undefined;
    // Awaited by check(); until then a failure must not count as unhandled.
    this.digest?.catch(() => {});
  }

  /** Refuses the file, as etcdctl does before it reads any of it, when its sha256 is not the one at its end. */
  async check(): Promise<void> {
    if (this.digest === undefined) return;
    const seen = await this.digest;
    const expected = Buffer.alloc(sha256Bytes);
    readFully(this.file.fd, expected, sha256Bytes, this.databaseBytes);
    if (!seen.equals(expected)) {
      const goBytes = (bytes: Uint8Array) => `[${[...bytes].join(' ')}]`;
      exitWithError(this.context.output, ExitCode.error, `expected sha256 ${goBytes(expected)}, got ${goBytes(seen)}`);
    }
  }
}

/** `etcdctl snapshot restore <filename>`, into a tsetcd data dir. */
export async function runSnapshotRestore(context: CommandContext): Promise<void> {
  const { output, flags } = context;
  if (context.args.length !== 1)
    exitWithError(output, ExitCode.badArgs, 'snapshot restore requires exactly one argument');
  const name = flags.string('name');
  let cluster: ClusterMemberConfig[] = [];
  try {
    cluster = parseInitialCluster(flags.string('initial-cluster'));
    const resolver = dnsPeerUrlResolver((line) => zapResolveLine(context, line));
    await verifyBootstrap(name, cluster, flags.string('initial-advertise-peer-urls').split(','), resolver);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    exitWithError(output, ExitCode.error, error.message);
  }
  const dataDir = flags.string('data-dir') || `${name}.etcd`;
  if (existsSync(dataDir)) exitWithError(output, ExitCode.error, `data-dir ${goQuote(Buffer.from(dataDir))} exists`);
  const walDir = flags.string('wal-dir');
  if (walDir !== '' && existsSync(walDir))
    exitWithError(output, ExitCode.error, `wal-dir ${goQuote(Buffer.from(walDir))} exists`);
  const path = context.args[0]!;
  const where = {
    path,
    'wal-dir': walDir || join(dataDir, 'member', 'wal'),
    'data-dir': dataDir,
    'snap-dir': join(dataDir, 'member', 'snap'),
  };
  // etcdctl logs the restore before it opens the file, so a file it cannot open follows the line.
  zapLine(context, 'snapshot/v3_snapshot.go:296', 'restoring snapshot', where);
  const file = openSnapshotFile(context, path, 'read', 'open');
  try {
    const hash = new HashCheck(context, path, file);
    await restoreInto(context, dataDir, walDir, filePageSource(file, hash.databaseBytes), hash);
    logAddedMembers(context, cluster, flags.string('initial-cluster-token'));
    zapLine(context, 'snapshot/v3_snapshot.go:309', 'restored snapshot', where);
  } finally {
    closeSync(file.fd);
  }
}

/**
 * The lines etcdctl's restore logs as it writes the initial cluster's members into the restored
 * membership, in member ID order, with the IDs etcd derives from the peer URLs and the token.
 */
function logAddedMembers(context: CommandContext, cluster: readonly ClusterMemberConfig[], token: string): void {
  const members = cluster
    .map((member) => ({ id: memberIdFor(member.peerUrls, token), peerUrls: member.peerUrls }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const clusterId = formatId(clusterIdFor(members.map((member) => member.id)));
  for (const member of members)
    zapLine(context, 'membership/cluster.go:392', 'added member', {
      'cluster-id': clusterId,
      'local-member-id': '0',
      'added-peer-id': formatId(member.id),
      'added-peer-peer-urls': member.peerUrls,
    });
}

/**
 * The backend's options for a restore of a database of `databaseBytes`: LMDB writes in place in a
 * map twice that size, when the disk has room for all of it (a write map that finds the disk full
 * kills the process instead of failing a write), else as it always does.
 */
function writeMapOptions(dir: string, databaseBytes: number): LmdbBackendOptions {
  const writeMapBytes = 2 * databaseBytes + restoreMapSlackBytes;
  const { bavail, bsize } = statfsSync(dir);
  return bavail * bsize >= writeMapBytes ? { writeMapBytes } : {};
}

/** Room a restore's write map leaves beyond twice the database, for a small database's fixed pages. */
const restoreMapSlackBytes = 64 * 1024 * 1024;

/**
 * Builds the data dir from the database in `source`: the key bucket's records go into the backend
 * as the file is read, then the leases, compaction revisions and auth. The data dir is built beside
 * its place and renamed into it once whole, so a restore that is killed leaves no data dir (only
 * this one, which the next restore removes), never a partial one.
 */
async function restoreInto(
  context: CommandContext,
  dataDir: string,
  walDir: string,
  source: BoltPageSource,
  hash: HashCheck,
): Promise<void> {
  const files = restoreFiles();
  const partDir = `${dataDir}.part`;
  files.remove(partDir);
  const { backendPath } = memberDataPaths(partDir, walDir);
  let whole = false;
  try {
    files.mkdirs(backendPath);
    const backend = LmdbBackend.open(backendPath, writeMapOptions(dirname(backendPath), source.byteLength));
    try {
      let records: EtcdDbRecords | undefined;
      let refusal: unknown;
      try {
        backend.importRevisions((put) => (records = readEtcdDbRecords(source, put)));
      } catch (error) {
        refusal = error;
      }
      // A file whose hash is wrong is refused for that, whatever else is wrong with it.
      await hash.check();
      if (records === undefined) {
        if (!(refusal instanceof Error)) throw refusal;
        exitWithError(context.output, ExitCode.error, refusal.message);
      }
      const { leases, scheduledCompactRevision, finishedCompactRevision, auth } = records;
      // etcd's key-value store logs the compaction it finds while the restore opens the database.
      if (finishedCompactRevision >= 0)
        zapLine(context, 'mvcc/kvstore.go:388', 'restored last compact revision', {
          'meta-bucket-name': 'meta',
          'meta-bucket-name-key': 'finishedCompactRev',
          'restored-compact-revision': finishedCompactRevision,
        });
      backend.write({
        puts: [],
        deletes: [],
        meta: { consistentIndex: 0, term: 0, scheduledCompactRevision, finishedCompactRevision },
        leases: { puts: leases, deletes: [] },
        auth: encodeAuthState(auth),
      });
    } finally {
      await backend.close();
    }
    // The backend writes a restore without syncing as it goes; the whole of it reaches the disk
    // here, before the rename makes it the data dir (as etcdctl syncs the database it restores).
    for (const entry of readdirSync(backendPath, { withFileTypes: true }))
      if (entry.isFile()) files.fsyncFile(join(backendPath, entry.name));
    for (let dir = backendPath; dir.startsWith(partDir); dir = dirname(dir)) files.fsyncDirectory(dir);
    files.rename(partDir, dataDir);
    whole = true;
  } finally {
    if (!whole) files.remove(partDir);
  }
  files.fsyncDirectory(dirname(resolve(dataDir)));
}

/** A peer URL lookup's line as etcdctl's restore logs it (zap's production logger: durations in seconds). */
function zapResolveLine(context: CommandContext, line: PeerUrlResolveLogLine): void {
  const fields: Record<string, string | number> = { url: line.url, host: line.host };
  if (line.resolvedAddr !== undefined) fields['resolved-addr'] = line.resolvedAddr;
  if (line.retryIntervalMs !== undefined) fields['retry-interval'] = line.retryIntervalMs / 1000;
  if (line.error !== undefined) fields.error = line.error;
  zapLine(context, line.caller, line.message, fields, line.level);
}

/**
 * A zap line as etcdctl's snapshot save and restore write them to stderr: the snapshot manager's logger
 * stamps epoch seconds, clientv3's maintenance logger an ISO 8601 time.
 */
function zapLine(
  context: CommandContext,
  caller: string,
  message: string,
  fields: Record<string, string | number | readonly string[]> = {},
  level: 'info' | 'warn' = 'info',
): void {
  const encode = (value: string | number | readonly string[]): string =>
    typeof value === 'number'
      ? String(value)
      : typeof value === 'string'
        ? goJsonString(value)
        : `[${value.map((item) => goJsonString(item)).join(',')}]`;
  const extra = Object.entries(fields)
    .map(([name, value]) => `,${goJsonString(name)}:${encode(value)}`)
    .join('');
  const ts = caller.startsWith('clientv3/') ? goJsonString(new Date().toISOString()) : String(Date.now() / 1000);
  context.output.err(`{"level":"${level}","ts":${ts},"caller":"${caller}","msg":${goJsonString(message)}${extra}}\n`);
}

/** `etcdctl snapshot save <filename>`: the member's backend through Maintenance.Snapshot. */
export async function runSnapshotSave(context: CommandContext): Promise<void> {
  const { output } = context;
  if (context.args.length !== 1) exitWithError(output, ExitCode.badArgs, 'snapshot save expects one argument');
  const path = context.args[0]!;
  const endpoints = context.resolveEndpoints();
  if (endpoints.length !== 1)
    exitWithError(
      output,
      ExitCode.interrupted,
      `snapshot must be requested to one selected node, not multiple [${endpoints.join(' ')}]`,
    );
  const partPath = `${path}.part`;
  let file: number;
  try {
    file = openSync(partPath, 'w', 0o600);
  } catch (error) {
    exitWithError(output, ExitCode.interrupted, `could not open ${partPath} (open ${partPath}: ${goErrnoText(error)})`);
  }
  try {
    zapLine(context, 'snapshot/v3_snapshot.go:119', 'created temporary db file', { path: partPath });
    const started = process.hrtime.bigint();
    const size = await fetchSnapshot(context, file, endpoints[0] ?? '');
    if (size % hashAlignmentBytes !== sha256Bytes)
      exitWithError(output, ExitCode.interrupted, `sha256 checksum not found [bytes: ${size}]`);
    fsyncSync(file);
    closeSync(file);
    file = -1;
    const tookSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    zapLine(context, 'snapshot/v3_snapshot.go:142', 'fetched snapshot', {
      endpoint: endpoints[0] ?? '',
      size: humanizeBytes(size),
      took: tookSeconds,
    });
    try {
      renameSync(partPath, path);
    } catch (error) {
      exitWithError(
        output,
        ExitCode.interrupted,
        `could not rename ${partPath} to ${path} (rename ${partPath} ${path}: ${goErrnoText(error)})`,
      );
    }
    zapLine(context, 'snapshot/v3_snapshot.go:152', 'saved', { path });
  } finally {
    if (file !== -1) closeSync(file);
    rmSync(partPath, { force: true });
  }
  output.out(`Snapshot saved at ${path}\n`);
}

/** Copies the snapshot stream into `file`; the number of bytes written. */
async function fetchSnapshot(context: CommandContext, file: number, endpoint: string): Promise<number> {
  // Without an explicit --command-timeout, etcdctl gives the snapshot all the time it needs.
  const deadlineMs = context.flags.changed.has('command-timeout') ? context.commandTimeoutMs : undefined;
  // The gRPC client's modules load with the command that talks to a member, not with status or restore.
  const { clientErrorText, rpcErrorText } = await import('./client.js');
  let stream;
  try {
    stream = await context.client().serverStream('Maintenance', 'Snapshot', {}, deadlineMs);
  } catch (error) {
    return exitWithError(context.output, ExitCode.interrupted, rpcErrorText(error));
  }
  zapLine(context, 'clientv3/maintenance.go:200', 'opened snapshot stream; downloading');
  zapLine(context, 'snapshot/v3_snapshot.go:127', 'fetching snapshot', { endpoint });
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Message>) {
      const blob = chunk.blob as Buffer;
      writeSync(file, blob);
      size += blob.length;
    }
  } catch (error) {
    const text = error instanceof Error && 'code' in error ? clientErrorText(error as ServiceError) : String(error);
    exitWithError(context.output, ExitCode.interrupted, text);
  }
  zapLine(context, 'clientv3/maintenance.go:208', 'completed snapshot read; closing');
  return size;
}
