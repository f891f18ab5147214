/**
 * HPACK (RFC 7541) decoding for the client port's HTTP/2: header blocks in, names and values out,
 * the dynamic table kept in step. (Our answers are encoded by actors/client/grpc/headers.ts.)
 */
import { huffmanCodeBits, huffmanCodes } from './hpack-huffman.js';
import { headerStringBytesMax } from '../lib/limits.js';

/** Names of the static table's 61 entries (RFC 7541, Appendix A), index 1 first. */
const staticNames: readonly string[] = [
  ':authority',
  ':method',
  ':method',
  ':path',
  ':path',
  ':scheme',
  ':scheme',
  ':status',
  ':status',
  ':status',
  ':status',
  ':status',
  ':status',
  ':status',
  'accept-charset',
  'accept-encoding',
  'accept-language',
  'accept-ranges',
  'accept',
  'access-control-allow-origin',
  'age',
  'allow',
  'authorization',
  'cache-control',
  'content-disposition',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-range',
  'content-type',
  'cookie',
  'date',
  'etag',
  'expect',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'link',
  'location',
  'max-forwards',
  'proxy-authenticate',
  'proxy-authorization',
  'range',
  'referer',
  'refresh',
  'retry-after',
  'server',
  'set-cookie',
  'strict-transport-security',
  'transfer-encoding',
  'user-agent',
  'vary',
  'via',
  'www-authenticate',
];

/** Every dynamic table entry costs its name and value octets plus this (RFC 7541, 4.1). */
const entryOverheadBytes = 32;
/** SETTINGS_HEADER_TABLE_SIZE until a peer says otherwise (RFC 9113, 6.5.2). */
export const defaultHeaderTableBytes = 4096;

export class HpackError extends Error {}

/** A binary trie of the Huffman code: node n's children sit at 2n and 2n+1; leaves hold ~symbol. */
const huffmanTrie: Int32Array = (() => {
  const trie = new Int32Array(2 * 512).fill(0);
  let nodes = 1;
  for (let symbol = 0; symbol < 256; symbol++) {
    let node = 0;
    const bits = huffmanCodeBits[symbol]!;
    for (let bit = bits - 1; bit >= 0; bit--) {
      const slot = 2 * node + ((huffmanCodes[symbol]! >>> bit) & 1);
      if (bit === 0) trie[slot] = ~symbol;
      else {
        if (trie[slot] === 0) trie[slot] = nodes++;
        node = trie[slot]!;
      }
    }
  }
  return trie;
})();

/**
 * Decodes a Huffman-coded string; padding must be a prefix of end-of-string shorter than a byte.
 * A string that would decode to more than `octetsMax` octets is refused as it grows.
 */
export function huffmanDecode(bytes: Uint8Array, octetsMax: number = headerStringBytesMax): Buffer {
  // The shortest code is 5 bits, so no string decodes to more than 8/5 of its bytes.
  const out = Buffer.allocUnsafe(Math.min(Math.ceil((bytes.length * 8) / 5), octetsMax + 1));
  let length = 0;
  let node = 0;
  let depth = 0;
  let allOnes = true;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      const one = (byte >>> bit) & 1;
      const next = huffmanTrie[2 * node + one]!;
      depth++;
      allOnes &&= one === 1;
      if (next < 0) {
        if (length === octetsMax) throw new HpackError('header string too long');
        out[length++] = ~next;
        node = 0;
        depth = 0;
        allOnes = true;
      } else if (next === 0) throw new HpackError('invalid Huffman code');
      else node = next;
    }
  }
  if (depth > 7 || !allOnes) throw new HpackError('invalid Huffman padding');
  return out.subarray(0, length);
}

/** Reads an HPACK integer with an N-bit prefix (RFC 7541, 5.1) at block[at]. */
function readInteger(block: Uint8Array, at: number, prefixBits: number): { value: number; end: number } {
  if (at >= block.length) throw new HpackError('header block ends inside an integer');
  const mask = (1 << prefixBits) - 1;
  let value = block[at]! & mask;
  let end = at + 1;
  if (value < mask) return { value, end };
  for (let shift = 0; ; shift += 7) {
    if (end >= block.length) throw new HpackError('header block ends inside an integer');
    if (shift > 28) throw new HpackError('header integer too large');
    const byte = block[end++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, end };
  }
}

interface StringField {
  /** The decoded octets. */
  octets: Buffer;
  end: number;
}

function readString(block: Uint8Array, at: number): StringField {
  const huffman = at < block.length && (block[at]! & 0x80) !== 0;
  const length = readInteger(block, at, 7);
  if (length.value > headerStringBytesMax) throw new HpackError('header string too long');
  const end = length.end + length.value;
  if (end > block.length) throw new HpackError('header block ends inside a string');
  const raw = block.subarray(length.end, end);
  return { octets: huffman ? huffmanDecode(raw) : Buffer.from(raw), end };
}

/** The end of the string literal at block[at], checked as readString checks it but not decoded. */
function skipString(block: Uint8Array, at: number): number {
  const length = readInteger(block, at, 7);
  if (length.value > headerStringBytesMax) throw new HpackError('header string too long');
  const end = length.end + length.value;
  if (end > block.length) throw new HpackError('header block ends inside a string');
  return end;
}

/** Values of the static table's entries, index 1 first ('' where the entry has a name only). */
const staticValues: readonly string[] = (() => {
  const values = new Array<string>(staticNames.length).fill('');
  const known: Record<number, string> = {
    2: 'GET',
    3: 'POST',
    4: '/',
    5: '/index.html',
    6: 'http',
    7: 'https',
    8: '200',
    9: '204',
    10: '206',
    11: '304',
    12: '400',
    13: '404',
    14: '500',
    16: 'gzip, deflate',
  };
  for (const [index, value] of Object.entries(known)) values[Number(index) - 1] = value;
  return values;
})();

/**
 * A whole HPACK decoder for one direction of a connection: header blocks in, names and values
 * out as latin1 strings (HTTP/2 field values are octets), the dynamic table kept in step. Names
 * and values of the table are kept decoded, so a header sent as an index costs a lookup.
 */
export class HeaderDecoder {
  /** Newest first; names and values in pairs. */
  private readonly entries: string[] = [];
  private readonly entrySizes: number[] = [];
  private usedBytes = 0;
  private maxBytes = defaultHeaderTableBytes;

  /** `tableBytesMax` is our SETTINGS_HEADER_TABLE_SIZE: the largest size update a peer may ask for. */
  constructor(private readonly tableBytesMax: number = defaultHeaderTableBytes) {}

  /**
   * Appends each header of one complete block to `out` as a name then its value; returns the
   * header list's size by RFC 9113's count. Once that size passes `listBytesMax` no more fields
   * are appended and the size returned is over the limit: the rest of the block is only walked
   * to keep the dynamic table in step, decoding just the literals that enter it, as Go's
   * decoder does once a list is truncated. Throws HpackError on malformed input.
   */
  decode(block: Uint8Array, out: string[], listBytesMax = Infinity): number {
    let at = 0;
    let listBytes = 0;
    let sizeUpdateAllowed = true;
    while (at < block.length) {
      const first = block[at]!;
      if ((first & 0xe0) === 0x20) {
        if (!sizeUpdateAllowed) throw new HpackError('dynamic table size update after the first header');
        const size = readInteger(block, at, 5);
        if (size.value > this.tableBytesMax)
          throw new HpackError(`dynamic table size ${size.value} over ${this.tableBytesMax}`);
        this.maxBytes = size.value;
        this.evict();
        at = size.end;
        continue;
      }
      sizeUpdateAllowed = false;
      const emitting = listBytes <= listBytesMax;
      let name: string;
      let value: string;
      if (first & 0x80) {
        const index = readInteger(block, at, 7);
        if (index.value === 0) throw new HpackError('header index 0');
        name = this.nameAt(index.value);
        value = this.valueAt(index.value);
        at = index.end;
      } else {
        const indexed = (first & 0xc0) === 0x40;
        const nameIndex = readInteger(block, at, indexed ? 6 : 4);
        at = nameIndex.end;
        if (!emitting && !indexed) {
          // Past the limit, a literal that enters no table is only stepped over.
          if (nameIndex.value === 0) at = skipString(block, at);
          else this.nameAt(nameIndex.value);
          at = skipString(block, at);
          continue;
        }
        if (nameIndex.value === 0) {
          const literalName = readString(block, at);
          name = literalName.octets.toString('latin1');
          at = literalName.end;
        } else name = this.nameAt(nameIndex.value);
        const literal = readString(block, at);
        value = literal.octets.toString('latin1');
        at = literal.end;
        if (indexed) this.add(name, value);
      }
      if (!emitting) continue;
      listBytes += name.length + value.length + entryOverheadBytes;
      if (listBytes <= listBytesMax) out.push(name, value);
    }
    return listBytes;
  }

  private nameAt(index: number): string {
    if (index <= staticNames.length) return staticNames[index - 1]!;
    return this.dynamicField(index, 0);
  }

  private valueAt(index: number): string {
    if (index <= staticNames.length) return staticValues[index - 1]!;
    return this.dynamicField(index, 1);
  }

  private dynamicField(index: number, which: 0 | 1): string {
    const slot = index - staticNames.length - 1;
    if (slot >= this.entrySizes.length) throw new HpackError(`header index ${index} is not in the table`);
    return this.entries[2 * slot + which]!;
  }

  private add(name: string, value: string): void {
    const bytes = name.length + value.length + entryOverheadBytes;
    this.entries.unshift(name, value);
    this.entrySizes.unshift(bytes);
    this.usedBytes += bytes;
    this.evict();
  }

  private evict(): void {
    while (this.usedBytes > this.maxBytes) {
      this.usedBytes -= this.entrySizes.pop()!;
      this.entries.length -= 2;
    }
  }
}
