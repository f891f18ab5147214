import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadProtos } from '../../src/api/proto-wire.js';
import { framedSnapshotResponses } from '../../src/api/snapshot-response.js';
import { grpcFramePrefixBytes } from '../../src/http2/frames.js';

interface DecodedResponse {
  remainingBytes: string;
  blob: Buffer;
}

/** Splits gRPC-framed bytes into messages and decodes each with the .proto's SnapshotResponse. */
function decodeFramed(bytes: Uint8Array): DecodedResponse[] {
  const method = loadProtos()['etcdserverpb.Maintenance'] as unknown as Record<
    string,
    { responseDeserialize(bytes: Buffer): DecodedResponse }
  >;
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const messages: DecodedResponse[] = [];
  for (let at = 0; at < buffer.length;) {
    assert.equal(buffer[at], 0, 'a message is not compressed');
    const length = buffer.readUInt32BE(at + 1);
    at += grpcFramePrefixBytes;
    messages.push(method.Snapshot!.responseDeserialize(buffer.subarray(at, at + length)));
    at += length;
  }
  return messages;
}

const blobOf = (length: number) => Uint8Array.from({ length }, (_, index) => (index * 7) % 251);

describe('framed Maintenance.Snapshot responses', () => {
  test('carry the blob in pieces of at most the piece size, each counting down what follows it', () => {
    const blob = blobOf(10_000);
    const framed = framedSnapshotResponses(blob, 5_000, 4_096);
    const decoded = decodeFramed(framed.bytes);
    assert.equal(framed.messages, 3);
    assert.deepEqual(
      decoded.map((message) => [message.remainingBytes, message.blob.length]),
      [
        ['10904', 4_096],
        ['6808', 4_096],
        ['5000', 1_808],
      ],
    );
    assert.deepEqual(Buffer.concat(decoded.map((message) => message.blob)), Buffer.from(blob));
  });

  test('leave out a zero remaining_bytes as etcd does, so the last piece of the file is its blob alone', () => {
    const framed = framedSnapshotResponses(blobOf(3), 0, 32 * 1024);
    assert.deepEqual([...framed.bytes], [0, 0, 0, 0, 5, 0x1a, 3, 0, 7, 14]);
    assert.deepEqual(
      decodeFramed(framed.bytes).map((message) => message.remainingBytes),
      ['0'],
    );
  });

  test('count remaining bytes beyond 32 bits, as a 1 TiB file would', () => {
    const remaining = 2 ** 40 + 3;
    const [message] = decodeFramed(framedSnapshotResponses(blobOf(1), remaining, 32 * 1024).bytes);
    assert.equal(message?.remainingBytes, String(remaining));
  });
});
