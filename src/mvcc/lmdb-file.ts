/**
 * Reads the records of one database of an LMDB data file without LMDB, for the snapshot thread:
 * a backup walks a copy of the backend's key area twice (see src/snap/bbolt/writer.ts), and
 * lmdb-js's cursor costs about half a microsecond and an object or two per record, where walking
 * the pages here costs a few dozen nanoseconds and nothing per record. The file is read with
 * positioned reads (each page once, leaves a block at a time), not mapped, so the copy's pages do
 * not count in the member's resident memory.
 *
 * The layout is that of the LMDB built into lmdb-js (its page header is 24 bytes: page number,
 * txnid, pad, flags, lower and upper bounds or the overflow page count): pages 0 and 1 are metas,
 * the newer by txnid is current and names the main database's root; a named database is a node of
 * the main database whose data is its 48-byte database record; branch nodes name child pages;
 * leaf nodes hold a key and either their data or, for large data, the overflow page holding it.
 * Integers are little-endian. Only what the backend uses is read: no duplicate-sorted databases.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { backupReadBlockBytes, lmdbTreeDepthMax } from '../lib/limits.js';

/** LMDB's magic number and page flags. */
export const lmdbMagic = 0xbeefc0de;
export const lmdbPageFlags = {
  branch: 0x01,
  leaf: 0x02,
  overflow: 0x04,
  meta: 0x08,
  leaf2: 0x20,
  subPage: 0x40,
} as const;
const nodeFlags = { bigData: 0x01, subDatabase: 0x02, duplicates: 0x04 } as const;

/** Page header: page number u64 at 0, txnid u64 at 8, pad u16 at 16, flags u16 at 18, lower u16 at 20, upper u16 at 22. */
export const lmdbPageHeaderBytes = 24;
export const lmdbPageOffsets = { pageId: 0, flags: 18, lower: 20, overflowPages: 20 } as const;
/** The meta follows the page header: magic, version, address, map size, the free and main database records, last page, txnid. */
export const lmdbMetaOffsets = { magic: 24, freeDb: 48, mainDb: 96, txnid: 152 } as const;
/** The free database record's pad field holds the page size. */
export const lmdbPageSizeOffset = lmdbMetaOffsets.freeDb;
/** A database record: pad u32, flags u16, depth u16, branch, leaf and overflow page counts, entries, root (u64 each). */
const dbRecordBytes = 48;
const dbOffsets = { flags: 4, depth: 6, entries: 32, root: 40 } as const;
/** A node: data size (leaf) or page number (branch) low and high u16s, flags u16, key size u16, then the key and data. */
const nodeHeaderBytes = 8;
const noPage = 2 ** 64 - 1;
const twoTo32 = 2 ** 32;

/** One record as ranges of `bytes`, which hold it only during the call. */
export type LmdbRecordVisitor = (
  bytes: Uint8Array,
  keyAt: number,
  keyLength: number,
  valueAt: number,
  valueLength: number,
) => void;

/** A database's root page (undefined when it is empty) and its record count, from its database record. */
export interface LmdbTree {
  rootPageId: number | undefined;
  /** Levels of pages, 1 when the root is a leaf. */
  depth: number;
  entries: number;
}

function readUint64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * twoTo32;
}

/** An LMDB data file open for reading, at its current meta. */
export class LmdbFileReader {
  /** Where a run of leaf pages is read, sorted by page number, to be walked in key order. */
  private readonly block: Uint8Array;
  private readonly blockView: DataView;
  private readonly blockPages: number;
  /** Where each leaf of the current run sits in the block, by its place in key order. */
  private readonly slots: Int32Array;
  private overflow = new Uint8Array(0);
  private readonly main: LmdbTree;

  private constructor(
    private readonly fd: number,
    private readonly path: string,
    private readonly fileBytes: number,
    readonly pageBytes: number,
    main: LmdbTree,
  ) {
    // A plain Uint8Array, not a Buffer: the writer takes views of it per record, and a Buffer's views cost more.
    this.blockPages = Math.max(1, Math.floor(backupReadBlockBytes / pageBytes));
    this.block = new Uint8Array(this.blockPages * pageBytes);
    this.blockView = new DataView(this.block.buffer, this.block.byteOffset, this.block.byteLength);
    this.slots = new Int32Array(this.blockPages);
    this.main = main;
  }

  /** Opens the data file `path` and reads its metas; throws when they are not LMDB's. */
  static open(path: string): LmdbFileReader {
    const fd = openSync(path, 'r');
    try {
      const fileBytes = fstatSync(fd).size;
      const first = Buffer.alloc(lmdbMetaOffsets.txnid + 8);
      if (readSync(fd, first, 0, first.length, 0) !== first.length)
        throw new Error(`${path}: too short for LMDB's metas`);
      const pageBytes = first.readUInt32LE(lmdbPageSizeOffset);
      if (pageBytes < 512 || pageBytes > 65536 || (pageBytes & (pageBytes - 1)) !== 0)
        throw new Error(`${path}: meta page 0 names a page size of ${pageBytes}`);
      const second = Buffer.alloc(first.length);
      if (readSync(fd, second, 0, second.length, pageBytes) !== second.length)
        throw new Error(`${path}: too short for LMDB's metas`);
      const metas = [first, second].map((meta, pageId) => checkedMeta(path, meta, pageId));
      const current = metas[0]!.txnid >= metas[1]!.txnid ? metas[0]! : metas[1]!;
      return new LmdbFileReader(fd, path, fileBytes, pageBytes, current.main);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  /** The named database `name` (a database lmdb-js opened with that name), or undefined when there is none. */
  database(name: string): LmdbTree | undefined {
    // lmdb-js stores a database's name with its terminating NUL.
    const wanted = Buffer.from(`${name}\0`, 'utf8');
    let found: LmdbTree | undefined;
    this.scan(this.main, (bytes, keyAt, keyLength, valueAt, valueLength) => {
      if (keyLength !== wanted.length || Buffer.compare(wanted, bytes.subarray(keyAt, keyAt + keyLength)) !== 0) return;
      if (valueLength !== dbRecordBytes)
        throw new Error(`${this.path}: database ${name} has a record of ${valueLength} bytes, want ${dbRecordBytes}`);
      found = dbRecord(new DataView(bytes.buffer, bytes.byteOffset + valueAt, dbRecordBytes));
    });
    return found;
  }

  /** Calls `visit` for every record of `tree` in key order. */
  scan(tree: LmdbTree, visit: LmdbRecordVisitor): void {
    if (tree.rootPageId === undefined) return;
    if (tree.depth < 1 || tree.depth > lmdbTreeDepthMax)
      throw new Error(`${this.path}: a tree of depth ${tree.depth}, LMDB builds 1 to ${lmdbTreeDepthMax} levels`);
    const records =
      tree.depth === 1
        ? this.scanLeaves([tree.rootPageId], visit)
        : this.scanBranch(tree.rootPageId, 1, tree.depth, visit);
    if (records !== tree.entries)
      throw new Error(`${this.path}: the database record counts ${tree.entries} records, its pages hold ${records}`);
  }

  /** Walks the subtree under branch page `pageId` at `level` (the root's is 1); returns the records it holds. */
  private scanBranch(pageId: number, level: number, depth: number, visit: LmdbRecordVisitor): number {
    const children = this.branchChildren(pageId);
    if (level === depth - 1) return this.scanLeaves(children, visit);
    let records = 0;
    for (const child of children) records += this.scanBranch(child, level + 1, depth, visit);
    return records;
  }

  /** The child pages branch page `pageId` names, in key order. */
  private branchChildren(pageId: number): number[] {
    const page = new Uint8Array(this.pageBytes);
    if (readSync(this.fd, page, 0, this.pageBytes, pageId * this.pageBytes) !== this.pageBytes)
      throw new Error(`${this.path}: page ${pageId} lies beyond the end of the file`);
    const view = new DataView(page.buffer);
    const count = this.checkedPage(view, 0, pageId, lmdbPageFlags.branch);
    const children: number[] = [];
    for (let index = 0; index < count; index++) {
      const nodeAt = view.getUint16(lmdbPageHeaderBytes + 2 * index, true) + lmdbPageHeaderBytes;
      if (nodeAt + nodeHeaderBytes > this.pageBytes)
        throw new Error(`${this.path}: a node of page ${pageId} lies past the page's end`);
      children.push(
        view.getUint16(nodeAt, true) +
          view.getUint16(nodeAt + 2, true) * 0x10000 +
          view.getUint16(nodeAt + 4, true) * twoTo32,
      );
    }
    return children;
  }

  /**
   * Visits the records of the leaf pages `leaves` in their order. They are read a block at a
   * time, each block's pages sorted by page number and read in runs of neighbours, each page
   * once: a tree that grew by many commits has its leaves scattered over the file.
   */
  private scanLeaves(leaves: number[], visit: LmdbRecordVisitor): number {
    let records = 0;
    for (let first = 0; first < leaves.length; first += this.blockPages) {
      const group = leaves.slice(first, first + this.blockPages);
      const order = group.map((_, index) => index).sort((a, b) => group[a]! - group[b]!);
      let slot = 0;
      while (slot < order.length) {
        let end = slot + 1;
        while (end < order.length && group[order[end]!]! === group[order[end - 1]!]! + 1) end++;
        const runBytes = (end - slot) * this.pageBytes;
        const read = readSync(
          this.fd,
          this.block,
          slot * this.pageBytes,
          runBytes,
          group[order[slot]!]! * this.pageBytes,
        );
        if (read !== runBytes)
          throw new Error(`${this.path}: page ${group[order[slot]!]} lies beyond the end of the file`);
        for (let at = slot; at < end; at++) this.slots[order[at]!] = at;
        slot = end;
      }
      for (let index = 0; index < group.length; index++) {
        const at = this.slots[index]! * this.pageBytes;
        const count = this.checkedPage(this.blockView, at, group[index]!, lmdbPageFlags.leaf);
        this.scanLeaf(group[index]!, at, count, visit);
        records += count;
      }
    }
    return records;
  }

  /** The node count of the page at `at` of `view`, once it says it is page `pageId` of the kind `flag` names. */
  private checkedPage(view: DataView, at: number, pageId: number, flag: number): number {
    const storedId = readUint64(view, at + lmdbPageOffsets.pageId);
    if (storedId !== pageId) throw new Error(`${this.path}: page ${pageId} says it is page ${storedId}`);
    const flags = view.getUint16(at + lmdbPageOffsets.flags, true);
    if ((flags & (lmdbPageFlags.branch | lmdbPageFlags.leaf | lmdbPageFlags.leaf2)) !== flag) {
      const want = flag === lmdbPageFlags.branch ? 'branch' : 'leaf';
      throw new Error(
        `${this.path}: page ${pageId} has flags 0x${flags.toString(16)}, where the tree has a ${want} page`,
      );
    }
    // The lower bound, like the node offsets, counts from the end of the page header: it is twice the node count.
    return view.getUint16(at + lmdbPageOffsets.lower, true) >> 1;
  }

  private scanLeaf(pageId: number, at: number, count: number, visit: LmdbRecordVisitor): void {
    const view = this.blockView;
    const pageEnd = at + this.pageBytes;
    for (let index = 0; index < count; index++) {
      const nodeAt = at + view.getUint16(at + lmdbPageHeaderBytes + 2 * index, true) + lmdbPageHeaderBytes;
      const valueLength = view.getUint16(nodeAt, true) + view.getUint16(nodeAt + 2, true) * 0x10000;
      const flags = view.getUint16(nodeAt + 4, true);
      const keyLength = view.getUint16(nodeAt + 6, true);
      const keyAt = nodeAt + nodeHeaderBytes;
      if ((flags & nodeFlags.bigData) !== 0) {
        if (keyAt + keyLength + 8 > pageEnd)
          throw new Error(`${this.path}: a record of page ${pageId} runs past its end`);
        this.visitOverflow(readUint64(view, keyAt + keyLength), keyAt, keyLength, valueLength, visit);
        continue;
      }
      if ((flags & nodeFlags.duplicates) !== 0)
        throw new Error(`${this.path}: page ${pageId} holds duplicate-sorted records, which the backend never writes`);
      if (keyAt + keyLength + valueLength > pageEnd)
        throw new Error(`${this.path}: a record of page ${pageId} runs past its end`);
      visit(this.block, keyAt, keyLength, keyAt + keyLength, valueLength);
    }
  }

  /**
   * Visits a record whose value is on overflow pages: its key, then the first overflow page's
   * header and the value, read into the overflow buffer (the block stays as it is, its leaf
   * page still being walked).
   */
  private visitOverflow(
    pageId: number,
    keyAt: number,
    keyLength: number,
    valueLength: number,
    visit: LmdbRecordVisitor,
  ): void {
    const offset = pageId * this.pageBytes;
    const bytes = keyLength + lmdbPageHeaderBytes + valueLength;
    if (offset + lmdbPageHeaderBytes + valueLength > this.fileBytes)
      throw new Error(`${this.path}: overflow page ${pageId} lies beyond the end of the file`);
    if (this.overflow.length < bytes) this.overflow = new Uint8Array(Math.max(bytes, this.overflow.length * 2));
    this.overflow.set(this.block.subarray(keyAt, keyAt + keyLength));
    const read = readSync(this.fd, this.overflow, keyLength, lmdbPageHeaderBytes + valueLength, offset);
    const view = new DataView(this.overflow.buffer, this.overflow.byteOffset + keyLength, lmdbPageHeaderBytes);
    const storedId = read >= lmdbPageHeaderBytes ? readUint64(view, lmdbPageOffsets.pageId) : -1;
    const flags = read >= lmdbPageHeaderBytes ? view.getUint16(lmdbPageOffsets.flags, true) : 0;
    if (read !== lmdbPageHeaderBytes + valueLength || storedId !== pageId || (flags & lmdbPageFlags.overflow) === 0)
      throw new Error(`${this.path}: page ${pageId} is not the overflow page a record names`);
    visit(this.overflow, 0, keyLength, keyLength + lmdbPageHeaderBytes, valueLength);
  }
}

function checkedMeta(path: string, meta: Buffer, pageId: number): { txnid: number; main: LmdbTree } {
  const view = new DataView(meta.buffer, meta.byteOffset, meta.byteLength);
  const magic = view.getUint32(lmdbMetaOffsets.magic, true);
  const flags = view.getUint16(lmdbPageOffsets.flags, true);
  if (magic !== lmdbMagic || (flags & lmdbPageFlags.meta) === 0)
    throw new Error(
      `invalid database: ${path}: meta page ${pageId} has magic 0x${magic.toString(16)} and flags 0x${flags.toString(16)}, not LMDB's`,
    );
  return {
    txnid: readUint64(view, lmdbMetaOffsets.txnid),
    main: dbRecord(new DataView(meta.buffer, meta.byteOffset + lmdbMetaOffsets.mainDb, dbRecordBytes)),
  };
}

function dbRecord(view: DataView): LmdbTree {
  const root = readUint64(view, dbOffsets.root);
  return {
    rootPageId: root >= noPage ? undefined : root,
    depth: view.getUint16(dbOffsets.depth, true),
    entries: readUint64(view, dbOffsets.entries),
  };
}
