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
 * buffers again for every item. The first pass keeps only sizes (and each node's first key), so
 * it costs little beyond reading the items.
 */
import { assert } from '../../lib/assert.js';
import { boltPageBytesDefault } from '../../lib/limits.js';
import {
  type BoltBucketSource,
  type BoltRecordScan,
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

/** Copies `length` bytes of `source` from `sourceAt` into `target` at `targetAt`; a loop for short runs (no view made). */
function copyRange(target: Uint8Array, targetAt: number, source: Uint8Array, sourceAt: number, length: number): void {
  if (length <= 32) {
    for (let index = 0; index < length; index++) target[targetAt + index] = source[sourceAt + index]!;
  } else {
    target.set(source.subarray(sourceAt, sourceAt + length), targetAt);
  }
}

/**
 * One node being filled: its elements' flags and sizes, and their keys and values copied one
 * after another into a scratch area, which is how the page's data area lays them out. A sizing
 * node (the plan pass) keeps only its size and first key.
 */
class NodeBuilder {
  private data = new Uint8Array(4096);
  private dataBytes = 0;
  private first = new Uint8Array(64);
  private firstBytes = 0;
  private readonly flags: number[] = [];
  private readonly keyLengths: number[] = [];
  /** A leaf element's value length, or a branch element's child page. */
  private readonly values: number[] = [];
  count = 0;

  constructor(
    readonly branch: boolean,
    private readonly sizing: boolean,
  ) {}

  /** The node's length: header, elements, keys and values. */
  get byteLength(): number {
    return pageHeaderBytes + this.count * elementBytes + this.dataBytes;
  }

  /** Adds a leaf element whose value is `valueLength` bytes of `value` from `valueAt`. */
  addLeaf(flags: number, key: Uint8Array, value: Uint8Array, valueAt: number, valueLength: number): void {
    this.keepFirst(key);
    if (!this.sizing) {
      this.reserve(key.length + valueLength);
      copyRange(this.data, this.dataBytes, key, 0, key.length);
      copyRange(this.data, this.dataBytes + key.length, value, valueAt, valueLength);
      this.push(flags, key.length, valueLength);
    }
    this.dataBytes += key.length + valueLength;
    this.count++;
  }

  addBranch(key: Uint8Array, pageId: number): void {
    this.keepFirst(key);
    if (!this.sizing) {
      this.reserve(key.length);
      this.data.set(key, this.dataBytes);
      this.push(0, key.length, pageId);
    }
    this.dataBytes += key.length;
    this.count++;
  }

  firstKey(): Uint8Array {
    return this.first.slice(0, this.firstBytes);
  }

  reset(): void {
    this.dataBytes = 0;
    this.count = 0;
  }

  /** Writes the node at the start of `target` (zero-filled, at least byteLength long); a sizing node leaves it zeros. */
  writeTo(target: Uint8Array, pageId: number, overflowPages: number): void {
    if (this.sizing) return;
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

  private keepFirst(key: Uint8Array): void {
    if (this.count !== 0) return;
    if (key.length > this.first.length) this.first = new Uint8Array(key.length * 2);
    this.first.set(key);
    this.firstBytes = key.length;
  }

  private push(flags: number, keyLength: number, value: number): void {
    this.flags[this.count] = flags;
    this.keyLengths[this.count] = keyLength;
    this.values[this.count] = value;
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

/**
 * One bucket's leaf level being filled, item by item: packs the leaves, tells whether the bucket
 * still fits inline, and checks that the keys ascend.
 */
class LeafLevel {
  private readonly node: NodeBuilder;
  private readonly children: ChildRef[] = [];
  private previous = new Uint8Array(64);
  private previousBytes = -1;

  constructor(
    private readonly tree: TreeWriter,
    private inline: boolean,
  ) {
    this.node = new NodeBuilder(false, tree.sizing);
  }

  add(flags: number, key: Uint8Array, value: Uint8Array, valueAt: number, valueLength: number): void {
    if (key.length === 0) throw new Error('bbolt keys are never empty');
    if (this.previousBytes >= 0 && !ascends(this.previous, this.previousBytes, key)) {
      const previous = Buffer.from(this.previous.subarray(0, this.previousBytes)).toString('hex');
      throw new Error(`bucket keys must ascend: ${Buffer.from(key).toString('hex')} after ${previous}`);
    }
    if (key.length > this.previous.length) this.previous = new Uint8Array(key.length * 2);
    copyRange(this.previous, 0, key, 0, key.length);
    this.previousBytes = key.length;
    const node = this.node;
    const size = elementBytes + key.length + valueLength;
    if (flags === bucketLeafFlag || node.byteLength + size > this.tree.inlineBytesMax) this.inline = false;
    if (!this.inline && node.count > 0 && node.byteLength + size > this.tree.pageBytes) {
      this.children.push(this.tree.writeNode(node));
      node.reset();
    }
    node.addLeaf(flags, key, value, valueAt, valueLength);
  }

  /** The bucket's root page, or its inline value (header and page) when it stayed small. */
  finish(): number | Uint8Array {
    if (this.inline) {
      const value = new Uint8Array(bucketHeaderBytes + this.node.byteLength);
      this.node.writeTo(value.subarray(bucketHeaderBytes), 0, 0);
      return value;
    }
    this.children.push(this.tree.writeNode(this.node));
    return this.tree.writeBranches(this.children);
  }
}

/** Lays out (output undefined) or writes one pass of the tree pages, from page 3 on. */
class TreeWriter {
  private nextPageId = firstTreePageId;
  readonly sizing: boolean;
  readonly inlineBytesMax: number;

  constructor(
    readonly pageBytes: number,
    private readonly output: PageOutput | undefined,
  ) {
    this.sizing = output === undefined;
    this.inlineBytesMax = inlineBucketBytesMax(pageBytes);
  }

  writeRoot(root: BoltBucketSource): BoltPlan {
    const rootRef = this.writeBucket(root, false);
    assert(typeof rootRef === 'number', 'the root bucket is never inline');
    return { rootPageId: rootRef, pageCount: this.nextPageId, pageBytes: this.pageBytes };
  }

  /** A nested bucket's value as its parent stores it: the header, then the inline page when there is one. */
  private bucketValue(item: { bucket: BoltBucketSource } | { records: BoltRecordScan }): Uint8Array {
    const written = 'bucket' in item ? this.writeBucket(item.bucket, true) : this.writeScannedBucket(item.records);
    if (typeof written !== 'number') return written;
    const value = new Uint8Array(bucketHeaderBytes);
    const view = new DataView(value.buffer);
    view.setUint32(0, written % twoTo32, true);
    view.setUint32(4, Math.floor(written / twoTo32), true);
    return value;
  }

  /** Writes a bucket's pages and returns its root page, or returns its inline value (header and page). */
  private writeBucket(items: BoltBucketSource, mayInline: boolean): number | Uint8Array {
    const leaves = new LeafLevel(this, mayInline);
    for (const item of items) {
      if ('value' in item) {
        leaves.add(0, item.key, item.value, 0, item.value.length);
      } else {
        const value = this.bucketValue(item);
        leaves.add(bucketLeafFlag, item.key, value, 0, value.length);
      }
    }
    return leaves.finish();
  }

  /** writeBucket for a bucket of plain records handed over by a scan. */
  private writeScannedBucket(records: BoltRecordScan): number | Uint8Array {
    const leaves = new LeafLevel(this, true);
    records.scan((key, value, valueAt, valueLength) => leaves.add(0, key, value, valueAt, valueLength));
    return leaves.finish();
  }

  /** Builds branch levels over `children` until one page remains, and returns that root page. */
  writeBranches(children: ChildRef[]): number {
    let level = children;
    const node = new NodeBuilder(true, this.sizing);
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
  writeNode(node: NodeBuilder): ChildRef {
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
 * larger) and hands each full chunk to `emit`; finish() hands over the last one. With `reuse`,
 * emit is done with a chunk when it returns, and the next chunk is built in the same buffer
 * (zeroed first, as a new one would be), which spares the page faults of a new buffer per chunk.
 */
export class ChunkedPageOutput implements PageOutput {
  private chunk: Uint8Array = new Uint8Array(0);
  private used = 0;
  private spare: Uint8Array | undefined;

  constructor(
    private readonly chunkBytes: number,
    private readonly emit: (chunk: Uint8Array) => void,
    private readonly reuse = false,
  ) {}

  next(byteLength: number): Uint8Array {
    if (this.used + byteLength > this.chunk.length) {
      this.finish();
      this.chunk = this.freshChunk(Math.max(this.chunkBytes, byteLength));
    }
    const region = this.chunk.subarray(this.used, this.used + byteLength);
    this.used += byteLength;
    return region;
  }

  /** Hands over what the current chunk holds. */
  finish(): void {
    if (this.used > 0) this.emit(this.chunk.subarray(0, this.used));
    if (this.reuse && this.chunk.length > 0) this.spare = this.chunk;
    this.chunk = new Uint8Array(0);
    this.used = 0;
  }

  private freshChunk(byteLength: number): Uint8Array {
    const spare = this.spare;
    if (spare === undefined || spare.length < byteLength) return new Uint8Array(byteLength);
    return spare.fill(0);
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
