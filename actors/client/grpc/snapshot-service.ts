/**
 * Maintenance.Snapshot, as etcd serves it: the member writes a point-in-time backup (see
 * actors/member/backup.ts), the database bytes go out in 32 KiB responses counting down
 * remaining_bytes, and a last response carries the sha256 of everything sent, which
 * `etcdctl snapshot save` keeps at the end of the file.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { EtcdError, GrpcCode } from '../../../src/api/errors.js';
import { snapshotChunkBytes } from '../../../src/lib/limits.js';
import type { BackupFile } from '../../member/backup.js';
import type { Logger } from '../../shared/logger.js';
import { drained, type GrpcStreamCall } from './calls.js';
import type { StreamHandler } from './router.js';

export interface SnapshotSource {
  backup(): Promise<BackupFile>;
}

/** The Maintenance.Snapshot handler. */
export function snapshotHandler(source: SnapshotSource, logger: Logger): StreamHandler {
  return (call: GrpcStreamCall) => {
    void sendSnapshot(source, call, logger);
  };
}

async function sendSnapshot(source: SnapshotSource, call: GrpcStreamCall, logger: Logger): Promise<void> {
  const controller = new AbortController();
  call.once('cancelled', () => controller.abort());
  let backup: BackupFile | undefined;
  try {
    backup = await source.backup();
    if (call.cancelled) return;
    await sendFile(backup, call, controller.signal, logger);
  } catch (error) {
    if (call.cancelled) return;
    const status =
      error instanceof EtcdError
        ? { code: error.code, details: error.message }
        : { code: GrpcCode.unknown, details: error instanceof Error ? error.message : String(error) };
    logger.warn({ error: status.details }, 'failed to send database snapshot to client');
    call.emit('error', status);
  } finally {
    controller.abort();
    backup?.dispose();
  }
}

async function sendFile(backup: BackupFile, call: GrpcStreamCall, signal: AbortSignal, logger: Logger): Promise<void> {
  const total = backup.bytes;
  const hash = createHash('sha256');
  const startedMs = performance.now();
  logger.info({ 'total-bytes': total }, 'sending database snapshot to client');
  const file = await open(backup.path, 'r');
  try {
    let sent = 0;
    while (total - sent > 0) {
      const chunk = Buffer.allocUnsafe(Math.min(snapshotChunkBytes, total - sent));
      const { bytesRead } = await file.read(chunk, 0, chunk.length, sent);
      if (bytesRead !== chunk.length) throw new Error(`snapshot file ended at ${sent + bytesRead} of ${total} bytes`);
      sent += chunk.length;
      hash.update(chunk);
      if (!call.write({ remainingBytes: String(total - sent), blob: chunk })) await drained(call, signal);
      if (call.cancelled) return;
    }
  } finally {
    await file.close();
  }
  const sha = hash.digest();
  logger.info({ 'total-bytes': total, 'checksum-size': sha.length }, 'sending database sha256 checksum to client');
  call.write({ remainingBytes: '0', blob: sha });
  call.end();
  logger.info(
    { 'total-bytes': total, took: `${Math.round(performance.now() - startedMs)}ms` },
    'successfully sent database snapshot to client',
  );
}
