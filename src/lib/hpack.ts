/**
 * Just enough HPACK (RFC 7541) to rewrite one header's value inside a header block while the
 * encoder's and the decoder's dynamic tables stay in step: the block is walked representation
 * by representation, a mirror of the dynamic table tracks names and sizes, and a rewritten value
 * keeps its decoded length, so every table entry keeps its size and every index its meaning.
 */
import { huffmanCodeBits, huffmanCodes } from './hpack-huffman.js';

/** Names of the static table's 61 entries (RFC 7541, Appendix A), index 1 first. */
const staticNames: readonly string[] = [
  ':authority', ':method', ':method', ':path', ':path', ':scheme', ':scheme', ':status', ':status',
  ':status', ':status', ':status', ':status', ':status', 'accept-charset', 'accept-encoding',
  'accept-language', 'accept-ranges', 'accept', 'access-control-allow-origin', 'age', 'allow',
  'authorization', 'cache-control', 'content-disposition', 'content-encoding', 'content-language',
  'content-length', 'content-location', 'content-range', 'content-type', 'cookie', 'date', 'etag',
  'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range',
  'if-unmodified-since', 'last-modified', 'link', 'location', 'max-forwards', 'proxy-authenticate',
  'proxy-authorization', 'range', 'referer', 'refresh', 'retry-after', 'server', 'set-cookie',
  'strict-transport-security', 'transfer-encoding', 'user-agent', 'vary', 'via', 'www-authenticate',
];

/** Every dynamic table entry costs its name and value octets plus this (RFC 7541, 4.1). */
const entryOverheadBytes = 32;
/** SETTINGS_HEADER_TABLE_SIZE until a peer says otherwise (RFC 9113, 6.5.2). */
export const defaultHeaderTableBytes = 4096;
/** No header string we rewrite for is longer; a longer length prefix is malformed input. */
const headerStringBytesMax = 1 << 20;

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

/** Decodes a Huffman-coded string; padding must be a prefix of end-of-string shorter than a byte. */
export function huffmanDecode(bytes: Uint8Array): Buffer {
  const out: number[] = [];
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
        out.push(~next);
        node = 0;
        depth = 0;
        allOnes = true;
      } else if (next === 0) throw new HpackError('invalid Huffman code');
      else node = next;
    }
  }
  if (depth > 7 || !allOnes) throw new HpackError('invalid Huffman padding');
  return Buffer.from(out);
}

interface Entry {
  name: string;
  value: Buffer;
  bytes: number;
}

/** The decoder's view of one direction's dynamic table: names and sizes, newest first. */
export class DynamicTableMirror {
  private readonly entries: Entry[] = [];
  private usedBytes = 0;

  constructor(private maxBytes: number = defaultHeaderTableBytes) {}

  /** The name at an HPACK index (1-based, static entries first). */
  nameAt(index: number): string {
    if (index >= 1 && index <= staticNames.length) return staticNames[index - 1]!;
    return this.dynamicEntry(index).name;
  }

  /** The value at an HPACK index; static values are not kept, so they read as undefined. */
  valueAt(index: number): Buffer | undefined {
    return index >= 1 && index <= staticNames.length ? undefined : this.dynamicEntry(index).value;
  }

  add(name: string, value: Buffer): void {
    const bytes = Buffer.byteLength(name, 'latin1') + value.length + entryOverheadBytes;
    this.entries.unshift({ name, value, bytes });
    this.usedBytes += bytes;
    this.evict();
  }

  resize(maxBytes: number): void {
    this.maxBytes = maxBytes;
    this.evict();
  }

  private dynamicEntry(index: number): Entry {
    const entry = this.entries[index - staticNames.length - 1];
    if (entry === undefined) throw new HpackError(`header index ${index} is not in the table`);
    return entry;
  }

  private evict(): void {
    while (this.usedBytes > this.maxBytes) this.usedBytes -= this.entries.pop()!.bytes;
  }
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
  start: number;
  end: number;
}

function readString(block: Uint8Array, at: number): StringField {
  const huffman = at < block.length && (block[at]! & 0x80) !== 0;
  const length = readInteger(block, at, 7);
  if (length.value > headerStringBytesMax) throw new HpackError('header string too long');
  const end = length.end + length.value;
  if (end > block.length) throw new HpackError('header block ends inside a string');
  const raw = block.subarray(length.end, end);
  return { octets: huffman ? huffmanDecode(raw) : Buffer.from(raw), start: at, end };
}

/** Encodes a string literal without Huffman coding. */
function encodeRawString(octets: Buffer): Buffer {
  const prefix: number[] = [];
  let length = octets.length;
  if (length < 0x7f) prefix.push(length);
  else {
    prefix.push(0x7f);
    length -= 0x7f;
    while (length >= 0x80) {
      prefix.push((length & 0x7f) | 0x80);
      length >>>= 7;
    }
    prefix.push(length);
  }
  return Buffer.concat([Buffer.from(prefix), octets]);
}

/**
 * Returns a replacement for a header's value, of the same length in octets, or undefined to keep
 * it as it is.
 */
export type ValueRewrite = (name: string, value: Buffer) => Buffer | undefined;

/** One header of a block: its value's byte range in the block when it was sent as a literal. */
type HeaderVisit = (name: string, value: Buffer | undefined, literal: StringField | undefined) => void;

/** Walks one complete header block in order, keeping `table` in step. */
function walkHeaderBlock(block: Uint8Array, table: DynamicTableMirror, visit: HeaderVisit): void {
  let at = 0;
  while (at < block.length) {
    const first = block[at]!;
    if (first & 0x80) {
      const index = readInteger(block, at, 7);
      visit(table.nameAt(index.value), table.valueAt(index.value), undefined);
      at = index.end;
      continue;
    }
    if ((first & 0xe0) === 0x20) {
      const size = readInteger(block, at, 5);
      table.resize(size.value);
      at = size.end;
      continue;
    }
    const indexed = (first & 0xc0) === 0x40;
    const nameIndex = readInteger(block, at, indexed ? 6 : 4);
    let name: string;
    at = nameIndex.end;
    if (nameIndex.value === 0) {
      const literalName = readString(block, at);
      name = literalName.octets.toString('latin1');
      at = literalName.end;
    } else name = table.nameAt(nameIndex.value);
    const value = readString(block, at);
    at = value.end;
    if (indexed) table.add(name, value.octets);
    visit(name, value.octets, value);
  }
}

/**
 * The headers of one complete block, in order; a header indexed from the static table with its
 * value reads as undefined. Throws HpackError on malformed input.
 */
export function decodeHeaderBlock(block: Uint8Array, table: DynamicTableMirror): Array<[string, Buffer | undefined]> {
  const headers: Array<[string, Buffer | undefined]> = [];
  walkHeaderBlock(block, table, (name, value) => headers.push([name, value]));
  return headers;
}

/**
 * Walks one complete header block, keeping `table` in step, and returns it with the literal
 * values that `rewrite` replaced, or undefined when nothing changed. Throws HpackError on
 * malformed input.
 */
export function rewriteHeaderBlock(block: Uint8Array, table: DynamicTableMirror, rewrite: ValueRewrite): Buffer | undefined {
  const pieces: Uint8Array[] = [];
  let copiedTo = 0;
  walkHeaderBlock(block, table, (name, value, literal) => {
    if (literal === undefined) return;
    const replacement = rewrite(name, value!);
    if (replacement === undefined) return;
    if (replacement.length !== literal.octets.length) throw new HpackError('a rewritten header value must keep its length');
    pieces.push(block.subarray(copiedTo, literal.start), encodeRawString(replacement));
    copiedTo = literal.end;
  });
  if (pieces.length === 0) return undefined;
  pieces.push(block.subarray(copiedTo));
  return Buffer.concat(pieces);
}

/**
 * Octets nghttp2 accepts in :authority: RFC 3986's unreserved, sub-delims, '%', ':', '@', '[' and
 * ']'. Go's HTTP/2 server is laxer, so gRPC clients send what it takes.
 */
const authorityOctets: Uint8Array = (() => {
  const allowed = new Uint8Array(256);
  const text = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=%:@[]";
  for (let i = 0; i < text.length; i++) allowed[text.charCodeAt(i)] = 1;
  return allowed;
})();

/**
 * An :authority value nghttp2 would refuse, with each refused octet replaced by '-' (same length),
 * or undefined when it is acceptable as it is.
 */
export function acceptableAuthority(name: string, value: Buffer): Buffer | undefined {
  if (name !== ':authority' || value.every((octet) => authorityOctets[octet] === 1)) return undefined;
  return Buffer.from(value.map((octet) => (authorityOctets[octet] === 1 ? octet : 0x2d)));
}

/** Values of the static table's entries, index 1 first ('' where the entry has a name only). */
const staticValues: readonly string[] = (() => {
  const values = new Array<string>(staticNames.length).fill('');
  const known: Record<number, string> = {
    2: 'GET', 3: 'POST', 4: '/', 5: '/index.html', 6: 'http', 7: 'https', 8: '200', 9: '204', 10: '206',
    11: '304', 12: '400', 13: '404', 14: '500', 16: 'gzip, deflate',
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
   * header list's size by RFC 9113's count. Throws HpackError on malformed input.
   */
  decode(block: Uint8Array, out: string[]): number {
    let at = 0;
    let listBytes = 0;
    let sizeUpdateAllowed = true;
    while (at < block.length) {
      const first = block[at]!;
      if ((first & 0xe0) === 0x20) {
        if (!sizeUpdateAllowed) throw new HpackError('dynamic table size update after the first header');
        const size = readInteger(block, at, 5);
        if (size.value > this.tableBytesMax) throw new HpackError(`dynamic table size ${size.value} over ${this.tableBytesMax}`);
        this.maxBytes = size.value;
        this.evict();
        at = size.end;
        continue;
      }
      sizeUpdateAllowed = false;
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
      out.push(name, value);
      listBytes += name.length + value.length + entryOverheadBytes;
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
