/**
 * Protobuf wire-format helpers shared by the hand-written codecs (KV requests, raft conf changes,
 * lease records): a reader over one message's bytes, and varint sizes and writes.
 */

/** Protobuf wire types. */
export const wireVarint = 0;
export const wireFixed64 = 1;
export const wireBytes = 2;
export const wireFixed32 = 5;

/** Varints of up to 7 bytes (49 bits) are read as plain numbers; longer ones go through BigInt. */
const fastVarintBytesMax = 7;
/** A field key (field number << 3 | wire type) as it appears on the wire. */
export const fieldKey = (field: number, wireType: number): number => field * 8 + wireType;

/** A varint never needs more than 10 bytes for a 64-bit value. */
export const varintBytesMax = 10;

/** Go's io.ErrUnexpectedEOF: what grpc-go and encoding/json call a message cut short. */
export const unexpectedEofText = 'unexpected EOF';

/** The empty bytes field; shared, never written. */
export const emptyBytes = Buffer.alloc(0);

/** A cursor over one message's bytes, `[offset, end)` of `bytes`. */
export class ProtoReader {
  offset: number;

  constructor(
    private readonly bytes: Buffer,
    offset: number,
    readonly end: number,
  ) {
    this.offset = offset;
  }

  get done(): boolean {
    return this.offset >= this.end;
  }

  private byte(): number {
    // grpc-go names a message cut short "unexpected EOF"; the transport passes it on.
    if (this.offset >= this.end) throw new Error(unexpectedEofText);
    return this.bytes[this.offset++] as number;
  }

  /** A varint as a number: exact below 2^53, int64 semantics (a negative is ten bytes) beyond. */
  int64(): number {
    let result = 0;
    let scale = 1;
    const start = this.offset;
    for (let i = 0; i < fastVarintBytesMax; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 0x80;
    }
    this.offset = start;
    return Number(this.bigInt64());
  }

  /** A varint as an int64 bigint (a negative is ten bytes). */
  bigInt64(): bigint {
    return BigInt.asIntN(64, this.bigUint64());
  }

  /** A varint as a uint64 bigint (etcd's member and node IDs). */
  bigUint64(): bigint {
    let result = 0n;
    for (let i = 0; i < varintBytesMax; i++) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << BigInt(7 * i);
      if (b < 0x80) return BigInt.asUintN(64, result);
    }
    throw new Error('varint longer than 10 bytes');
  }

  /** An enum or int32: the varint's low 32 bits, signed, as protobuf reads them. */
  int32(): number {
    const start = this.offset;
    const value = this.int64();
    if (Number.isSafeInteger(value)) return value | 0;
    this.offset = start;
    return Number(BigInt.asIntN(32, this.bigInt64()));
  }

  bool(): boolean {
    return this.int64() !== 0;
  }

  /** A length-delimited field's extent; its bytes are `[start, this.offset)` afterwards. */
  lengthDelimited(): number {
    const length = this.int64();
    if (length < 0 || length > this.end - this.offset) throw new Error(unexpectedEofText);
    const start = this.offset;
    this.offset += length;
    return start;
  }

  bytesField(): Buffer {
    const start = this.lengthDelimited();
    return start === this.offset ? emptyBytes : this.bytes.subarray(start, this.offset);
  }

  /** A reader over an embedded message; this one moves past it. */
  message(): ProtoReader {
    const start = this.lengthDelimited();
    return new ProtoReader(this.bytes, start, this.offset);
  }

  /** Reads a field key: field number times 8 plus wire type. */
  key(): number {
    const key = this.int64();
    if (key >>> 3 === 0) throw new Error(`proto: illegal tag 0 (wire type ${key & 7})`);
    return key;
  }

  skip(key: number): void {
    switch (key & 7) {
      case wireVarint:
        this.int64();
        return;
      case wireFixed64:
        this.advance(8);
        return;
      case wireBytes:
        this.lengthDelimited();
        return;
      case wireFixed32:
        this.advance(4);
        return;
      default:
        throw new Error(`proto: illegal wireType ${key & 7}`);
    }
  }

  private advance(bytes: number): void {
    if (bytes > this.end - this.offset) throw new Error(unexpectedEofText);
    this.offset += bytes;
  }
}

/** A reader over all of `bytes` (a Buffer view, no copy). */
export function protoReaderOf(bytes: Uint8Array): ProtoReader {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return new ProtoReader(buffer, 0, buffer.length);
}

/** Bytes of `value` as a protobuf varint; a negative int64 takes all ten. */
export function varintBytes(value: number): number {
  if (value < 0) return varintBytesMax;
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    bytes++;
  }
  return bytes;
}

/** Appends `value` as a varint of its 64-bit two's complement bits (a negative takes ten bytes). */
export function pushVarint64(out: number[], value: bigint): void {
  let rest = BigInt.asUintN(64, value);
  while (rest >= 0x80n) {
    out.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  out.push(Number(rest));
}
