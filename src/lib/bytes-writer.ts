/** A protobuf wire-format writer over a buffer sized by the caller. */

import { scratchBytes } from './scratch-bytes.js';

/**
 * Writes protobuf wire format into a buffer sized by the caller (an upper bound or exact). The
 * buffer is scratch bytes: what it writes is encoded, stored, hashed or sent, then dropped.
 */
export class Writer {
  private readonly bytes: Uint8Array;
  private offset = 0;

  /** Writes into `size` bytes from `allocate`: scratch bytes (short-lived, see scratch-bytes.ts) unless told otherwise. */
  constructor(size: number, allocate: (size: number) => Uint8Array = scratchBytes) {
    this.bytes = allocate(size);
  }

  byte(value: number): void {
    this.bytes[this.offset++] = value;
  }

  varint(value: number): void {
    while (value >= 0x80) {
      this.byte((value % 0x80) | 0x80);
      value = Math.floor(value / 0x80);
    }
    this.byte(value);
  }

  varint64(value: bigint): void {
    let rest = BigInt.asUintN(64, value);
    while (rest >= 0x80n) {
      this.byte(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    this.byte(Number(rest));
  }

  raw(data: Uint8Array): void {
    this.bytes.set(data, this.offset);
    this.offset += data.length;
  }

  /** A length-delimited field: tag, length, bytes. */
  message(tag: number, body: Uint8Array): void {
    this.byte(tag);
    this.varint(body.length);
    this.raw(body);
  }

  done(): Uint8Array {
    return this.offset === this.bytes.length ? this.bytes : this.bytes.subarray(0, this.offset);
  }
}
