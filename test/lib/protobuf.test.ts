import { test } from 'node:test';
import assert from 'node:assert/strict';
import { protoReaderOf, pushVarint64, varintBytes } from '../../src/lib/protobuf.js';

function varint(value: bigint): Uint8Array {
  const out: number[] = [];
  pushVarint64(out, value);
  return Uint8Array.from(out);
}

test('uint64 varints round-trip through pushVarint64 and bigUint64, the top bit included', () => {
  for (const value of [0n, 1n, 127n, 128n, 300n, 2n ** 53n + 1n, 2n ** 63n, 0xfedcba9876543210n, 2n ** 64n - 1n]) {
    const bytes = varint(value);
    const reader = protoReaderOf(bytes);
    assert.equal(reader.bigUint64(), value);
    assert.ok(reader.done, `expected ${value} to take all ${bytes.length} bytes`);
  }
});

test('a negative int64 is ten bytes and reads back signed', () => {
  const bytes = varint(-2n);
  assert.equal(bytes.length, 10);
  assert.equal(protoReaderOf(bytes).bigInt64(), -2n);
  assert.equal(protoReaderOf(bytes).int64(), -2);
  assert.equal(protoReaderOf(bytes).bigUint64(), 2n ** 64n - 2n);
});

test('varintBytes counts what pushVarint64 writes', () => {
  for (const value of [0, 1, 127, 128, 16_383, 16_384, 2 ** 35, Number.MAX_SAFE_INTEGER, -1]) {
    assert.equal(varintBytes(value), varint(BigInt(value)).length, `for ${value}`);
  }
});

test('a cut-short or overlong varint is refused', () => {
  assert.throws(() => protoReaderOf(Uint8Array.from([0x80, 0x80])).bigUint64(), /^Error: unexpected EOF$/);
  assert.throws(() => protoReaderOf(new Uint8Array(11).fill(0x80)).bigUint64(), /varint longer than 10 bytes/);
});
