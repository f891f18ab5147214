import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scratchBytes } from '../../src/lib/scratch-bytes.js';

test('scratch arrays are zeroed, disjoint, 8-byte aligned, and share slabs only when small', () => {
  const arrays = Array.from({ length: 5_000 }, (_, i) => scratchBytes(1 + (i % 40)));
  const spans = new Map<ArrayBufferLike, [number, number][]>();
  for (const bytes of arrays) {
    assert.equal(bytes.constructor, Uint8Array);
    assert.ok(
      bytes.every((b) => b === 0),
      'handed out zeroed',
    );
    assert.equal(bytes.byteOffset % 8, 0);
    const list = spans.get(bytes.buffer) ?? [];
    list.push([bytes.byteOffset, bytes.byteOffset + bytes.length]);
    spans.set(bytes.buffer, list);
    bytes.fill(0xff);
  }
  assert.ok(spans.size > 1 && spans.size < 10, `5,000 small arrays came from ${spans.size} slabs`);
  for (const list of spans.values()) {
    list.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < list.length; i++) assert.ok(list[i - 1]![1] <= list[i]![0], 'no two arrays overlap');
  }
  const large = scratchBytes(100_000);
  assert.equal(large.buffer.byteLength, 100_000, 'a large request gets a buffer of its own');
});
