/**
 * The snapshot thread: reads a copy of the backend and builds it as an etcd 3.4 bbolt database
 * (see actors/member/backup.ts): a first pass lays the pages out, a second builds them in file
 * order into chunks (both read the key area's pages straight from the copy's file), hashed and posted to the member as the client stream takes them. It runs
 * in the member's backup pool (Piscina), which keeps the thread warm between saves. The same
 * layout gives Maintenance.Hash etcd's number: hashBackend hashes a copy's buckets as etcd does.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { decodeAuthState } from '../../src/auth/auth-store.js';
import { framedSnapshotResponses } from '../../src/api/snapshot-response.js';
import { backupChunkBytes, snapshotChunkBytes } from '../../src/lib/limits.js';
import { keyAreaName, LmdbBackend } from '../../src/mvcc/lmdb-backend.js';
import { LmdbFileReader } from '../../src/mvcc/lmdb-file.js';
import type { LeaseRecord } from '../../src/mvcc/backend.js';
import { ChunkedPageOutput, planBolt, writeBolt } from '../../src/snap/bbolt/writer.js';
import { etcdDbBuckets, etcdDbHash, etcdDbLayout, type RevisionScan } from '../../src/snap/etcd-db.js';
import type { BoltBucketSource } from '../../src/snap/bbolt/format.js';
import {
  backupCancelled,
  backupCredit,
  type BackupContents,
  type BackupTask,
  type BackupThreadReply,
  type HashTask,
} from './backup-protocol.js';
import { nameThread } from '../shared/thread-name.js';

nameThread('tsetcd-snapshot');

/** How long one wait for credit lasts before the cancel flag is looked at again. */
const creditWaitMs = 1_000;

/** The copy's key area as a scan of its LMDB pages, read without LMDB (see src/mvcc/lmdb-file.ts). */
function revisionScan(reader: LmdbFileReader): RevisionScan {
  const tree = reader.database(keyAreaName);
  if (tree === undefined) throw new Error(`the backend copy has no ${keyAreaName} area`);
  return { recordCount: tree.entries, scan: (visit) => reader.scan(tree, visit) };
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

/** The copy's contents in etcd's bucket layout; close() once they have been read. */
function openContents(contents: BackupContents): { root: BoltBucketSource; close(): Promise<void> } {
  const backend = LmdbBackend.open(contents.copyDir);
  let reader: LmdbFileReader | undefined;
  try {
    reader = LmdbFileReader.open(join(contents.copyDir, 'data.mdb'));
    const leases: LeaseRecord[] = [];
    backend.scanLeases((record) => leases.push(record));
    const root = etcdDbBuckets({
      revisions: revisionScan(reader),
      meta: backend.readMeta(),
      leases,
      auth: decodeAuthState(backend.readAuth()),
      members: contents.membership.members,
      removedMemberIds: contents.membership.removed,
      clusterVersion: contents.membership.clusterVersion,
      alarms: contents.alarms,
    });
    const opened = reader;
    return {
      root,
      close: () => {
        opened.close();
        return backend.close();
      },
    };
  } catch (error) {
    reader?.close();
    void backend.close();
    throw error;
  }
}

/** etcd's backend Hash (Maintenance.Hash) of the copy `task` names. */
export async function hashBackend(task: HashTask): Promise<number> {
  const contents = openContents(task);
  try {
    return etcdDbHash(contents.root);
  } finally {
    await contents.close();
  }
}

/** Builds the backup `task` names, posting its length, its chunks and its sha256 on the task's port. */
export default async function buildBackup({ init, port }: BackupTask): Promise<void> {
  const flow = new Int32Array(init.flow);
  const contents = openContents(init);
  try {
    const { root } = contents;
    const plan = planBolt(root, etcdDbLayout);
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
    await contents.close();
  }
}
