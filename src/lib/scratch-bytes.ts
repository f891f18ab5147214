/**
 * Small byte arrays for data that lives only briefly (an LMDB key or value on its way to a
 * commit, a record being hashed or encoded), carved from shared 64 KB slabs: one ArrayBuffer per
 * slab instead of one per array. Allocating an ArrayBuffer is what made these encodings costly:
 * a put spent more time making its 17-byte revision key and its record buffer than filling them.
 *
 * A slab lives until every array carved from it is unreachable, so nothing long-lived may come
 * from here (a kept 17-byte array would pin 64 KB), and callers must not treat `.buffer` as
 * theirs (post it, transfer it, or view it whole).
 */

const slabBytes = 64 * 1024;
/** Larger requests get an ArrayBuffer of their own. */
const scratchBytesMax = 4 * 1024;

let slab = new Uint8Array(slabBytes);
let used = 0;

/** A zero-filled plain Uint8Array of `size` bytes for short-lived use (see above). */
export function scratchBytes(size: number): Uint8Array {
  if (size > scratchBytesMax) return new Uint8Array(size);
  if (size > slabBytes - used) {
    slab = new Uint8Array(slabBytes);
    used = 0;
  }
  const bytes = slab.subarray(used, used + size);
  // Keep every array 8-byte aligned, so the next one can be read through any typed view.
  used += (size + 7) & ~7;
  return bytes;
}
