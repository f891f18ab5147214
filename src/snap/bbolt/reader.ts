/**
 * Reads a bbolt database and refuses anything that is not a sound one: metas with a bad magic,
 * version or checksum, a file shorter than its metas say, pages out of bounds, of the wrong kind
 * or reached twice, elements that run past their page, keys out of order, nesting deeper than
 * boltTreeDepthMax, a bad freelist, and pages neither reachable nor free (the checks bbolt's
 * Tx.Check makes). walkBolt hands each item to a visitor as it reads it, from pages a source reads
 * one at a time, so a restore holds a few pages instead of the file; readBolt builds the whole tree
 * from the file's bytes, with keys and values as views into them.
 */
import { compareBytes } from '../../lib/bytes.js';
import { boltPageBytesDefault, boltPageBytesMax, boltPageBytesMin, boltTreeDepthMax } from '../../lib/limits.js';
import {
  boltMagic,
  boltVersion,
  bucketHeaderBytes,
  bucketLeafFlag,
  elementBytes,
  fnv1a64,
  freelistCountOverflow,
  metaBytes,
  metaChecksummedBytes,
  metaOffsets,
  noFreelistPageId,
  pageFlags,
  pageHeaderBytes,
} from './format.js';

/** A file that is not a sound bbolt database; the message says where and what. */
export class BoltFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BoltFormatError';
  }
}

/** One item read from a bucket, in key order. */
export type BoltEntry = { key: Uint8Array; value: Uint8Array } | { key: Uint8Array; bucket: BoltBucket };

export interface BoltBucket {
  items: BoltEntry[];
}

export interface BoltDatabase {
  pageBytes: number;
  /** The high-water mark: pages the database spans (its size is this many pages). */
  pageCount: number;
  txid: bigint;
  root: BoltBucket;
}

/**
 * Where walkBolt reads the database from. `read` returns the `length` bytes at `offset` (which the
 * walker has checked lie within byteLength); what it returns for one `slot` may be overwritten by
 * the next read for that slot, and never by a read for another slot.
 */
export interface BoltPageSource {
  readonly byteLength: number;
  read(offset: number, length: number, slot: number): Uint8Array;
}

/**
 * What walkBolt calls as it reads, in key order, depth first. The key and value handed to `item`
 * and `enterBucket` are valid until the call returns unless the source's bytes are stable.
 */
export interface BoltVisitor {
  item(key: Uint8Array, value: Uint8Array): void;
  /** A nested bucket starts: its items follow until the matching leaveBucket. */
  enterBucket(key: Uint8Array): void;
  leaveBucket(): void;
}

/** The database's shape, once walkBolt has read and checked all of it. */
export interface BoltWalkResult {
  pageBytes: number;
  pageCount: number;
  txid: bigint;
}

interface Meta {
  pageBytes: number;
  rootPageId: bigint;
  freelistPageId: bigint;
  pageCount: bigint;
  txid: bigint;
}

function fail(message: string): never {
  throw new BoltFormatError(message);
}

/** The slot of the meta pages' reads; tree pages at depth d use slot d + 2, the freelist slot 1. */
const metaSlot = 0;
const freelistSlot = 1;

/** The meta at `offset`, or why it is not valid (bbolt's words: invalid database, version mismatch, checksum error). */
function readMeta(source: BoltPageSource, offset: number): Meta | string {
  if (source.byteLength < offset + pageHeaderBytes + metaBytes) return 'file too small';
  const bytes = source.read(offset + pageHeaderBytes, metaBytes, metaSlot);
  const view = new DataView(bytes.buffer, bytes.byteOffset, metaBytes);
  if (view.getUint32(metaOffsets.magic, true) !== boltMagic) return 'invalid database';
  if (view.getUint32(metaOffsets.version, true) !== boltVersion) return 'version mismatch';
  const checksum = view.getBigUint64(metaOffsets.checksum, true);
  if (checksum !== fnv1a64(bytes.subarray(0, metaChecksummedBytes))) return 'checksum error';
  return {
    pageBytes: view.getUint32(metaOffsets.pageBytes, true),
    rootPageId: view.getBigUint64(metaOffsets.rootPageId, true),
    freelistPageId: view.getBigUint64(metaOffsets.freelistPageId, true),
    pageCount: view.getBigUint64(metaOffsets.pageCount, true),
    txid: view.getBigUint64(metaOffsets.txid, true),
  };
}

/** bbolt takes the page size from meta 0 when it is sound; meta 1 sits one page further on. */
function chooseMeta(source: BoltPageSource): Meta {
  const first = readMeta(source, 0);
  const pageBytes = typeof first === 'string' ? undefined : first.pageBytes;
  if (pageBytes !== undefined && !validPageBytes(pageBytes)) fail(`meta page 0: page size ${pageBytes} is not served`);
  // With meta 0 unreadable, bbolt looks for meta 1 one default page further on.
  const second = readMeta(source, pageBytes ?? boltPageBytesDefault);
  const valid = [first, second].filter((meta): meta is Meta => typeof meta === 'object');
  if (valid.length === 0) fail(`invalid database: meta page 0: ${typeof first === 'string' ? first : 'unread'}`);
  const meta = valid.reduce((best, meta) => (meta.txid > best.txid ? meta : best));
  if (!validPageBytes(meta.pageBytes)) fail(`meta: page size ${meta.pageBytes} is not served`);
  return meta;
}

function validPageBytes(pageBytes: number): boolean {
  return pageBytes >= boltPageBytesMin && pageBytes <= boltPageBytesMax && (pageBytes & (pageBytes - 1)) === 0;
}

/** A copy of a key, kept in a buffer that grows as needed. */
class KeyCopy {
  bytes = new Uint8Array(64);
  length = -1;

  set(key: Uint8Array): void {
    if (key.length > this.bytes.length) this.bytes = new Uint8Array(Math.max(key.length, this.bytes.length * 2));
    this.bytes.set(key);
    this.length = key.length;
  }

  get key(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  /** compareBytes(this.key, key), without a view of the copy: it runs once an item. */
  compareTo(key: Uint8Array): number {
    const length = Math.min(this.length, key.length);
    for (let index = 0; index < length; index++) {
      const difference = this.bytes[index]! - key[index]!;
      if (difference !== 0) return difference;
    }
    return this.length - key.length;
  }
}

/**
 * The order checks of one bucket, made as its items go by: keys must ascend (the first item out of
 * order is reported once the bucket's pages have all been read, as a check over the whole bucket
 * would), and a branch element's child must not start below the element's key (checked when the
 * child has been read; `waiting` holds the branch levels whose child has not yet shown an item).
 */
class BucketOrder {
  count = 0;
  outOfOrderAt = -1;
  readonly previous = new KeyCopy();
  readonly waiting: KeyCopy[] = [];

  see(key: Uint8Array): void {
    if (this.count > 0 && this.outOfOrderAt < 0 && this.previous.compareTo(key) >= 0) this.outOfOrderAt = this.count;
    this.previous.set(key);
    for (const first of this.waiting) first.set(key);
    this.waiting.length = 0;
    this.count++;
  }

  check(what: string): void {
    if (this.outOfOrderAt >= 0) fail(`${what}: keys out of order at item ${this.outOfOrderAt}`);
  }
}

class Walker {
  /** Per page: 0 unseen, 1 reached from the tree or the freelist page, 2 free. */
  readonly marks: Uint8Array;
  /** Per branch depth, the first key its current child showed. */
  private readonly firstKeys: KeyCopy[] = [];

  constructor(
    readonly source: BoltPageSource,
    readonly pageBytes: number,
    readonly pageCount: number,
    readonly visitor: BoltVisitor,
  ) {
    this.marks = new Uint8Array(pageCount);
    this.marks[0] = 1;
    this.marks[1] = 1;
  }

  /** The bytes of page `id` with its overflow pages, after checking bounds and marking them reached. */
  take(id: bigint, what: string, slot: number): { id: number; flags: number; count: number; bytes: Uint8Array } {
    if (id < 2n || id >= BigInt(this.pageCount)) fail(`${what}: page ${id} is out of bounds (${this.pageCount} pages)`);
    const number = Number(id);
    const at = number * this.pageBytes;
    let bytes = this.source.read(at, this.pageBytes, slot);
    const view = new DataView(bytes.buffer, bytes.byteOffset, pageHeaderBytes);
    const headerId = view.getBigUint64(0, true);
    if (headerId !== id) fail(`page ${id}: its header says page ${headerId}`);
    const flags = view.getUint16(8, true);
    const count = view.getUint16(10, true);
    const overflow = view.getUint32(12, true);
    if (number + overflow >= this.pageCount) fail(`page ${id}: ${overflow} overflow pages run past the last page`);
    for (let page = number; page <= number + overflow; page++) {
      if (this.marks[page] !== 0) fail(`page ${page}: multiple references`);
      this.marks[page] = 1;
    }
    if (overflow > 0) bytes = this.source.read(at, (overflow + 1) * this.pageBytes, slot);
    return { id: number, flags, count, bytes };
  }

  readFreelist(pageId: bigint): void {
    if (pageId === noFreelistPageId) return;
    const page = this.take(pageId, 'freelist', freelistSlot);
    if (page.flags !== pageFlags.freelist) fail(`page ${page.id}: the freelist page has flags ${page.flags}`);
    const view = new DataView(page.bytes.buffer, page.bytes.byteOffset, page.bytes.byteLength);
    let first = pageHeaderBytes;
    let count = page.count;
    if (count === freelistCountOverflow) {
      if (page.bytes.length < pageHeaderBytes + 8) fail(`page ${page.id}: freelist count cut short`);
      const stored = view.getBigUint64(pageHeaderBytes, true);
      if (stored > BigInt(this.pageCount)) fail(`page ${page.id}: freelist counts ${stored} pages`);
      count = Number(stored);
      first += 8;
    }
    if (first + count * 8 > page.bytes.length) fail(`page ${page.id}: ${count} freelist ids run past the page`);
    const ids: number[] = [];
    for (let index = 0; index < count; index++) {
      const id = view.getBigUint64(first + index * 8, true);
      if (id < 2n || id >= BigInt(this.pageCount)) fail(`freelist: page ${id} is out of bounds`);
      ids.push(Number(id));
    }
    for (const id of ids) {
      if (this.marks[id] === 2) fail(`page ${id}: already freed`);
      if (this.marks[id] === 1) fail(`page ${id}: reachable freed`);
      this.marks[id] = 2;
    }
  }

  /** A bucket whose root is page `pageId`: its items in key order, checked to ascend. */
  readTree(pageId: bigint, depth: number, what: string): void {
    const order = new BucketOrder();
    this.readNode(pageId, depth, what, order);
    order.check(what);
  }

  private firstKey(depth: number): KeyCopy {
    let copy = this.firstKeys[depth];
    if (copy === undefined) this.firstKeys[depth] = copy = new KeyCopy();
    return copy;
  }

  readNode(pageId: bigint, depth: number, what: string, order: BucketOrder): void {
    if (depth > boltTreeDepthMax) fail(`${what}: pages nest deeper than ${boltTreeDepthMax}`);
    if (this.marks[Number(pageId)] === 2) fail(`page ${pageId}: reachable freed`);
    const page = this.take(pageId, what, depth + 2);
    if (page.flags === pageFlags.leaf) {
      this.readLeafElements(page.bytes, page.count, depth, `page ${page.id}`, order);
      return;
    }
    if (page.flags !== pageFlags.branch) fail(`page ${page.id}: invalid type: flags ${page.flags} in ${what}`);
    if (page.count === 0) fail(`page ${page.id}: a branch page without elements`);
    const view = new DataView(page.bytes.buffer, page.bytes.byteOffset, page.bytes.byteLength);
    checkElementsFit(page.bytes, page.count, `page ${page.id}`);
    const previousKey = new KeyCopy();
    const firstKey = this.firstKey(depth);
    for (let index = 0; index < page.count; index++) {
      const at = pageHeaderBytes + index * elementBytes;
      const key = elementSlice(
        page.bytes,
        at,
        view.getUint32(at, true),
        view.getUint32(at + 4, true),
        `page ${page.id}`,
      );
      if (index > 0 && previousKey.compareTo(key) >= 0)
        fail(`page ${page.id}: branch keys out of order at element ${index}`);
      previousKey.set(key);
      firstKey.length = -1;
      order.waiting.push(firstKey);
      this.readNode(view.getBigUint64(at + 8, true), depth + 1, what, order);
      const waitingAt = order.waiting.indexOf(firstKey);
      if (waitingAt >= 0) order.waiting.splice(waitingAt, 1);
      if (firstKey.length >= 0 && compareBytes(firstKey.key, previousKey.key) < 0)
        fail(`page ${page.id}: element ${index} names a child whose first key sorts before it`);
    }
  }

  private readLeafElements(bytes: Uint8Array, count: number, depth: number, where: string, order: BucketOrder): void {
    checkElementsFit(bytes, count, where);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let index = 0; index < count; index++) {
      const at = pageHeaderBytes + index * elementBytes;
      const flags = view.getUint32(at, true);
      const pos = view.getUint32(at + 4, true);
      const keyBytes = view.getUint32(at + 8, true);
      const valueBytes = view.getUint32(at + 12, true);
      // elementSlice's check for key and value at once, without a view of both: this runs once an item.
      const start = at + pos;
      if (start + keyBytes + valueBytes > bytes.length) fail(`${where}: an element runs past the page`);
      const key = bytes.subarray(start, start + keyBytes);
      const value = bytes.subarray(start + keyBytes, start + keyBytes + valueBytes);
      if (keyBytes === 0) fail(`${where}: element ${index} has an empty key`);
      if (flags === 0) {
        order.see(key);
        this.visitor.item(key, value);
      } else if (flags === bucketLeafFlag) {
        order.see(key);
        this.visitor.enterBucket(key);
        this.readBucketValue(value, depth + 1, where);
        this.visitor.leaveBucket();
      } else fail(`${where}: element ${index} has unknown flags ${flags}`);
    }
  }

  /** A nested bucket from its value: a root page, or (root 0) an inline leaf page after the header. */
  private readBucketValue(value: Uint8Array, depth: number, where: string): void {
    if (depth > boltTreeDepthMax) fail(`${where}: buckets nest deeper than ${boltTreeDepthMax}`);
    if (value.length < bucketHeaderBytes) fail(`${where}: a bucket value of ${value.length} bytes`);
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
    const root = view.getBigUint64(0, true);
    if (root !== 0n) {
      this.readTree(root, depth, `bucket in ${where}`);
      return;
    }
    const page = value.subarray(bucketHeaderBytes);
    if (page.length < pageHeaderBytes) fail(`${where}: an inline bucket of ${page.length} bytes`);
    const pageView = new DataView(page.buffer, page.byteOffset, page.byteLength);
    if (pageView.getUint16(8, true) !== pageFlags.leaf) fail(`${where}: an inline bucket that is not a leaf`);
    const what = `inline bucket in ${where}`;
    const order = new BucketOrder();
    this.readLeafElements(page, pageView.getUint16(10, true), depth, what, order);
    order.check(what);
  }
}

function checkElementsFit(bytes: Uint8Array, count: number, where: string): void {
  if (pageHeaderBytes + count * elementBytes > bytes.length) fail(`${where}: ${count} elements run past the page`);
}

/** A key or value at `pos` bytes after the element at `elementAt`, checked to lie within the page. */
function elementSlice(bytes: Uint8Array, elementAt: number, pos: number, size: number, where: string): Uint8Array {
  const start = elementAt + pos;
  if (start + size > bytes.length) fail(`${where}: an element runs past the page`);
  return bytes.subarray(start, start + size);
}

/** Reads and checks a whole bbolt database from `source`, handing its items to `visitor` as it goes. */
export function walkBolt(source: BoltPageSource, visitor: BoltVisitor): BoltWalkResult {
  const meta = chooseMeta(source);
  const { pageBytes } = meta;
  const byteLength = source.byteLength;
  // bbolt's own check when it maps the file: both meta pages must be there.
  if (byteLength < 2 * pageBytes) fail('file size too small');
  if (meta.pageCount < 3n || meta.pageCount * BigInt(pageBytes) > BigInt(byteLength)) {
    fail(
      `truncated: the meta counts ${meta.pageCount} pages of ${pageBytes} bytes, the file holds ${byteLength} bytes`,
    );
  }
  const walker = new Walker(source, pageBytes, Number(meta.pageCount), visitor);
  walker.readFreelist(meta.freelistPageId);
  walker.readTree(meta.rootPageId, 0, 'root bucket');
  const result = { pageBytes, pageCount: walker.pageCount, txid: meta.txid };
  // Without a stored freelist (etcd's NoFreelistSync), bbolt counts every unreachable page as free.
  if (meta.freelistPageId === noFreelistPageId) return result;
  for (let page = 0; page < walker.pageCount; page++) {
    if (walker.marks[page] === 0) fail(`page ${page}: unreachable unfreed`);
  }
  return result;
}

/** A database's bytes as a page source: reads are views into them. */
export function bytesPageSource(file: Uint8Array): BoltPageSource {
  return { byteLength: file.length, read: (offset, length) => file.subarray(offset, offset + length) };
}

/**
 * A page source over `byteLength` bytes that `readAt` copies in on demand (a file read with pread):
 * each slot reads through a window of its own, at least `windowBytes` long, so the reader holds a
 * few windows instead of the whole database, and reads most pages without a call of its own.
 */
export function windowedPageSource(
  byteLength: number,
  windowBytes: number,
  readAt: (into: Uint8Array, length: number, position: number) => void,
): BoltPageSource {
  const windows: { bytes: Uint8Array; start: number; end: number }[] = [];
  return {
    byteLength,
    read(offset, length, slot) {
      let window = windows[slot];
      if (window === undefined || offset < window.start || offset + length > window.end) {
        const bytes = Math.min(Math.max(length, windowBytes), byteLength - offset);
        if (window === undefined || window.bytes.length < bytes)
          window = windows[slot] = { bytes: new Uint8Array(Math.max(bytes, windowBytes)), start: 0, end: 0 };
        readAt(window.bytes, bytes, offset);
        window.start = offset;
        window.end = offset + bytes;
      }
      return window.bytes.subarray(offset - window.start, offset - window.start + length);
    },
  };
}

/** Reads and checks a whole bbolt database from its bytes; keys and values are views into them. */
export function readBolt(file: Uint8Array): BoltDatabase {
  const root: BoltBucket = { items: [] };
  const open: BoltBucket[] = [root];
  let current = root;
  const shape = walkBolt(bytesPageSource(file), {
    item: (key, value) => current.items.push({ key, value }),
    enterBucket(key) {
      const bucket: BoltBucket = { items: [] };
      current.items.push({ key, bucket });
      open.push(bucket);
      current = bucket;
    },
    leaveBucket() {
      open.pop();
      current = open[open.length - 1]!;
    },
  });
  return { ...shape, root };
}

/** The items of bucket `name` in `bucket`, or undefined when it has none by that name. */
export function childBucket(bucket: BoltBucket, name: string): BoltBucket | undefined {
  const wanted = Buffer.from(name);
  for (const item of bucket.items) {
    if ('bucket' in item && compareBytes(item.key, wanted) === 0) return item.bucket;
  }
  return undefined;
}
