/**
 * KeyValue as etcd's mvccpb.KeyValue protobuf: what etcd stores in its backend, what its HashKV
 * checksums and what every KV response carries. The mvcc store keeps its records in this format.
 */

import type { KeyValue } from './types.js';
import { assert } from '../lib/assert.js';
import { copyBytes, latin1String } from '../lib/bytes.js';
import { Writer } from '../lib/bytes-writer.js';
import { varintBytesMax } from '../lib/protobuf.js';

// Protobuf wire tags of mvccpb.KeyValue: (field number << 3) | wire type.
const tagKey = 0x0a;
const tagCreateRevision = 0x10;
const tagModRevision = 0x18;
const tagVersion = 0x20;
const tagValue = 0x2a;
const tagLease = 0x30;

/** Encodes a KeyValue exactly as gogoproto marshals mvccpb.KeyValue: fields in order, zero values omitted. */
export function encodeKeyValue(kv: KeyValue): Uint8Array {
  const writer = new Writer(2 + kv.key.length + kv.value.length + 6 * varintBytesMax);
  if (kv.key.length > 0) {
    writer.byte(tagKey);
    writer.varint(kv.key.length);
    writer.raw(kv.key);
  }
  writeNumberField(writer, tagCreateRevision, kv.createRevision);
  writeNumberField(writer, tagModRevision, kv.modRevision);
  writeNumberField(writer, tagVersion, kv.version);
  if (kv.value.length > 0) {
    writer.byte(tagValue);
    writer.varint(kv.value.length);
    writer.raw(kv.value);
  }
  if (kv.lease !== 0n) {
    writer.byte(tagLease);
    writer.varint64(kv.lease);
  }
  return writer.done();
}

function writeNumberField(writer: Writer, tag: number, value: number): void {
  if (value === 0) return;
  assert(
    Number.isSafeInteger(value) && value > 0,
    () => `KeyValue number field must be a positive safe integer, saw ${value}`,
  );
  writer.byte(tag);
  writer.varint(value);
}

/** Reads mvccpb.KeyValue fields from `bytes[0, end)`; reset() points it at another record. */
class Reader {
  offset = 0;

  constructor(
    private bytes: Uint8Array,
    private end: number,
    private readonly share: boolean,
  ) {}

  reset(bytes: Uint8Array, end: number): void {
    this.bytes = bytes;
    this.end = end;
    this.offset = 0;
  }

  get done(): boolean {
    return this.offset >= this.end;
  }

  byte(): number {
    assert(this.offset < this.end, 'KeyValue record ends inside a field');
    return this.bytes[this.offset++]!;
  }

  varint64(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asIntN(64, result);
    }
    throw new Error('KeyValue varint longer than 10 bytes');
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < varintBytesMax; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 0x80;
    }
    throw new Error('KeyValue varint longer than 10 bytes');
  }

  /** Steps over a length-delimited field and returns where its bytes start; they end at `offset`. */
  skipBytesField(): number {
    const length = this.varint();
    assert(this.offset + length <= this.end, 'KeyValue bytes field runs past the record');
    const start = this.offset;
    this.offset += length;
    return start;
  }

  bytesField(): Uint8Array {
    const start = this.skipBytesField();
    if (this.share) return new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + start, this.offset - start);
    return copyBytes(this.bytes.subarray(start, this.offset));
  }

  /** A bytes field as a latin1 string (keyToString), without an array for it. */
  stringField(): string {
    const start = this.skipBytesField();
    return latin1String(this.bytes, start, this.offset);
  }
}

const emptyBytes = new Uint8Array(0);

/**
 * Decodes an mvccpb.KeyValue. The returned arrays are copies unless `share` is set, for callers
 * that own `bytes` outright and never reuse it; then they are plain Uint8Array views into it.
 */
export function decodeKeyValue(bytes: Uint8Array, share = false): KeyValue {
  const kv: KeyValue = { key: emptyBytes, createRevision: 0, modRevision: 0, version: 0, value: emptyBytes, lease: 0n };
  const reader = new Reader(bytes, bytes.length, share);
  while (!reader.done) {
    const tag = reader.byte();
    if (tag === tagKey) kv.key = reader.bytesField();
    else if (tag === tagCreateRevision) kv.createRevision = reader.varint();
    else if (tag === tagModRevision) kv.modRevision = reader.varint();
    else if (tag === tagVersion) kv.version = reader.varint();
    else if (tag === tagValue) kv.value = reader.bytesField();
    else if (tag === tagLease) kv.lease = reader.varint64();
    else throw new Error(`KeyValue record has unknown tag 0x${tag.toString(16)}`);
  }
  return kv;
}

/** The fields of a stored KeyValue that rebuilding the index needs; `key` as a latin1 string. */
export interface IndexFields {
  key: string;
  createRevision: number;
  version: number;
  lease: bigint;
  tombstone: boolean;
}

/** One reader for every record readIndexFields reads, so reading allocates nothing. */
const indexReader = new Reader(emptyBytes, 0, true);

/**
 * Reads the index fields of the mvccpb.KeyValue in `bytes[0, end)` into `into`, without copying
 * the record or its value: LMDB hands a restore its shared read buffer, valid until the next read.
 * A create revision of 0 marks a tombstone (only the key is stored), as decodeKeyValue's callers read it.
 */
export function readIndexFields(bytes: Uint8Array, end: number, into: IndexFields): void {
  into.key = '';
  into.createRevision = 0;
  into.version = 0;
  into.lease = 0n;
  const reader = indexReader;
  reader.reset(bytes, end);
  while (!reader.done) {
    const tag = reader.byte();
    if (tag === tagKey) into.key = reader.stringField();
    else if (tag === tagCreateRevision) into.createRevision = reader.varint();
    else if (tag === tagModRevision) reader.varint();
    else if (tag === tagVersion) into.version = reader.varint();
    else if (tag === tagValue) reader.skipBytesField();
    else if (tag === tagLease) into.lease = reader.varint64();
    else throw new Error(`KeyValue record has unknown tag 0x${tag.toString(16)}`);
  }
  into.tombstone = into.createRevision === 0;
}

/**
 * Checks that `bytes` is a stored mvccpb.KeyValue as readIndexFields reads one, throwing what it
 * throws, and says whether it is a tombstone (create revision 0); it decodes no field it can step
 * over, so checking a restore's records allocates nothing.
 */
export function checkKeyValueRecord(bytes: Uint8Array): boolean {
  let createRevision = 0;
  const reader = indexReader;
  reader.reset(bytes, bytes.length);
  while (!reader.done) {
    const tag = reader.byte();
    if (tag === tagKey || tag === tagValue) reader.skipBytesField();
    else if (tag === tagCreateRevision) createRevision = reader.varint();
    else if (tag === tagModRevision || tag === tagVersion || tag === tagLease) reader.varint();
    else throw new Error(`KeyValue record has unknown tag 0x${tag.toString(16)}`);
  }
  return createRevision === 0;
}

/**
 * Whether the stored mvccpb.KeyValue in `bytes` is a tombstone: a record holding its key and no
 * other field (create revision 0), as readIndexFields finds, read from the key's length alone.
 */
export function isTombstoneRecord(bytes: Uint8Array): boolean {
  return isTombstoneRecordAt(bytes, 0, bytes.length);
}

/** isTombstoneRecord of the `length` bytes of `bytes` from `start`. */
export function isTombstoneRecordAt(bytes: Uint8Array, start: number, length: number): boolean {
  if (length === 0 || bytes[start] !== tagKey) return false;
  const end = start + length;
  let keyLength = 0;
  let at = start + 1;
  for (let shift = 0; at < end && shift < 35; shift += 7) {
    const byte = bytes[at++]!;
    keyLength += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return at + keyLength === end;
  }
  throw new Error('KeyValue record: the key length is cut short');
}
