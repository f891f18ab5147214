/**
 * Writes a compact bbolt database: pages 0 and 1 are the metas, page 2 an empty freelist, and
 * every bucket's tree follows, built bottom-up with pages filled as far as they go (bbolt itself
 * splits at half a page; a snapshot is read, not updated in place, so full pages lose nothing).
 * Small buckets without nested buckets are stored inline, as bbolt does. Every page below the
 * high-water mark is reachable, so bbolt's consistency check finds no unreachable page.
 */
import { assert } from '../../lib/assert.js';
import { compareBytes } from '../../lib/bytes.js';
import { boltPageBytesDefault } from '../../lib/limits.js';
import {
  type BoltBucketSource,
  boltMagic,
  boltVersion,
  bucketHeaderBytes,
  bucketLeafFlag,
  elementBytes,
  fnv1a64,
  inlineBucketBytesMax,
  metaChecksummedBytes,
  metaOffsets,
  pageFlags,
  pageHeaderBytes,
} from './format.js';

/** Where the writer puts pages: `bytes` starts at page `pageId` (it may span several pages). */
export interface PageSink {
  write(pageId: number, bytes: Uint8Array): void;
}

interface NodeElement {
  flags: number;
  key: Uint8Array;
  /** A leaf element's value, or a branch element's child page. */
  value: Uint8Array | number;
}

interface ChildRef {
  key: Uint8Array;
  pageId: number;
}

const freelistPageId = 2;
const firstTreePageId = 3;

/** Writes one database through a PageSink; use once. */
export class BoltWriter {
  private nextPageId = firstTreePageId;
  private used = false;

  constructor(
    private readonly sink: PageSink,
    private readonly pageBytes = boltPageBytesDefault,
  ) {}

  /** Writes the database whose root bucket holds `root`; returns its page count (the file is that many pages). */
  write(root: BoltBucketSource): number {
    assert(!this.used, 'a BoltWriter writes one database');
    this.used = true;
    const rootRef = this.writeBucket(root, false);
    assert(typeof rootRef === 'number', 'the root bucket is never inline');
    this.sink.write(freelistPageId, this.emptyFreelist());
    for (const txid of [0, 1]) this.sink.write(txid, this.meta(txid, rootRef));
    return this.nextPageId;
  }

  /** A bucket's value as its parent stores it: the header, then the inline page when there is one. */
  private bucketValue(items: BoltBucketSource): Uint8Array {
    const written = this.writeBucket(items, true);
    if (typeof written !== 'number') return written;
    const value = new Uint8Array(bucketHeaderBytes);
    new DataView(value.buffer).setBigUint64(0, BigInt(written), true);
    return value;
  }

  /** Writes a bucket's pages and returns its root page, or returns its inline value (header and page). */
  private writeBucket(items: BoltBucketSource, mayInline: boolean): number | Uint8Array {
    let pending: NodeElement[] = [];
    let pendingBytes = pageHeaderBytes;
    let inline = mayInline;
    const children: ChildRef[] = [];
    let previous: Uint8Array | undefined;
    for (const item of items) {
      const { key } = item;
      assert(key.length > 0, 'bbolt keys are never empty');
      assert(
        previous === undefined || compareBytes(previous, key) < 0,
        () =>
          `bucket keys must ascend: ${Buffer.from(key).toString('hex')} after ${Buffer.from(previous!).toString('hex')}`,
      );
      previous = key;
      const nested = 'bucket' in item;
      const value = nested ? this.bucketValue(item.bucket) : item.value;
      const size = elementBytes + key.length + value.length;
      if (nested || pendingBytes + size > inlineBucketBytesMax(this.pageBytes)) inline = false;
      if (!inline && pending.length > 0 && pendingBytes + size > this.pageBytes) {
        children.push(this.writeNode(pageFlags.leaf, pending));
        pending = [];
        pendingBytes = pageHeaderBytes;
      }
      pending.push({ flags: nested ? bucketLeafFlag : 0, key, value });
      pendingBytes += size;
    }
    if (inline) {
      const page = nodeBytes(pageFlags.leaf, pending, 0, 0);
      const value = new Uint8Array(bucketHeaderBytes + page.length);
      value.set(page, bucketHeaderBytes);
      return value;
    }
    children.push(this.writeNode(pageFlags.leaf, pending));
    return this.writeBranches(children);
  }

  /** Builds branch levels over `children` until one page remains, and returns that root page. */
  private writeBranches(children: ChildRef[]): number {
    let level = children;
    while (level.length > 1) {
      const next: ChildRef[] = [];
      let pending: NodeElement[] = [];
      let pendingBytes = pageHeaderBytes;
      for (const child of level) {
        const size = elementBytes + child.key.length;
        if (pending.length > 0 && pendingBytes + size > this.pageBytes) {
          next.push(this.writeNode(pageFlags.branch, pending));
          pending = [];
          pendingBytes = pageHeaderBytes;
        }
        pending.push({ flags: 0, key: child.key, value: child.pageId });
        pendingBytes += size;
      }
      next.push(this.writeNode(pageFlags.branch, pending));
      level = next;
    }
    return level[0]!.pageId;
  }

  /** Writes one node on as many pages as it needs; returns its first key and page. */
  private writeNode(flags: number, elements: NodeElement[]): ChildRef {
    const pageId = this.nextPageId;
    const bytes = nodeBytes(flags, elements, pageId, this.pageBytes);
    this.nextPageId += bytes.length / this.pageBytes;
    this.sink.write(pageId, bytes);
    return { key: elements[0]?.key ?? new Uint8Array(0), pageId };
  }

  private emptyFreelist(): Uint8Array {
    const page = new Uint8Array(this.pageBytes);
    writePageHeader(new DataView(page.buffer), freelistPageId, pageFlags.freelist, 0, 0);
    return page;
  }

  /** A meta page naming the root page; bbolt's own new file has meta txids 0 and 1 as well. */
  private meta(txid: number, rootPageId: number): Uint8Array {
    const page = new Uint8Array(this.pageBytes);
    const view = new DataView(page.buffer);
    writePageHeader(view, txid, pageFlags.meta, 0, 0);
    const at = pageHeaderBytes;
    view.setUint32(at + metaOffsets.magic, boltMagic, true);
    view.setUint32(at + metaOffsets.version, boltVersion, true);
    view.setUint32(at + metaOffsets.pageBytes, this.pageBytes, true);
    view.setUint32(at + metaOffsets.flags, 0, true);
    view.setBigUint64(at + metaOffsets.rootPageId, BigInt(rootPageId), true);
    view.setBigUint64(at + metaOffsets.rootSequence, 0n, true);
    view.setBigUint64(at + metaOffsets.freelistPageId, BigInt(freelistPageId), true);
    view.setBigUint64(at + metaOffsets.pageCount, BigInt(this.nextPageId), true);
    view.setBigUint64(at + metaOffsets.txid, BigInt(txid), true);
    const checksum = fnv1a64(page.subarray(at, at + metaChecksummedBytes));
    view.setBigUint64(at + metaOffsets.checksum, checksum, true);
    return page;
  }
}

function writePageHeader(view: DataView, pageId: number, flags: number, count: number, overflow: number): void {
  view.setBigUint64(0, BigInt(pageId), true);
  view.setUint16(8, flags, true);
  view.setUint16(10, count, true);
  view.setUint32(12, overflow, true);
}

/**
 * A node's page bytes: header, elements, then each element's key and value in order, with each
 * element's pos counted from the element itself. Padded to whole pages unless `pageBytes` is 0
 * (an inline bucket's page, which takes only its own length).
 */
function nodeBytes(flags: number, elements: NodeElement[], pageId: number, pageBytes: number): Uint8Array {
  let length = pageHeaderBytes + elements.length * elementBytes;
  for (const element of elements) {
    length += element.key.length + (typeof element.value === 'number' ? 0 : element.value.length);
  }
  const spanPages = pageBytes === 0 ? 0 : Math.max(1, Math.ceil(length / pageBytes));
  const bytes = new Uint8Array(pageBytes === 0 ? length : spanPages * pageBytes);
  const view = new DataView(bytes.buffer);
  assert(elements.length < 0xffff, () => `a page holds fewer than 65535 elements, saw ${elements.length}`);
  writePageHeader(view, pageId, flags, elements.length, Math.max(0, spanPages - 1));
  let dataAt = pageHeaderBytes + elements.length * elementBytes;
  elements.forEach((element, index) => {
    const at = pageHeaderBytes + index * elementBytes;
    const { key, value } = element;
    if (typeof value === 'number') {
      view.setUint32(at, dataAt - at, true);
      view.setUint32(at + 4, key.length, true);
      view.setBigUint64(at + 8, BigInt(value), true);
      bytes.set(key, dataAt);
      dataAt += key.length;
    } else {
      view.setUint32(at, element.flags, true);
      view.setUint32(at + 4, dataAt - at, true);
      view.setUint32(at + 8, key.length, true);
      view.setUint32(at + 12, value.length, true);
      bytes.set(key, dataAt);
      bytes.set(value, dataAt + key.length);
      dataAt += key.length + value.length;
    }
  });
  return bytes;
}

/** The whole database in memory, for small files and tests. */
export function writeBoltBytes(root: BoltBucketSource, pageBytes = boltPageBytesDefault): Uint8Array {
  const pages: { pageId: number; bytes: Uint8Array }[] = [];
  const pageCount = new BoltWriter({ write: (pageId, bytes) => pages.push({ pageId, bytes }) }, pageBytes).write(root);
  const file = new Uint8Array(pageCount * pageBytes);
  for (const { pageId, bytes } of pages) file.set(bytes, pageId * pageBytes);
  return file;
}
