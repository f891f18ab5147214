/**
 * Puts records into an etcd backend file offline, as etcd's mvcc.WriteKV and UpdateConsistentIndex
 * do on a backend opened by a tool: each KeyValue goes into the "key" bucket under its ModRevision
 * (sub-revision 0), replacing a record already there, and meta's consistent_index is raised to the
 * given index (never lowered). The buckets "key" and "meta" are created when missing. The file is
 * read whole and written back compact (see bbolt/writer.ts); every other bucket is kept as it was.
 */
import { encodeKeyValue } from '../api/key-value-codec.js';
import type { KeyValue } from '../api/types.js';
import { encodeRevision, readUint64, writeUint64 } from '../mvcc/revision.js';
import type { BoltBucketSource, BoltItem } from './bbolt/format.js';
import { readBolt, type BoltBucket } from './bbolt/reader.js';
import { boltLayout, writeBoltBytes } from './bbolt/writer.js';
import { boltPageBytesDefault } from '../lib/limits.js';

const keyBucketName = Buffer.from('key');
const metaBucketName = Buffer.from('meta');
const consistentIndexName = Buffer.from('consistent_index');

function bucketSource(bucket: BoltBucket): BoltBucketSource {
  return bucket.items.map((item): BoltItem =>
    'bucket' in item ? { key: item.key, bucket: bucketSource(item.bucket) } : item,
  );
}

/** `items` with `item` in its key order, replacing an item with the same key. */
function putItem(items: BoltItem[], item: BoltItem): void {
  const at = items.findIndex((existing) => Buffer.compare(existing.key, item.key) >= 0);
  if (at < 0) items.push(item);
  else if (Buffer.compare(items[at]!.key, item.key) === 0) items[at] = item;
  else items.splice(at, 0, item);
}

function valueItems(bucket: BoltBucket | undefined): { key: Uint8Array; value: Uint8Array }[] {
  return (bucket?.items ?? []).filter((item): item is { key: Uint8Array; value: Uint8Array } => 'value' in item);
}

/**
 * The backend file `file` with `kvs` written into its key bucket and its consistent index raised to
 * `index`; without a file, a new database holding only those two buckets.
 */
export function putKeyValuesIntoEtcdDb(
  file: Uint8Array | undefined,
  kvs: readonly KeyValue[],
  index: number,
): Uint8Array {
  const database = file === undefined ? { pageBytes: boltPageBytesDefault, root: { items: [] } } : readBolt(file);
  const root = bucketSource(database.root) as BoltItem[];
  const existing = (name: Buffer): BoltBucket | undefined => {
    const found = database.root.items.find((item) => Buffer.compare(item.key, name) === 0);
    return found !== undefined && 'bucket' in found ? found.bucket : undefined;
  };
  const byRevision = new Map<string, { key: Uint8Array; value: Uint8Array }>();
  for (const item of valueItems(existing(keyBucketName))) byRevision.set(Buffer.from(item.key).toString('hex'), item);
  for (const kv of kvs) {
    const key = Uint8Array.from(encodeRevision({ main: kv.modRevision, sub: 0 }));
    byRevision.set(Buffer.from(key).toString('hex'), { key, value: encodeKeyValue(kv) });
  }
  const keyItems = [...byRevision.values()].sort((a, b) => Buffer.compare(a.key, b.key));
  putItem(root, { key: keyBucketName, bucket: keyItems });

  const metaItems: BoltItem[] = [...valueItems(existing(metaBucketName))];
  const current = metaItems.find((item) => Buffer.compare(item.key, consistentIndexName) === 0);
  const currentIndex = current !== undefined && 'value' in current ? readUint64(current.value, 0) : 0;
  if (index > currentIndex) {
    const value = new Uint8Array(8);
    writeUint64(value, 0, index);
    putItem(metaItems, { key: consistentIndexName, value });
  }
  putItem(root, { key: metaBucketName, bucket: metaItems });
  return writeBoltBytes(root, boltLayout(database.pageBytes));
}
