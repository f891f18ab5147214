/**
 * Reads a bbolt database from its bytes and refuses anything that is not a sound one: metas
 * with a bad magic, version or checksum, a file shorter than its metas say, pages out of bounds,
 * of the wrong kind or reached twice, elements that run past their page, keys out of order,
 * nesting deeper than boltTreeDepthMax, a bad freelist, and pages neither reachable nor free
 * (the checks bbolt's Tx.Check makes). Keys and values are views into the given bytes.
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

/** The meta in page `index`, or why it is not valid (bbolt's words: invalid database, version mismatch, checksum error). */
function readMeta(file: Uint8Array, offset: number): Meta | string {
  if (file.length < offset + pageHeaderBytes + metaBytes) return 'file too small';
  const view = new DataView(file.buffer, file.byteOffset + offset + pageHeaderBytes, metaBytes);
  if (view.getUint32(metaOffsets.magic, true) !== boltMagic) return 'invalid database';
  if (view.getUint32(metaOffsets.version, true) !== boltVersion) return 'version mismatch';
  const checksum = view.getBigUint64(metaOffsets.checksum, true);
  const start = offset + pageHeaderBytes;
  if (checksum !== fnv1a64(file.subarray(start, start + metaChecksummedBytes))) return 'checksum error';
  return {
    pageBytes: view.getUint32(metaOffsets.pageBytes, true),
    rootPageId: view.getBigUint64(metaOffsets.rootPageId, true),
    freelistPageId: view.getBigUint64(metaOffsets.freelistPageId, true),
    pageCount: view.getBigUint64(metaOffsets.pageCount, true),
    txid: view.getBigUint64(metaOffsets.txid, true),
  };
}

/** bbolt takes the page size from meta 0 when it is sound; meta 1 sits one page further on. */
function chooseMeta(file: Uint8Array): Meta {
  const first = readMeta(file, 0);
  const pageBytes = typeof first === 'string' ? undefined : first.pageBytes;
  if (pageBytes !== undefined && !validPageBytes(pageBytes)) fail(`meta page 0: page size ${pageBytes} is not served`);
  // With meta 0 unreadable, bbolt looks for meta 1 one default page further on.
  const second = readMeta(file, pageBytes ?? boltPageBytesDefault);
  const valid = [first, second].filter((meta): meta is Meta => typeof meta === 'object');
  if (valid.length === 0) fail(`invalid database: meta page 0: ${typeof first === 'string' ? first : 'unread'}`);
  const meta = valid.reduce((best, meta) => (meta.txid > best.txid ? meta : best));
  if (!validPageBytes(meta.pageBytes)) fail(`meta: page size ${meta.pageBytes} is not served`);
  return meta;
}

function validPageBytes(pageBytes: number): boolean {
  return pageBytes >= boltPageBytesMin && pageBytes <= boltPageBytesMax && (pageBytes & (pageBytes - 1)) === 0;
}

class Pages {
  readonly view: DataView;
  /** Per page: 0 unseen, 1 reached from the tree or the freelist page, 2 free. */
  readonly marks: Uint8Array;

  constructor(
    readonly file: Uint8Array,
    readonly pageBytes: number,
    readonly pageCount: number,
  ) {
    this.view = new DataView(file.buffer, file.byteOffset, file.byteLength);
    this.marks = new Uint8Array(pageCount);
    this.marks[0] = 1;
    this.marks[1] = 1;
  }

  /** The bytes of page `id` with its overflow pages, after checking bounds and marking them reached. */
  take(id: bigint, what: string): { id: number; flags: number; count: number; bytes: Uint8Array } {
    if (id < 2n || id >= BigInt(this.pageCount)) fail(`${what}: page ${id} is out of bounds (${this.pageCount} pages)`);
    const number = Number(id);
    const at = number * this.pageBytes;
    const headerId = this.view.getBigUint64(at, true);
    if (headerId !== id) fail(`page ${id}: its header says page ${headerId}`);
    const flags = this.view.getUint16(at + 8, true);
    const count = this.view.getUint16(at + 10, true);
    const overflow = this.view.getUint32(at + 12, true);
    if (number + overflow >= this.pageCount) fail(`page ${id}: ${overflow} overflow pages run past the last page`);
    for (let page = number; page <= number + overflow; page++) {
      if (this.marks[page] !== 0) fail(`page ${page}: multiple references`);
      this.marks[page] = 1;
    }
    const bytes = this.file.subarray(at, at + (overflow + 1) * this.pageBytes);
    return { id: number, flags, count, bytes };
  }
}

/** Reads and checks a whole bbolt database. */
export function readBolt(file: Uint8Array): BoltDatabase {
  const meta = chooseMeta(file);
  const { pageBytes } = meta;
  // bbolt's own check when it maps the file: both meta pages must be there.
  if (file.length < 2 * pageBytes) fail('file size too small');
  if (meta.pageCount < 3n || meta.pageCount * BigInt(pageBytes) > BigInt(file.length)) {
    fail(
      `truncated: the meta counts ${meta.pageCount} pages of ${pageBytes} bytes, the file holds ${file.length} bytes`,
    );
  }
  const pages = new Pages(file, pageBytes, Number(meta.pageCount));
  readFreelist(pages, meta.freelistPageId);
  const root = readTree(pages, meta.rootPageId, 0, 'root bucket');
  // Without a stored freelist (etcd's NoFreelistSync), bbolt counts every unreachable page as free.
  if (meta.freelistPageId === noFreelistPageId) return { pageBytes, pageCount: pages.pageCount, txid: meta.txid, root };
  for (let page = 0; page < pages.pageCount; page++) {
    if (pages.marks[page] === 0) fail(`page ${page}: unreachable unfreed`);
  }
  return { pageBytes, pageCount: pages.pageCount, txid: meta.txid, root };
}

function readFreelist(pages: Pages, pageId: bigint): void {
  if (pageId === noFreelistPageId) return;
  const page = pages.take(pageId, 'freelist');
  if (page.flags !== pageFlags.freelist) fail(`page ${page.id}: the freelist page has flags ${page.flags}`);
  const view = new DataView(page.bytes.buffer, page.bytes.byteOffset, page.bytes.byteLength);
  let first = pageHeaderBytes;
  let count = page.count;
  if (count === freelistCountOverflow) {
    if (page.bytes.length < pageHeaderBytes + 8) fail(`page ${page.id}: freelist count cut short`);
    const stored = view.getBigUint64(pageHeaderBytes, true);
    if (stored > BigInt(pages.pageCount)) fail(`page ${page.id}: freelist counts ${stored} pages`);
    count = Number(stored);
    first += 8;
  }
  if (first + count * 8 > page.bytes.length) fail(`page ${page.id}: ${count} freelist ids run past the page`);
  const ids: number[] = [];
  for (let index = 0; index < count; index++) {
    const id = view.getBigUint64(first + index * 8, true);
    if (id < 2n || id >= BigInt(pages.pageCount)) fail(`freelist: page ${id} is out of bounds`);
    ids.push(Number(id));
  }
  for (const id of ids) {
    if (pages.marks[id] === 2) fail(`page ${id}: already freed`);
    if (pages.marks[id] === 1) fail(`page ${id}: reachable freed`);
    pages.marks[id] = 2;
  }
}

/** A bucket whose root is page `pageId`: its items in key order, checked to ascend. */
function readTree(pages: Pages, pageId: bigint, depth: number, what: string): BoltBucket {
  const items: BoltEntry[] = [];
  readNode(pages, pageId, depth, what, items);
  checkAscending(items, what);
  return { items };
}

function readNode(pages: Pages, pageId: bigint, depth: number, what: string, into: BoltEntry[]): void {
  if (depth > boltTreeDepthMax) fail(`${what}: pages nest deeper than ${boltTreeDepthMax}`);
  if (pages.marks[Number(pageId)] === 2) fail(`page ${pageId}: reachable freed`);
  const page = pages.take(pageId, what);
  if (page.flags === pageFlags.leaf) {
    readLeafElements(pages, page.bytes, page.count, depth, `page ${page.id}`, into);
    return;
  }
  if (page.flags !== pageFlags.branch) fail(`page ${page.id}: invalid type: flags ${page.flags} in ${what}`);
  if (page.count === 0) fail(`page ${page.id}: a branch page without elements`);
  const view = new DataView(page.bytes.buffer, page.bytes.byteOffset, page.bytes.byteLength);
  checkElementsFit(page.bytes, page.count, `page ${page.id}`);
  let previousKey: Uint8Array | undefined;
  for (let index = 0; index < page.count; index++) {
    const at = pageHeaderBytes + index * elementBytes;
    const key = elementSlice(page.bytes, at, view.getUint32(at, true), view.getUint32(at + 4, true), `page ${page.id}`);
    if (previousKey !== undefined && compareBytes(previousKey, key) >= 0)
      fail(`page ${page.id}: branch keys out of order at element ${index}`);
    previousKey = key;
    const before = into.length;
    readNode(pages, view.getBigUint64(at + 8, true), depth + 1, what, into);
    const first = into[before];
    if (first !== undefined && compareBytes(first.key, key) < 0)
      fail(`page ${page.id}: element ${index} names a child whose first key sorts before it`);
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

function readLeafElements(
  pages: Pages,
  bytes: Uint8Array,
  count: number,
  depth: number,
  where: string,
  into: BoltEntry[],
): void {
  checkElementsFit(bytes, count, where);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let index = 0; index < count; index++) {
    const at = pageHeaderBytes + index * elementBytes;
    const flags = view.getUint32(at, true);
    const pos = view.getUint32(at + 4, true);
    const keyBytes = view.getUint32(at + 8, true);
    const valueBytes = view.getUint32(at + 12, true);
    const both = elementSlice(bytes, at, pos, keyBytes + valueBytes, where);
    const key = both.subarray(0, keyBytes);
    const value = both.subarray(keyBytes);
    if (keyBytes === 0) fail(`${where}: element ${index} has an empty key`);
    if (flags === 0) into.push({ key, value });
    else if (flags === bucketLeafFlag) into.push({ key, bucket: readBucketValue(pages, value, depth + 1, where) });
    else fail(`${where}: element ${index} has unknown flags ${flags}`);
  }
}

/** A nested bucket from its value: a root page, or (root 0) an inline leaf page after the header. */
function readBucketValue(pages: Pages, value: Uint8Array, depth: number, where: string): BoltBucket {
  if (depth > boltTreeDepthMax) fail(`${where}: buckets nest deeper than ${boltTreeDepthMax}`);
  if (value.length < bucketHeaderBytes) fail(`${where}: a bucket value of ${value.length} bytes`);
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const root = view.getBigUint64(0, true);
  if (root !== 0n) return readTree(pages, root, depth, `bucket in ${where}`);
  const page = value.subarray(bucketHeaderBytes);
  if (page.length < pageHeaderBytes) fail(`${where}: an inline bucket of ${page.length} bytes`);
  const pageView = new DataView(page.buffer, page.byteOffset, page.byteLength);
  if (pageView.getUint16(8, true) !== pageFlags.leaf) fail(`${where}: an inline bucket that is not a leaf`);
  const items: BoltEntry[] = [];
  readLeafElements(pages, page, pageView.getUint16(10, true), depth, `inline bucket in ${where}`, items);
  checkAscending(items, `inline bucket in ${where}`);
  return { items };
}

function checkAscending(items: BoltEntry[], what: string): void {
  for (let index = 1; index < items.length; index++) {
    if (compareBytes(items[index - 1]!.key, items[index]!.key) >= 0)
      fail(`${what}: keys out of order at item ${index}`);
  }
}

/** The items of bucket `name` in `bucket`, or undefined when it has none by that name. */
export function childBucket(bucket: BoltBucket, name: string): BoltBucket | undefined {
  const wanted = Buffer.from(name);
  for (const item of bucket.items) {
    if ('bucket' in item && compareBytes(item.key, wanted) === 0) return item.bucket;
  }
  return undefined;
}
