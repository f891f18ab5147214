/**
 * CRC-32C (Castagnoli), the checksum etcd's WAL uses, computed with slicing-by-8 tables.
 * `crc32cUpdate(previous, bytes)` continues a checksum, so chaining records the way etcd's WAL does
 * is `crc = crc32cUpdate(crc, record)`, and crc32cUpdate(crc32cUpdate(0, a), b) equals crc32c(a ++ b).
 */

/** The Castagnoli polynomial, bit-reversed. */
const castagnoliReversed = 0x82f63b78;
const tableCount = 8;

const tables = buildTables();

function buildTables(): Uint32Array {
  const table = new Uint32Array(tableCount * 256);
  for (let i = 0; i < 256; i++) {
    let crc = i;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ castagnoliReversed : crc >>> 1;
    table[i] = crc >>> 0;
  }
  // Table k advances a byte that sits k positions before the end of an 8-byte block.
  for (let k = 1; k < tableCount; k++) {
    for (let i = 0; i < 256; i++) {
      const previous = table[(k - 1) * 256 + i]!;
      table[k * 256 + i] = ((previous >>> 8) ^ table[previous & 0xff]!) >>> 0;
    }
  }
  return table;
}

/** Continues the CRC-32C `previous` over bytes[start, end); pass 0 to start a new checksum. */
export function crc32cUpdate(previous: number, bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (start < 0 || end > bytes.length || start > end) {
    throw new RangeError(`crc32c range [${start}, ${end}) outside 0..${bytes.length}`);
  }
  const t = tables;
  let crc = ~previous;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const low = crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    crc =
      t[7 * 256 + (low & 0xff)]! ^
      t[6 * 256 + ((low >>> 8) & 0xff)]! ^
      t[5 * 256 + ((low >>> 16) & 0xff)]! ^
      t[4 * 256 + (low >>> 24)]! ^
      t[3 * 256 + bytes[i + 4]!]! ^
      t[2 * 256 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
  }
  for (; i < end; i++) crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** The CRC-32C of `bytes`. */
export function crc32c(bytes: Uint8Array): number {
  return crc32cUpdate(0, bytes);
}
