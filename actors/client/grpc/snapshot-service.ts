/**
 * Maintenance.Snapshot, as etcd serves it: the member builds a point-in-time backup (see
 * actors/member/backup.ts), the database bytes go out in 32 KiB responses counting down
 * remaining_bytes as the snapshot thread hands them over (already framed, a chunk of responses
 * at a time, paced by what the client reads), and a last response carries the sha256 of
 * everything sent (computed by that thread), which `etcdctl snapshot save` keeps at the end of
 * the file.
 */
import { EtcdError, GrpcCode } from '../../../src/api/errors.js';
import { framedSnapshotResponses } from '../../../src/api/snapshot-response.js';
import { snapshotChunkBytes } from '../../../src/lib/limits.js';
import type { BackupStream } from '../../member/backup.js';
import type { Logger } from '../../shared/logger.js';
import { drained, type GrpcStreamCall } from './calls.js';
import type { StreamHandler } from './router.js';

export interface SnapshotSource {
  backup(): Promise<BackupStream>;
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
  let backup: BackupStream | undefined;
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

function bufferOf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

async function sendFile(
  backup: BackupStream,
  call: GrpcStreamCall,
  signal: AbortSignal,
  logger: Logger,
): Promise<void> {
  const total = backup.bytes;
  const startedMs = performance.now();
  logger.info({ 'total-bytes': total }, 'sending database snapshot to client');
  let sent = 0;
  for (let chunk = await backup.next(); chunk !== undefined; chunk = await backup.next()) {
    sent += chunk.databaseBytes;
    if (!call.writeFramed(bufferOf(chunk.framed), chunk.release, chunk.messages)) await drained(call, signal);
    if (call.cancelled) return;
  }
  if (sent !== total) throw new Error(`the snapshot ended at ${sent} of ${total} bytes`);
  const sha = backup.sha256();
  logger.info({ 'total-bytes': total, 'checksum-size': sha.length }, 'sending database sha256 checksum to client');
  const checksum = framedSnapshotResponses(sha, 0, snapshotChunkBytes);
  call.writeFramed(bufferOf(checksum.bytes), undefined, checksum.messages);
  call.end();
  logger.info(
    { 'total-bytes': total, took: `${Math.round(performance.now() - startedMs)}ms` },
    'successfully sent database snapshot to client',
  );
}
