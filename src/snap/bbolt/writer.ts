/**
 * Writes a compact bbolt database: pages 0 and 1 are the metas, page 2 an empty freelist, and
 * every bucket's tree follows, built bottom-up with pages filled as far as they go (bbolt itself
 * splits at half a page; a snapshot is read, not updated in place, so full pages lose nothing).
 * Small buckets without nested buckets are stored inline, as bbolt does. Every page below the
 * high-water mark is reachable, so bbolt's consistency check finds no unreachable page.
 *
 * The file is written in file order, so it can be streamed as it is built: a first pass over the
 * items (planBolt) lays the pages out without writing them, which gives the metas their root page
 * and page count; the second (writeBolt) writes the metas, then each page as its node fills. Both
 * passes copy an item's bytes before asking for the next one, so a source may hand out the same
 * buffers again for every item.
 */
import { assert } from '../../lib/assert.js';
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

/** Where the writer puts the file: region after region, in file order from page 0. */
export interface PageOutput {
  /** Zero-filled room for the next `byteLength` bytes of the file, which the writer fills before asking again. */
  next(byteLength: number): Uint8Array;
}

/** What the first pass finds: the root bucket's page and the file's length in pages. */
export interface BoltPlan {
  rootPageId: number;
  pageCount: number;
  pageBytes: number;
}

interface ChildRef {
  key: Uint8Array;
  pageId: number;
}

const freelistPageId = 2;
const firstTreePageId = 3;
const twoTo32 = 2 ** 32;

/**
 * One node being filled: its elements' flags and sizes, and their keys and values copied one
 * after another into a scratch area, which is how the page's data area lays them out.
 */
class NodeBuilder {
  private data = new Uint8Array(4096);
  private dataBytes = 0;
  private readonly flags: number[] = [];
  private readonly keyLengths: number[] = [];
  /** A leaf element's value length, or a branch element's child page. */
  private readonly values: number[] = [];
  count = 0;

  constructor(readonly branch: boolean) {}

  /** The node's length: header, elements, keys and values. */
  get byteLength(): number {
    return pageHeaderBytes + this.count * elementBytes + this.dataBytes;
  }

  addLeaf(flags: number, key: Uint8Array, value: Uint8Array): void {
    this.reserve(key.length + value.length);
    this.data.set(key, this.dataBytes);
    this.data.set(value, this.dataBytes + key.length);
    this.dataBytes += key.length + value.length;
    this.push(flags, key.length, value.length);
  }

  addBranch(key: Uint8Array, pageId: number): void {
    this.reserve(key.length);
    this.data.set(key, this.dataBytes);
    this.dataBytes += key.length;
    this.push(0, key.length, pageId);
  }

  firstKey(): Uint8Array {
    return this.data.slice(0, this.keyLengths[0] ?? 0);
  }

  reset(): void {
    this.dataBytes = 0;
    this.count = 0;
  }

  /** Writes the node at the start of `target` (zero-filled, at least byteLength long). */
  writeTo(target: Uint8Array, pageId: number, overflowPages: number): void {
    assert(this.count < 0xffff, () => `a page holds fewer than 65535 elements, saw ${this.count}`);
    const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
    writePageHeader(view, pageId, this.branch ? pageFlags.branch : pageFlags.leaf, this.count, overflowPages);
    let dataAt = pageHeaderBytes + this.count * elementBytes;
    for (let index = 0; index < this.count; index++) {
      const at = pageHeaderBytes + index * elementBytes;
      const keyLength = this.keyLengths[index]!;
      const value = this.values[index]!;
      if (this.branch) {
        view.setUint32(at, dataAt - at, true);
        view.setUint32(at + 4, keyLength, true);
        view.setUint32(at + 8, value % twoTo32, true);
        view.setUint32(at + 12, Math.floor(value / twoTo32), true);
        dataAt += keyLength;
      } else {
        view.setUint32(at, this.flags[index]!, true);
        view.setUint32(at + 4, dataAt - at, true);
        view.setUint32(at + 8, keyLength, true);
        view.setUint32(at + 12, value, true);
        dataAt += keyLength + value;
      }
    }
    target.set(this.data.subarray(0, this.dataBytes), pageHeaderBytes + this.count * elementBytes);
  }

  private push(flags: number, keyLength: number, value: number): void {
    this.flags[this.count] = flags;
    this.keyLengths[this.count] = keyLength;
    this.values[this.count] = value;
    this.count++;
  }

  private reserve(bytes: number): void {
    if (this.dataBytes + bytes <= this.data.length) return;
    const grown = new Uint8Array(Math.max(this.data.length * 2, this.dataBytes + bytes));
    grown.set(this.data.subarray(0, this.dataBytes));
    this.data = grown;
  }
}

/** Whether `key` sorts after the first `previousBytes` bytes of `previous`, bytewise (a loop: keys are short). */
function ascends(previous: Uint8Array, previousBytes: number, key: Uint8Array): boolean {
  const common = Math.min(previousBytes, key.length);
  for (let index = 0; index < common; index++) {
    const difference = key[index]! - previous[index]!;
    if (difference !== 0) return difference > 0;
  }
  return key.length > previousBytes;
}

/** Lays out (output undefined) or writes one pass of the tree pages, from page 3 on. */
class TreeWriter {
  private nextPageId = firstTreePageId;

  constructor(
    private readonly pageBytes: number,
    private readonly output: PageOutput | undefined,
  ) {}

  writeRoot(root: BoltBucketSource): BoltPlan {
    const rootRef = this.writeBucket(root, false);
    assert(typeof rootRef === 'number', 'the root bucket is never inline');
    return { rootPageId: rootRef, pageCount: this.nextPageId, pageBytes: this.pageBytes };
  }

  /** A bucket's value as its parent stores it: the header, then the inline page when there is one. */
  private bucketValue(items: BoltBucketSource): Uint8Array {
    const written = this.writeBucket(items, true);
    if (typeof written !== 'number') return written;
    const value = new Uint8Array(bucketHeaderBytes);
    const view = new DataView(value.buffer);
    view.setUint32(0, written % twoTo32, true);
    view.setUint32(4, Math.floor(written / twoTo32), true);
    return value;
  }

  /** Writes a bucket's pages and returns its root page, or returns its inline value (header and page). */
  private writeBucket(items: BoltBucketSource, mayInline: boolean): number | Uint8Array {
    const node = new NodeBuilder(false);
    let inline = mayInline;
    const children: ChildRef[] = [];
    let previous = Buffer.alloc(64);
    let previousBytes = -1;
    for (const item of items) {
      const { key } = item;
      assert(key.length > 0, 'bbolt keys are never empty');
      assert(
        previousBytes < 0 || ascends(previous, previousBytes, key),
        () =>
          `bucket keys must ascend: ${Buffer.from(key).toString('hex')} after ${previous.toString('hex', 0, previousBytes)}`,
      );
      if (key.length > previous.length) previous = Buffer.alloc(key.length * 2);
      previous.set(key);
      previousBytes = key.length;
      const nested = 'bucket' in item;
      const value = nested ? this.bucketValue(item.bucket) : item.value;
      const size = elementBytes + key.length + value.length;
      if (nested || node.byteLength + size > inlineBucketBytesMax(this.pageBytes)) inline = false;
      if (!inline && node.count > 0 && node.byteLength + size > this.pageBytes) {
        children.push(this.writeNode(node));
        node.reset();
      }
      node.addLeaf(nested ? bucketLeafFlag : 0, key, value);
    }
    if (inline) {
      const value = new Uint8Array(bucketHeaderBytes + node.byteLength);
      node.writeTo(value.subarray(bucketHeaderBytes), 0, 0);
      return value;
    }
    children.push(this.writeNode(node));
    return this.writeBranches(children);
  }

  /** Builds branch levels over `children` until one page remains, and returns that root page. */
  private writeBranches(children: ChildRef[]): number {
    let level = children;
    const node = new NodeBuilder(true);
    while (level.length > 1) {
      const next: ChildRef[] = [];
      node.reset();
      for (const child of level) {
        const size = elementBytes + child.key.length;
        if (node.count > 0 && node.byteLength + size > this.pageBytes) {
          next.push(this.writeNode(node));
          node.reset();
        }
        node.addBranch(child.key, child.pageId);
      }
      next.push(this.writeNode(node));
      level = next;
    }
    return level[0]!.pageId;
  }

  /** Writes one node on as many pages as it needs (or only counts them); returns its first key and page. */
  private writeNode(node: NodeBuilder): ChildRef {
    const pageId = this.nextPageId;
    const spanPages = Math.max(1, Math.ceil(node.byteLength / this.pageBytes));
    this.nextPageId += spanPages;
    if (this.output !== undefined) node.writeTo(this.output.next(spanPages * this.pageBytes), pageId, spanPages - 1);
    return { key: node.firstKey(), pageId };
  }
}

/** The first pass: where the pages of the database whose root bucket holds `root` go. */
export function planBolt(root: BoltBucketSource, pageBytes = boltPageBytesDefault): BoltPlan {
  return new TreeWriter(pageBytes, undefined).writeRoot(root);
}

/**
 * The second pass: writes the database `plan` was made for (the same items, read again) to
 * `output`, page 0 first; throws if the items no longer lay out as planned.
 */
export function writeBolt(root: BoltBucketSource, plan: BoltPlan, output: PageOutput): void {
  const { pageBytes } = plan;
  const head = output.next(firstTreePageId * pageBytes);
  for (const txid of [0, 1]) writeMeta(head.subarray(txid * pageBytes, (txid + 1) * pageBytes), txid, plan);
  writePageHeader(
    new DataView(head.buffer, head.byteOffset + freelistPageId * pageBytes),
    freelistPageId,
    pageFlags.freelist,
    0,
    0,
  );
  const written = new TreeWriter(pageBytes, output).writeRoot(root);
  assert(
    written.rootPageId === plan.rootPageId && written.pageCount === plan.pageCount,
    () =>
      `the database was planned with root page ${plan.rootPageId} of ${plan.pageCount} pages, ` +
      `written with root page ${written.rootPageId} of ${written.pageCount}`,
  );
}

/** A meta page naming the root page; bbolt's own new file has meta txids 0 and 1 as well. */
function writeMeta(page: Uint8Array, txid: number, plan: BoltPlan): void {
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  writePageHeader(view, txid, pageFlags.meta, 0, 0);
  const at = pageHeaderBytes;
  view.setUint32(at + metaOffsets.magic, boltMagic, true);
  view.setUint32(at + metaOffsets.version, boltVersion, true);
  view.setUint32(at + metaOffsets.pageBytes, plan.pageBytes, true);
  view.setUint32(at + metaOffsets.flags, 0, true);
  view.setBigUint64(at + metaOffsets.rootPageId, BigInt(plan.rootPageId), true);
  view.setBigUint64(at + metaOffsets.rootSequence, 0n, true);
  view.setBigUint64(at + metaOffsets.freelistPageId, BigInt(freelistPageId), true);
  view.setBigUint64(at + metaOffsets.pageCount, BigInt(plan.pageCount), true);
  view.setBigUint64(at + metaOffsets.txid, BigInt(txid), true);
  const checksum = fnv1a64(page.subarray(at, at + metaChecksummedBytes));
  view.setBigUint64(at + metaOffsets.checksum, checksum, true);
}

function writePageHeader(view: DataView, pageId: number, flags: number, count: number, overflow: number): void {
  view.setUint32(0, pageId % twoTo32, true);
  view.setUint32(4, Math.floor(pageId / twoTo32), true);
  view.setUint16(8, flags, true);
  view.setUint16(10, count, true);
  view.setUint32(12, overflow, true);
}

/**
 * A PageOutput that packs the file into chunks of `chunkBytes` (larger only for a node that is
 * larger) and hands each full chunk to `emit`; finish() hands over the last one.
 */
export class ChunkedPageOutput implements PageOutput {
  private chunk = new Uint8Array(0);
  private used = 0;

  constructor(
    private readonly chunkBytes: number,
    private readonly emit: (chunk: Uint8Array) => void,
  ) {}

  next(byteLength: number): Uint8Array {
    if (this.used + byteLength > this.chunk.length) {
      this.finish();
      this.chunk = new Uint8Array(Math.max(this.chunkBytes, byteLength));
    }
    const region = this.chunk.subarray(this.used, this.used + byteLength);
    this.used += byteLength;
    return region;
  }

  /** Hands over what the current chunk holds. */
  finish(): void {
    if (this.used > 0) this.emit(this.chunk.subarray(0, this.used));
    this.chunk = new Uint8Array(0);
    this.used = 0;
  }
}

/** The whole database in memory, for small files and tests. */
export function writeBoltBytes(root: BoltBucketSource, pageBytes = boltPageBytesDefault): Uint8Array {
  const plan = planBolt(root, pageBytes);
  const file = new Uint8Array(plan.pageCount * pageBytes);
  let used = 0;
  writeBolt(root, plan, {
    next: (byteLength) => {
      const region = file.subarray(used, used + byteLength);
      used += byteLength;
      return region;
    },
  });
  assert(used === file.length, () => `wrote ${used} of the planned ${file.length} bytes`);
  return file;
}
