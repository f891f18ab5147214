/**
 * Writes a bbolt database whose trees have the shape bbolt gives them when the items go in in key
 * order: a node that outgrows its page is split as bbolt's node.split does, into nodes filled to
 * the bucket's fill percent and a last node with the rest, and small buckets without nested buckets
 * are stored inline. Pages 0 and 1 are the metas; by default page 2 is an empty freelist, as in a
 * file bbolt itself made, and every page below the high-water mark is reachable. A layout without a
 * freelist page is what etcd's backend (bbolt's NoFreelistSync) leaves: the metas name none, and
 * bbolt counts every page that no tree reaches as free, so such a layout may end in free pages.
 *
 * The file is written in file order, so it can be streamed as it is built: a first pass over the
 * items (planBolt) lays the pages out without writing them, which gives the metas their root page
 * and page count; the second (writeBolt) writes the metas, then each page as its node is split off.
 * Both passes copy an item's bytes before asking for the next one, so a source may hand out the
 * same buffers again for every item. The first pass keeps keys and sizes but no values.
 */
import { assert } from '../../lib/assert.js';
import {
  boltFillPercentDefault,
  boltFillPercentMax,
  boltFillPercentMin,
  boltPageBytesDefault,
} from '../../lib/limits.js';
import {
  type BoltBucketSource,
  type BoltItem,
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
  noFreelistPageId,
  pageFlags,
  pageHeaderBytes,
  splitKeysMin,
} from './format.js';

/** Where the writer puts the file: region after region, in file order from page 0. */
export interface PageOutput {
  /** Zero-filled room for the next `byteLength` bytes of the file, which the writer fills before asking again. */
  next(byteLength: number): Uint8Array;
}

/** The shape of the trees a plan lays out, from which a layout decides its free pages. */
export interface BoltTreeShape {
  /** Pages the trees take (branches, leaves and their overflow pages). */
  treePages: number;
  /**
   * Pages on the longest path from the root bucket's root page down to the last leaf of a bucket
   * stored on pages of its own: the pages one commit rewrites when it appends to that bucket.
   */
  pathPages: number;
}

/** How a database is laid out besides its trees. */
export interface BoltLayout {
  pageBytes: number;
  /** Whether page 2 is an (empty) freelist page the metas name, or the metas name none (NoFreelistSync). */
  freelistPage: boolean;
  /** Unreachable pages after the trees, for the trees' shape; only a layout without a freelist page has any. */
  freePages(shape: BoltTreeShape): number;
}

/** A file as bbolt makes it: a freelist page and no page to spare, `pageBytes` to a page. */
export function boltLayout(pageBytes = boltPageBytesDefault): BoltLayout {
  return { pageBytes, freelistPage: true, freePages: () => 0 };
}

/** What the first pass finds: the root bucket's page and the file's length in pages, free pages included. */
export interface BoltPlan extends BoltTreeShape {
  rootPageId: number;
  pageCount: number;
  pageBytes: number;
  freelistPage: boolean;
  freePages: number;
}

interface ChildRef {
  key: Uint8Array;
  pageId: number;
}

/** A bucket as its parent stores it: its root page or its inline value, and its pathPages (0 inline). */
interface WrittenBucket {
  ref: number | Uint8Array;
  pathPages: number;
}

const freelistPageId = 2;
const twoTo32 = 2 ** 32;

/** Copies `length` bytes of `source` from `sourceAt` into `target` at `targetAt`; a loop for short runs (no view made). */
function copyRange(target: Uint8Array, targetAt: number, source: Uint8Array, sourceAt: number, length: number): void {
  if (length <= 32) {
    for (let index = 0; index < length; index++) target[targetAt + index] = source[sourceAt + index]!;
  } else {
    target.set(source.subarray(sourceAt, sourceAt + length), targetAt);
  }
}

/** The byte count at which bbolt starts a new node when it splits one: the page times the clamped fill percent. */
function splitThresholdBytes(pageBytes: number, fillPercent: number): number {
  const clamped = Math.min(boltFillPercentMax, Math.max(boltFillPercentMin, fillPercent));
  return Math.floor(pageBytes * clamped);
}

/**
 * One node being filled: its elements' flags and sizes, and their keys (and, when writing, their
 * values) copied one after another into a scratch area, which is how the page's data area lays
 * them out. Nodes are split off its front as bbolt splits, so it holds about a page at a time.
 */
class NodeBuilder {
  private data = new Uint8Array(4096);
  private dataBytes = 0;
  /** Where each element's key starts in data. */
  private readonly starts: number[] = [];
  private readonly flags: number[] = [];
  private readonly keyLengths: number[] = [];
  /** A leaf element's value length, or a branch element's child page. */
  private readonly values: number[] = [];
  count = 0;
  /** The node's length as a page: header, elements, keys and values. */
  byteLength = pageHeaderBytes;

  constructor(
    readonly branch: boolean,
    private readonly sizing: boolean,
  ) {}

  /** Adds a leaf element whose value is `valueLength` bytes of `value` from `valueAt`. */
  addLeaf(flags: number, key: Uint8Array, value: Uint8Array, valueAt: number, valueLength: number): void {
    const stored = this.sizing ? key.length : key.length + valueLength;
    this.reserve(stored);
    copyRange(this.data, this.dataBytes, key, 0, key.length);
    if (!this.sizing) copyRange(this.data, this.dataBytes + key.length, value, valueAt, valueLength);
    this.push(flags, key.length, valueLength, stored);
    this.byteLength += elementBytes + key.length + valueLength;
  }

  addBranch(key: Uint8Array, pageId: number): void {
    this.reserve(key.length);
    this.data.set(key, this.dataBytes);
    this.push(0, key.length, pageId, key.length);
    this.byteLength += elementBytes + key.length;
  }

  firstKey(): Uint8Array {
    return this.data.slice(this.starts[0]!, this.starts[0]! + this.keyLengths[0]!);
  }

  /**
   * bbolt's splitIndex: how many elements the first node of a split takes (at least splitKeysMin,
   * then as many as keep it within `thresholdBytes`, leaving splitKeysMin for the rest), its
   * length, and whether an element past the threshold ended it (else the elements ran out first,
   * and more elements could still move the split).
   */
  splitIndex(thresholdBytes: number): { index: number; byteLength: number; found: boolean } {
    let byteLength = pageHeaderBytes;
    let index = 0;
    for (let at = 0; at < this.count - splitKeysMin; at++) {
      index = at;
      const size = elementBytes + this.keyLengths[at]! + (this.branch ? 0 : this.values[at]!);
      if (at >= splitKeysMin && byteLength + size > thresholdBytes) return { index, byteLength, found: true };
      byteLength += size;
    }
    return { index, byteLength, found: false };
  }

  /** Drops the first `elements` elements, once they have been written. */
  dropFirst(elements: number): void {
    if (elements === this.count) {
      this.reset();
      return;
    }
    const from = this.starts[elements]!;
    this.data.copyWithin(0, from, this.dataBytes);
    this.dataBytes -= from;
    for (const array of [this.starts, this.flags, this.keyLengths, this.values]) array.splice(0, elements);
    this.count -= elements;
    let byteLength = pageHeaderBytes;
    for (let index = 0; index < this.count; index++) {
      this.starts[index] = this.starts[index]! - from;
      byteLength += elementBytes + this.keyLengths[index]! + (this.branch ? 0 : this.values[index]!);
    }
    this.byteLength = byteLength;
  }

  reset(): void {
    this.dataBytes = 0;
    this.count = 0;
    this.byteLength = pageHeaderBytes;
  }

  /** Writes the first `elements` elements as a node at the start of `target` (zero-filled); a sizing node leaves it zeros. */
  writeTo(target: Uint8Array, pageId: number, overflowPages: number, elements: number): void {
    if (this.sizing) return;
    assert(elements < 0xffff, () => `a page holds fewer than 65535 elements, saw ${elements}`);
    const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
    writePageHeader(view, pageId, this.branch ? pageFlags.branch : pageFlags.leaf, elements, overflowPages);
    let dataAt = pageHeaderBytes + elements * elementBytes;
    for (let index = 0; index < elements; index++) {
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
    const end = elements === this.count ? this.dataBytes : this.starts[elements]!;
    target.set(this.data.subarray(0, end), pageHeaderBytes + elements * elementBytes);
  }

  private push(flags: number, keyLength: number, value: number, stored: number): void {
    this.starts[this.count] = this.dataBytes;
    this.flags[this.count] = flags;
    this.keyLengths[this.count] = keyLength;
    this.values[this.count] = value;
    this.count++;
    this.dataBytes += stored;
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
 * One bucket's leaf level being filled, item by item: splits the leaves off as bbolt would, tells
 * whether the bucket still fits inline, and checks that the keys ascend.
 */
class LeafLevel {
  private readonly node: NodeBuilder;
  private readonly children: ChildRef[] = [];
  private previous = new Uint8Array(64);
  private previousBytes = -1;
  /** The longest pathPages of the nested buckets stored on pages of their own. */
  private nestedPathPages = 0;

  constructor(
    private readonly tree: TreeWriter,
    private inline: boolean,
    private readonly fillPercent: number,
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
    node.addLeaf(flags, key, value, valueAt, valueLength);
    if (!this.inline) this.tree.splitOff(node, this.fillPercent, this.children, false);
  }

  /** Adds a nested bucket as `written` left it. */
  addBucket(key: Uint8Array, written: WrittenBucket): void {
    const value = bucketValue(written.ref);
    this.nestedPathPages = Math.max(this.nestedPathPages, written.pathPages);
    this.add(bucketLeafFlag, key, value, 0, value.length);
  }

  /** The bucket's root page, or its inline value (header and page) when it stayed small. */
  finish(): WrittenBucket {
    if (this.inline) {
      const value = new Uint8Array(bucketHeaderBytes + this.node.byteLength);
      this.node.writeTo(value.subarray(bucketHeaderBytes), 0, 0, this.node.count);
      return { ref: value, pathPages: 0 };
    }
    this.tree.splitOff(this.node, this.fillPercent, this.children, true);
    const { pageId, levels } = this.tree.writeBranches(this.children, this.fillPercent);
    return { ref: pageId, pathPages: levels + this.nestedPathPages };
  }
}

/** A nested bucket's value as its parent stores it: the header, then the inline page when there is one. */
function bucketValue(ref: number | Uint8Array): Uint8Array {
  if (typeof ref !== 'number') return ref;
  const value = new Uint8Array(bucketHeaderBytes);
  const view = new DataView(value.buffer);
  view.setUint32(0, ref % twoTo32, true);
  view.setUint32(4, Math.floor(ref / twoTo32), true);
  return value;
}

/** Lays out (output undefined) or writes one pass of the tree pages, from `firstPageId` on. */
class TreeWriter {
  private nextPageId: number;
  readonly sizing: boolean;
  readonly inlineBytesMax: number;

  constructor(
    readonly pageBytes: number,
    private readonly firstPageId: number,
    private readonly output: PageOutput | undefined,
  ) {
    this.nextPageId = firstPageId;
    this.sizing = output === undefined;
    this.inlineBytesMax = inlineBucketBytesMax(pageBytes);
  }

  /** Writes the trees; the root page, the pages they took and the longest appending path. */
  writeRoot(root: BoltBucketSource): { rootPageId: number; treePages: number; pathPages: number } {
    const written = this.writeBucket(root, false, boltFillPercentDefault);
    assert(typeof written.ref === 'number', 'the root bucket is never inline');
    return { rootPageId: written.ref, treePages: this.nextPageId - this.firstPageId, pathPages: written.pathPages };
  }

  /** Writes a bucket's pages and returns its root page, or returns its inline value (header and page). */
  private writeBucket(items: BoltBucketSource, mayInline: boolean, fillPercent: number): WrittenBucket {
    const leaves = new LeafLevel(this, mayInline, fillPercent);
    for (const item of items) {
      if ('value' in item) leaves.add(0, item.key, item.value, 0, item.value.length);
      else leaves.addBucket(item.key, this.writeNested(item));
    }
    return leaves.finish();
  }

  private writeNested(item: Exclude<BoltItem, { value: Uint8Array }>): WrittenBucket {
    const fillPercent = item.fillPercent ?? boltFillPercentDefault;
    if ('bucket' in item) return this.writeBucket(item.bucket, true, fillPercent);
    return this.writeScannedBucket(item.records, fillPercent);
  }

  /** writeBucket for a bucket of plain records handed over by a scan. */
  private writeScannedBucket(records: BoltRecordScan, fillPercent: number): WrittenBucket {
    const leaves = new LeafLevel(this, true, fillPercent);
    records.scan((key, value, valueAt, valueLength) => leaves.add(0, key, value, valueAt, valueLength));
    return leaves.finish();
  }

  /**
   * Writes the nodes bbolt's split would cut off the front of `node` (a node of more than twice
   * splitKeysMin elements that fills its page), as far as the elements so far decide them; with
   * `last` (no element follows), all of it, the rest as one node. Each goes onto `children`.
   */
  splitOff(node: NodeBuilder, fillPercent: number, children: ChildRef[], last: boolean): void {
    const thresholdBytes = splitThresholdBytes(this.pageBytes, fillPercent);
    while (node.count > 2 * splitKeysMin && node.byteLength >= this.pageBytes) {
      const split = node.splitIndex(thresholdBytes);
      if (!split.found && !last) return;
      children.push(this.writeNode(node, split.index, split.byteLength));
      node.dropFirst(split.index);
    }
    if (last) {
      children.push(this.writeNode(node, node.count, node.byteLength));
      node.reset();
    }
  }

  /** Builds branch levels over `children` until one page remains; that root page and the levels, leaves included. */
  writeBranches(children: ChildRef[], fillPercent: number): { pageId: number; levels: number } {
    let level = children;
    let levels = 1;
    const node = new NodeBuilder(true, this.sizing);
    while (level.length > 1) {
      const next: ChildRef[] = [];
      node.reset();
      for (const child of level) {
        node.addBranch(child.key, child.pageId);
        this.splitOff(node, fillPercent, next, false);
      }
      this.splitOff(node, fillPercent, next, true);
      level = next;
      levels++;
    }
    return { pageId: level[0]!.pageId, levels };
  }

  /** Writes the first `elements` of `node` (`byteLength` bytes) on as many pages as they need (or only counts them). */
  private writeNode(node: NodeBuilder, elements: number, byteLength: number): ChildRef {
    const pageId = this.nextPageId;
    const spanPages = Math.max(1, Math.ceil(byteLength / this.pageBytes));
    this.nextPageId += spanPages;
    const key = elements > 0 ? node.firstKey() : new Uint8Array(0);
    if (this.output !== undefined)
      node.writeTo(this.output.next(spanPages * this.pageBytes), pageId, spanPages - 1, elements);
    return { key, pageId };
  }
}

/** The first page of the trees: after the metas, and after the freelist page when there is one. */
function firstTreePageId(freelistPage: boolean): number {
  return freelistPage ? freelistPageId + 1 : freelistPageId;
}

/** The first pass: where the pages of the database whose root bucket holds `root` go. */
export function planBolt(root: BoltBucketSource, layout: BoltLayout = boltLayout()): BoltPlan {
  const { pageBytes, freelistPage } = layout;
  const firstPageId = firstTreePageId(freelistPage);
  const trees = new TreeWriter(pageBytes, firstPageId, undefined).writeRoot(root);
  const freePages = layout.freePages(trees);
  assert(
    Number.isInteger(freePages) && freePages >= 0 && (freePages === 0 || !freelistPage),
    () => `free pages are a count, and only a file without a freelist page has them: saw ${freePages}`,
  );
  const pageCount = firstPageId + trees.treePages + freePages;
  return { ...trees, pageCount, pageBytes, freelistPage, freePages };
}

/**
 * The second pass: writes the database `plan` was made for (the same items, read again) to
 * `output`, page 0 first; throws if the items no longer lay out as planned.
 */
export function writeBolt(root: BoltBucketSource, plan: BoltPlan, output: PageOutput): void {
  const { pageBytes, freelistPage } = plan;
  const firstPageId = firstTreePageId(freelistPage);
  const head = output.next(firstPageId * pageBytes);
  for (const txid of [0, 1]) writeMeta(head.subarray(txid * pageBytes, (txid + 1) * pageBytes), txid, plan);
  if (freelistPage) {
    const view = new DataView(head.buffer, head.byteOffset + freelistPageId * pageBytes);
    writePageHeader(view, freelistPageId, pageFlags.freelist, 0, 0);
  }
  const written = new TreeWriter(pageBytes, firstPageId, output).writeRoot(root);
  assert(
    written.rootPageId === plan.rootPageId && written.treePages === plan.treePages,
    () =>
      `the database was planned with root page ${plan.rootPageId} and ${plan.treePages} tree pages, ` +
      `written with root page ${written.rootPageId} and ${written.treePages}`,
  );
  // The free pages hold what a page bbolt freed may hold: here an empty leaf, which no tree reaches.
  for (let pageId = plan.pageCount - plan.freePages; pageId < plan.pageCount; pageId++) {
    const page = output.next(pageBytes);
    writePageHeader(new DataView(page.buffer, page.byteOffset, pageBytes), pageId, pageFlags.leaf, 0, 0);
  }
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
  const freelist = plan.freelistPage ? BigInt(freelistPageId) : noFreelistPageId;
  view.setBigUint64(at + metaOffsets.freelistPageId, freelist, true);
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
export function writeBoltBytes(root: BoltBucketSource, layout: BoltLayout = boltLayout()): Uint8Array {
  const { pageBytes } = layout;
  const plan = planBolt(root, layout);
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
