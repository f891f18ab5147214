/**
 * Loads the newest readable snapshot from etcd 3.4's own snap directory: files `%016x-%016x.snap`
 * (term, index) holding snappb.Snapshot {1 crc, 2 data}, where data is a raftpb.Snapshot {1 data,
 * 2 metadata {1 conf_state, 2 index, 3 term}} and crc its CRC-32C. As etcd's snapshotter does, a
 * file that cannot be read is renamed to `<name>.broken` and the next older one is tried.
 */
import { readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '../lib/crc32c.js';
import { protoReaderOf } from '../lib/protobuf.js';

/** A raftpb.Snapshot's index, term and application data (for etcd 3.4, its v2 store as JSON). */
export interface EtcdSnapshot {
  index: number;
  term: number;
  data: Buffer;
}

/** etcd's snapshot error texts. */
const emptySnapshotText = 'snap: empty snapshot';
const crcMismatchText = 'snap: crc mismatch';

/** Decodes one .snap file's bytes; throws with etcd's words when they are not a sound snapshot. */
export function decodeEtcdSnapFile(bytes: Buffer): EtcdSnapshot {
  if (bytes.length === 0) throw new Error(emptySnapshotText);
  let crc = 0;
  let body: Buffer = Buffer.alloc(0);
  const outer = protoReaderOf(bytes);
  while (!outer.done) {
    const key = outer.key();
    if (key === 0x08) crc = outer.int64() >>> 0;
    else if (key === 0x12) body = outer.bytesField();
    else outer.skip(key);
  }
  if (body.length === 0 || crc === 0) throw new Error(emptySnapshotText);
  if (crc32c(body) !== crc) throw new Error(crcMismatchText);
  const snapshot: EtcdSnapshot = { index: 0, term: 0, data: Buffer.alloc(0) };
  const reader = protoReaderOf(body);
  while (!reader.done) {
    const key = reader.key();
    if (key === 0x0a) snapshot.data = reader.bytesField();
    else if (key === 0x12) {
      const metadata = reader.message();
      while (!metadata.done) {
        const field = metadata.key();
        if (field === 0x10) snapshot.index = metadata.int64();
        else if (field === 0x18) snapshot.term = metadata.int64();
        else metadata.skip(field);
      }
    } else reader.skip(key);
  }
  return snapshot;
}

/** The newest snapshot in `snapDir` that reads whole, or undefined when there is none. */
export function loadNewestEtcdSnapshot(snapDir: string): EtcdSnapshot | undefined {
  const names = readdirSync(snapDir)
    .filter((name) => name.endsWith('.snap'))
    .sort()
    .reverse();
  for (const name of names) {
    const path = join(snapDir, name);
    try {
      return decodeEtcdSnapFile(readFileSync(path));
    } catch {
      renameSync(path, `${path}.broken`);
    }
  }
  return undefined;
}
