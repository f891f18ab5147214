import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FrameType, FrameWriter, frameHeaderBytes } from '../../src/http2/frames.js';

/** Splits concatenated frames back into (type, streamId, payload) triples. */
function parseFrames(bytes: Buffer): Array<{ type: number; streamId: number; payload: Buffer }> {
  const frames = [];
  for (let at = 0; at < bytes.length;) {
    const length = bytes.readUIntBE(at, 3);
    frames.push({
      type: bytes[at + 3]!,
      streamId: bytes.readUInt32BE(at + 5),
      payload: bytes.subarray(at + frameHeaderBytes, at + frameHeaderBytes + length),
    });
    at += frameHeaderBytes + length;
  }
  return frames;
}

describe('FrameWriter', () => {
  test('frames written across many slabs, small and large, come out whole and in order', () => {
    const writer = new FrameWriter();
    const expected: Buffer[] = [];
    const taken: Buffer[] = [];
    for (let i = 0; i < 400; i++) {
      // Sizes from empty to well past a slab, so some payloads are appended rather than copied.
      const payload = Buffer.alloc((i * 997) % 70_000, i % 251);
      expected.push(payload);
      if (i % 3 === 0) writer.frame(FrameType.data, 0, 2 * i + 1, payload);
      else {
        writer.header(payload.length, FrameType.data, 0, 2 * i + 1);
        writer.append(payload);
      }
      // Take at uneven points; taken bytes must never be written over afterwards.
      if (i % 7 === 0) taken.push(...writer.take());
    }
    taken.push(...writer.take());
    assert.equal(writer.bytes, 0);
    const frames = parseFrames(Buffer.concat(taken));
    assert.equal(frames.length, expected.length);
    frames.forEach((frame, i) => {
      assert.equal(frame.streamId, 2 * i + 1);
      assert.ok(frame.payload.equals(expected[i]!), `frame ${i} payload`);
    });
  });

  test('bytes counts what is written and not yet taken', () => {
    const writer = new FrameWriter();
    writer.frame(FrameType.ping, 0, 0, Buffer.alloc(8));
    assert.equal(writer.bytes, frameHeaderBytes + 8);
    assert.equal(Buffer.concat(writer.take()).length, frameHeaderBytes + 8);
    assert.equal(writer.bytes, 0);
    assert.deepEqual(writer.take(), []);
  });
});
