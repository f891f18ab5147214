/**
 * Small byte arrays carved from shared slabs: one ArrayBuffer per slab instead of one per array.
 * Allocating an ArrayBuffer is what made small encodings costly (a put spent more time making its
 * 17-byte revision key and its record buffer than filling them), and each one costs the heap
 * about 200 bytes of bookkeeping besides its data.
 *
 * A slab lives until every array carved from it is unreachable, so arrays from one slab should
 * die at about the same time, and callers must not treat `.buffer` as theirs (post it, transfer
 * it, or view it whole). Two kinds fit that:
 * - scratchBytes: data that lives only briefly (an LMDB key or value on its way to a commit, a
 *   record being hashed or encoded);
 * - logBytes: a proposal's bytes, which live in the Raft log until compaction drops them in log
 *   order, so a slab is freed once the entries carved from it are compacted away.
 */

class Slabs {
  private slab: Uint8Array;
  private used = 0;

  /** Arrays larger than `arrayBytesMax` get an ArrayBuffer of their own. */
  constructor(
    private readonly slabBytes: number,
    private readonly arrayBytesMax: number,
  ) {
    this.slab = new Uint8Array(slabBytes);
  }

  /** A zero-filled plain Uint8Array of `size` bytes. */
  take(size: number): Uint8Array {
    if (size > this.arrayBytesMax) return new Uint8Array(size);
    if (size > this.slabBytes - this.used) {
      this.slab = new Uint8Array(this.slabBytes);
      this.used = 0;
    }
    const bytes = this.slab.subarray(this.used, this.used + size);
    // Keep every array 8-byte aligned, so the next one can be read through any typed view.
    this.used += (size + 7) & ~7;
    return bytes;
  }
}

const scratch = new Slabs(64 * 1024, 4 * 1024);
/** 256 KB slabs hold about 800 proposals of a few hundred bytes. */
const log = new Slabs(256 * 1024, 16 * 1024);

/** A zero-filled plain Uint8Array of `size` bytes for short-lived use (see above). */
export function scratchBytes(size: number): Uint8Array {
  return scratch.take(size);
}

/** A zero-filled plain Uint8Array of `size` bytes for a proposal that will live in the Raft log (see above). */
export function logBytes(size: number): Uint8Array {
  return log.take(size);
}
