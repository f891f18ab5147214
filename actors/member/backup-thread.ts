/**
 * The snapshot thread: reads a copy of the backend and writes it as an etcd 3.4 bbolt database
 * file (see actors/member/backup.ts), page by page, so the member's event loop never builds it.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { readIndexFields, type IndexFields } from '../../src/api/key-value-codec.js';
import { boltPageBytesDefault } from '../../src/lib/limits.js';
import { LmdbBackend } from '../../src/mvcc/lmdb-backend.js';
import type { LeaseRecord } from '../../src/mvcc/backend.js';
import { BoltWriter } from '../../src/snap/bbolt/writer.js';
import { etcdDbBuckets, type RevisionRecord } from '../../src/snap/etcd-db.js';
import type { BackupThreadInit, BackupThreadReply } from './backup.js';

function* revisionRecords(backend: LmdbBackend): Generator<RevisionRecord> {
  const fields: IndexFields = { key: '', createRevision: 0, version: 0, lease: 0n, tombstone: false };
  for (const { revisionKey, value } of backend.storedRevisions()) {
    readIndexFields(value, value.length, fields);
    yield { revisionKey, value, tombstone: fields.tombstone };
  }
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let written = 0;
  while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written, position + written);
}

async function writeBackupFile(init: BackupThreadInit): Promise<number> {
  const backend = LmdbBackend.open(init.copyDir);
  const fd = openSync(init.outputPath, 'w');
  try {
    const leases: LeaseRecord[] = [];
    backend.scanLeases((record) => leases.push(record));
    const pageBytes = boltPageBytesDefault;
    const writer = new BoltWriter({ write: (pageId, bytes) => writeAll(fd, bytes, pageId * pageBytes) }, pageBytes);
    const pageCount = writer.write(
      etcdDbBuckets({
        revisions: revisionRecords(backend),
        meta: backend.readMeta(),
        leases,
        members: init.membership.members,
        removedMemberIds: init.membership.removed,
        clusterVersion: init.clusterVersion,
        alarms: init.alarms,
      }),
    );
    return pageCount * pageBytes;
  } finally {
    closeSync(fd);
    await backend.close();
  }
}

const port = parentPort;
if (port !== null) {
  writeBackupFile(workerData as BackupThreadInit).then(
    (bytes) => port.postMessage({ type: 'written', bytes } satisfies BackupThreadReply),
    (error: unknown) =>
      port.postMessage({
        type: 'failed',
        message: error instanceof Error ? error.message : String(error),
      } satisfies BackupThreadReply),
  );
}
