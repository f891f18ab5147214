import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeKeyValue, isTombstoneRecord, readIndexFields, type IndexFields } from '../../src/api/key-value-codec.js';
import { keyToString, stringToKey } from '../../src/lib/bytes.js';

/** Every byte value once, in a buffer that starts at an offset, as keys decoded from a request do. */
function everyByteAtAnOffset(): Uint8Array {
  const backing = new Uint8Array(256 + 7);
  for (let value = 0; value < 256; value++) backing[7 + value] = value;
  return backing.subarray(7);
}

describe('mvcc key codec', () => {
  it('tells a tombstone record from a live one by the key length alone, as readIndexFields does', () => {
    const fields: IndexFields = { key: '', createRevision: 0, version: 0, lease: 0n, tombstone: false };
    for (const keyBytes of [1, 127, 128, 300, 20_000]) {
      const key = new Uint8Array(keyBytes).fill(0x61);
      const live = { key, createRevision: 5, modRevision: 6, version: 2, value: new Uint8Array(0), lease: 0n };
      const tombstone = { ...live, createRevision: 0, modRevision: 0, version: 0 };
      for (const record of [encodeKeyValue(live), encodeKeyValue(tombstone)]) {
        readIndexFields(record, record.length, fields);
        assert.equal(isTombstoneRecord(record), fields.tombstone, `key of ${keyBytes} bytes`);
      }
      assert.equal(isTombstoneRecord(encodeKeyValue(tombstone)), true);
    }
  });

  it('turns each key byte into the code unit of the same value, reading a view from its own offset', () => {
    const key = everyByteAtAnOffset();
    const text = keyToString(key);
    assert.equal(text.length, 256);
    for (let value = 0; value < 256; value++) assert.equal(text.charCodeAt(value), value);
    assert.deepEqual(stringToKey(text), new Uint8Array(key));
    assert.equal(keyToString(new Uint8Array(0)), '');
  });

  it('orders keys as their bytes, including bytes above 0x7f and long keys', () => {
    const keys = [
      [0x61, 0xff],
      [0x61, 0x80, 0x01],
      [0x61],
      [0x7f],
      [0x80],
      [...new Array<number>(300).fill(0x61), 0x00],
    ].map((bytes) => new Uint8Array(bytes));
    const byBytes = [...keys].sort((a, b) => Buffer.compare(a, b)).map(keyToString);
    const byText = keys.map(keyToString).sort();
    assert.deepEqual(byText, byBytes);
  });

  it("reads an index record's key as the same string keyToString makes", () => {
    const key = everyByteAtAnOffset();
    const record = encodeKeyValue({
      key,
      createRevision: 5,
      modRevision: 9,
      version: 3,
      value: new Uint8Array([1, 2, 3]),
      lease: 7n,
    });
    // The record sits inside a larger buffer, as in LMDB's shared read buffer.
    const shared = new Uint8Array(record.length + 16);
    shared.set(record);
    const fields: IndexFields = { key: '', createRevision: 0, version: 0, lease: 0n, tombstone: true };
    readIndexFields(shared, record.length, fields);
    assert.deepEqual(fields, { key: keyToString(key), createRevision: 5, version: 3, lease: 7n, tombstone: false });
  });
});
