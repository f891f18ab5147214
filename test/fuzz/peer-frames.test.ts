import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeFrame, encodeFrame, FrameTooLargeError, MalformedFrameError } from '../../src/raft/message-codec.js';
import { appendMessage, clusterId, heartbeat, snapshotMessage } from '../peer/helpers.js';
import { parseOrRefuse, runFuzz } from './fuzz.js';

const header = { clusterId, senderId: 2n };
/** Frames as a member sends them: empty, heartbeats, appends with entries, a snapshot. */
const corpus: Uint8Array[] = [
  encodeFrame(header, []),
  encodeFrame(header, [heartbeat(2n, 1n)]),
  encodeFrame(header, [appendMessage(2n, 1n, 5, 3, 8), heartbeat(2n, 3n)]),
  encodeFrame(header, [snapshotMessage(2n, 1n, 64)]),
];
/** Frames from a peer smaller than this are decoded in full by the fuzzer (the real bound is 256 MiB). */
const frameBytesMax = 64 * 1024;

test('a peer frame decodes to messages that encode back to the same messages, or throws MalformedFrameError', () => {
  runFuzz('peer-frames', {
    corpus,
    check(input) {
      const frame = parseOrRefuse(() => decodeFrame(input, frameBytesMax), MalformedFrameError, FrameTooLargeError);
      if (frame === undefined) return;
      const again = decodeFrame(encodeFrame(frame, frame.messages), frameBytesMax);
      assert.deepEqual(again.messages, frame.messages);
    },
  });
});
