import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Packr } from 'msgpackr';
import {
  ClusterIdMismatchError,
  decodeFrame,
  decodeFrameFor,
  encodeFrame,
  FrameTooLargeError,
  frameHeaderBytes,
  MalformedFrameError,
} from '../../src/raft/message-codec.js';
import { EntryType, type Message, MessageType } from '../../src/raft/types.js';
import { appendMessage, clusterId, heartbeat, snapshotMessage } from './helpers.js';

const bigId = 0xfedcba9876543210n; // above 2^63: written as msgpack uint64
const header = { clusterId, senderId: bigId };
const packr = new Packr({ useRecords: false, int64AsType: 'bigint' });

/** A frame whose body is `body` packed as is, followed by `dataBytes` zero bytes, with a consistent header. */
function frameWithBody(body: unknown, messageCount: number, dataBytes = 0): Uint8Array {
  const packed = packr.pack(body);
  const frame = encodeFrame(header, []);
  const result = new Uint8Array(frameHeaderBytes + packed.length + dataBytes);
  result.set(frame.subarray(0, frameHeaderBytes));
  const view = new DataView(result.buffer);
  view.setUint32(24, messageCount);
  view.setUint32(28, packed.length);
  view.setUint32(32, dataBytes);
  result.set(packed, frameHeaderBytes);
  return result;
}

/** The tuple encodeFrame writes for a heartbeat, to corrupt one field at a time. */
function heartbeatTuple(): unknown[] {
  return [MessageType.heartbeat, 1n, bigId, 3, 0, 0, 7, false, 0, [], null, null];
}

test('a batch of appends, heartbeats and a snapshot round-trips exactly', () => {
  const messages: Message[] = [
    appendMessage(bigId, 2n, 10, 3, 100),
    heartbeat(bigId, 2n),
    { ...heartbeat(bigId, 2n), type: MessageType.readIndex, context: new Uint8Array([1, 2, 3]) },
    { ...heartbeat(bigId, 2n), type: MessageType.appResp, reject: true, rejectHint: 41, index: 40 },
    snapshotMessage(bigId, 2n, 5000),
  ];
  messages[0]!.entries.push({ term: 3, index: 14, type: EntryType.confChange, data: new Uint8Array(0) });
  const decoded = decodeFrame(encodeFrame(header, messages));
  assert.equal(decoded.clusterId, clusterId);
  assert.equal(decoded.senderId, bigId);
  assert.deepStrictEqual(decoded.messages, messages);
});

test('member IDs keep all 64 bits, including the largest uint64', () => {
  const max = 0xffffffffffffffffn;
  const message = { ...heartbeat(max, 1n) };
  const decoded = decodeFrame(encodeFrame({ clusterId: max, senderId: max }, [message]));
  assert.equal(decoded.messages[0]!.from, max);
  assert.equal(decoded.messages[0]!.to, 1n);
  assert.equal(decoded.clusterId, max);
});

test('an empty batch round-trips as an empty frame body', () => {
  const decoded = decodeFrame(encodeFrame(header, []));
  assert.deepStrictEqual(decoded.messages, []);
});

test('decoded bytes are plain Uint8Array views into the frame', () => {
  const frame = encodeFrame(header, [appendMessage(bigId, 2n, 1, 1, 32)]);
  const data = decodeFrame(frame).messages[0]!.entries[0]!.data;
  assert.equal(Object.getPrototypeOf(data), Uint8Array.prototype);
  assert.equal(data.buffer, frame.buffer);
});

test('encoding refuses messages that are local to a member', () => {
  assert.throws(
    () => encodeFrame(header, [{ ...heartbeat(bigId, 2n), type: MessageType.hup }]),
    /local message type 0/,
  );
});

test('a truncated frame, a wrong magic, version or length is refused', () => {
  const frame = encodeFrame(header, [heartbeat(bigId, 1n)]);
  assert.throws(() => decodeFrame(frame.subarray(0, 10)), MalformedFrameError);
  assert.throws(() => decodeFrame(frame.subarray(0, frame.length - 1)), /header says \d+ body and 0 data bytes/);
  const badMagic = frame.slice();
  badMagic[0] = 0;
  assert.throws(() => decodeFrame(badMagic), /magic/);
  const badVersion = frame.slice();
  badVersion[4] = 9;
  assert.throws(() => decodeFrame(badVersion), /version 9/);
  const badCount = frame.slice();
  new DataView(badCount.buffer).setUint32(24, 2);
  assert.throws(() => decodeFrame(badCount), /header says 2 messages, body holds 1/);
});

test('a body that is not msgpack, or not an array of messages, is refused', () => {
  const garbage = encodeFrame(header, [heartbeat(bigId, 1n)]);
  garbage.fill(0xc1, frameHeaderBytes); // 0xc1 is never valid msgpack
  assert.throws(() => decodeFrame(garbage), /not valid msgpack/);
  assert.throws(() => decodeFrame(frameWithBody({ messages: [] }, 0)), /expected an array of messages/);
  assert.throws(
    () => decodeFrame(frameWithBody([[1, 2, 3]], 1)),
    /message 0 is an array of 3, expected an array of 12 fields/,
  );
});

test('every malformed field is named in the error', () => {
  const cases: [number, unknown, RegExp][] = [
    [0, 99, /message 0 type 99 is not a Raft message type/],
    [0, MessageType.unreachable, /local to a member/],
    [1, 0n, /message 0 to is bigint 0, expected a non-zero uint64/],
    [2, 5, /message 0 from is number 5/],
    [2, -3n, /message 0 from is bigint -3/],
    [3, -1, /message 0 term is number -1, expected a non-negative safe integer/],
    [4, 1.5, /message 0 logTerm is number 1.5/],
    [5, 2 ** 60, /message 0 index/],
    [6, '7', /message 0 commit is string/],
    [7, 0, /message 0 reject is number 0, expected a boolean/],
    [9, null, /message 0 entries is null, expected an array/],
    [9, [[1, 2, 7, new Uint8Array(1)]], /message 0 entry 0 type 7 is not an entry type/],
    [9, [[1, 2, 0, 'text']], /message 0 entry 0 data length is string, expected a non-negative safe integer/],
    [
      9,
      [
        [1, 2, 0, 4],
        [1, 3, 0, 5],
      ],
      /message 0 entry 1 data needs 5 bytes, the data section has 4 left/,
    ],
    [10, [0, 1, 1, [0n], [], [], [], false], /message 0 snapshot voters\[0\] is bigint 0/],
    [10, [0, 1, 1, [], [], [], []], /message 0 snapshot is an array of 7/],
    [11, 42, /message 0 context needs 42 bytes, the data section has 8 left/],
  ];
  for (const [field, value, expected] of cases) {
    const tuple = heartbeatTuple();
    tuple[field] = value;
    assert.throws(
      () => decodeFrame(frameWithBody([tuple], 1, 8)),
      (error: Error) => {
        assert.ok(error instanceof MalformedFrameError, `field ${field}: ${error.message}`);
        assert.match(error.message, expected);
        return true;
      },
    );
  }
  assert.equal(decodeFrame(frameWithBody([heartbeatTuple()], 1)).messages.length, 1);
  assert.throws(() => decodeFrame(frameWithBody([heartbeatTuple()], 1, 3)), /3 data bytes are not used by any message/);
});

test('a frame over the size bound is refused before it is decoded', () => {
  const frame = encodeFrame(header, [appendMessage(bigId, 1n, 1, 4, 1024)]);
  assert.throws(() => decodeFrame(frame, 1024), FrameTooLargeError);
});

test("a frame from another cluster is refused with etcd's cluster ID mismatch", () => {
  const frame = encodeFrame({ clusterId: 0x1234n, senderId: bigId }, [heartbeat(bigId, 1n)]);
  assert.throws(
    () => decodeFrameFor(frame, { clusterId, localId: 1n }),
    (error: Error) => {
      assert.ok(error instanceof ClusterIdMismatchError);
      assert.match(error.message, /request cluster ID mismatch \(got 1234 want cdf818194e3a8c32\)/);
      return true;
    },
  );
});

test('messages not addressed to the receiver or not from the sender are refused', () => {
  const frame = encodeFrame(header, [heartbeat(bigId, 1n), heartbeat(bigId, 2n)]);
  assert.throws(() => decodeFrameFor(frame, { clusterId, localId: 1n }), /message from fedcba9876543210 to 2/);
  const spoofed = encodeFrame(header, [heartbeat(5n, 1n)]);
  assert.throws(() => decodeFrameFor(spoofed, { clusterId, localId: 1n }), /message from 5 to 1/);
  assert.throws(
    () => decodeFrameFor(encodeFrame(header, []), { clusterId, localId: 1n, senderId: 9n }),
    /sender fedcba9876543210 on the connection of member 9/,
  );
  assert.equal(
    decodeFrameFor(encodeFrame(header, [heartbeat(bigId, 1n)]), { clusterId, localId: 1n, senderId: bigId }).messages
      .length,
    1,
  );
});
