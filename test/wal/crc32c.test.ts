import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c, crc32cUpdate } from '../../src/lib/crc32c.js';

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

test('crc32c matches the standard check value for "123456789"', () => {
  assert.equal(crc32c(ascii('123456789')), 0xe3069283);
});

test('crc32c matches the RFC 3720 test vectors', () => {
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

test('continuing a crc over split input equals the crc of the whole', () => {
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31 + 7) & 0xff);
  const whole = crc32c(bytes);
  for (const split of [0, 1, 7, 8, 9, 500, 999, 1000]) {
    assert.equal(crc32cUpdate(crc32cUpdate(0, bytes, 0, split), bytes, split), whole, `split at ${split}`);
  }
});

test('the slicing-by-8 path agrees with byte-at-a-time on every length and alignment', () => {
  const bytes = Uint8Array.from({ length: 64 }, (_, i) => (i * 97 + 13) & 0xff);
  for (let start = 0; start < 8; start++) {
    for (let end = start; end <= bytes.length; end++) {
      let byteAtATime = 0;
      for (let i = start; i < end; i++) byteAtATime = crc32cUpdate(byteAtATime, bytes, i, i + 1);
      assert.equal(crc32cUpdate(0, bytes, start, end), byteAtATime);
    }
  }
});
