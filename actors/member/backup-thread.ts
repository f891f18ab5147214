/**
 * The snapshot thread: reads a copy of the backend and builds it as an etcd 3.4 bbolt database
 * (see actors/member/backup.ts): a first pass lays the pages out, a second builds them in file
 * order into chunks (both read the key area's pages straight from the copy's file), hashed and posted to the member as the client stream takes them. It runs
 * in the member's backup pool (Piscina), which keeps the thread warm between saves.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { decodeAuthState } from '../../src/auth/auth-store.js';
import { framedSnapshotResponses } from '../../src/api/snapshot-response.js';
import { backupChunkBytes, boltPageBytesDefault, snapshotChunkBytes } from '../../src/lib/limits.js';
import { keyAreaName, LmdbBackend } from '../../src/mvcc/lmdb-backend.js';
import { LmdbFileReader } from '../../src/mvcc/lmdb-file.js';
import type { LeaseRecord } from '../../src/mvcc/backend.js';
import { ChunkedPageOutput, planBolt, writeBolt } from '../../src/snap/bbolt/writer.js';
import { etcdDbBuckets, type RevisionScan } from '../../src/snap/etcd-db.js';
import { backupCancelled, backupCredit, type BackupTask, type BackupThreadReply } from './backup-protocol.js';
import { nameThread } from '../shared/thread-name.js';

nameThread('tsetcd-snapshot');

/** How long one wait for credit lasts before the cancel flag is looked at again. */
const creditWaitMs = 1_000;

/** The copy's key area as a scan of its LMDB pages, read without LMDB (see src/mvcc/lmdb-file.ts). */
function revisionScan(reader: LmdbFileReader): RevisionScan {
  const tree = reader.database(keyAreaName);
  if (tree === undefined) throw new Error(`the backend copy has no ${keyAreaName} area`);
  return { scan: (visit) => reader.scan(tree, visit) };
}

/** Blocks until the member has taken enough chunks to let one more go; throws when the stream went away. */
function awaitCredit(flow: Int32Array): void {
  for (;;) {
    if (Atomics.load(flow, backupCancelled) !== 0) throw new Error('the snapshot stream was cancelled');
    const credit = Atomics.load(flow, backupCredit);
    if (credit > 0 && Atomics.compareExchange(flow, backupCredit, credit, credit - 1) === credit) return;
    if (credit === 0) Atomics.wait(flow, backupCredit, 0, creditWaitMs);
  }
}

/** Builds the backup `task` names, posting its length, its chunks and its sha256 on the task's port. */
export default async function buildBackup({ init, port }: BackupTask): Promise<void> {
  const flow = new Int32Array(init.flow);
  const backend = LmdbBackend.open(init.copyDir);
  const reader = LmdbFileReader.open(join(init.copyDir, 'data.mdb'));
  try {
    const leases: LeaseRecord[] = [];
    backend.scanLeases((record) => leases.push(record));
    const root = etcdDbBuckets({
      revisions: revisionScan(reader),
      meta: backend.readMeta(),
      leases,
      auth: decodeAuthState(backend.readAuth()),
      members: init.membership.members,
      removedMemberIds: init.membership.removed,
      clusterVersion: init.membership.clusterVersion,
      alarms: init.alarms,
    });
    const plan = planBolt(root, boltPageBytesDefault);
    const bytes = plan.pageCount * plan.pageBytes;
    port.postMessage({ type: 'planned', bytes } satisfies BackupThreadReply);
    const hash = createHash('sha256');
    let written = 0;
    let chunks = 0;
    const output = new ChunkedPageOutput(
      backupChunkBytes,
      (chunk) => {
        hash.update(chunk);
        written += chunk.length;
        awaitCredit(flow);
        // The responses are laid out here, so the member's event loop only hands them to the socket.
        const slot = chunks++ % init.slots.length;
        const slotBuffer = init.slots[slot]!;
        const { bytes: framed, messages } = framedSnapshotResponses(
          chunk,
          bytes - written,
          snapshotChunkBytes,
          (size) => (size <= slotBuffer.byteLength ? new Uint8Array(slotBuffer, 0, size) : new Uint8Array(size)),
        );
        const inSlot = framed.buffer === slotBuffer;
        const reply: BackupThreadReply = {
          type: 'chunk',
          framed: inSlot ? { slot, length: framed.length } : framed,
          messages,
          databaseBytes: chunk.length,
        };
        port.postMessage(reply, inSlot ? [] : [framed.buffer as ArrayBuffer]);
      },
      true,
    );
    writeBolt(root, plan, output);
    output.finish();
    port.postMessage({ type: 'written', sha256: new Uint8Array(hash.digest()) } satisfies BackupThreadReply);
  } finally {
    port.close();
    reader.close();
    await backend.close();
  }
}
