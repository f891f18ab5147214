/**
 * The peer wire format: one frame carries a batch of Raft messages from one member to another.
 *
 *   offset 0   u32 BE   magic 0x74735246 ("tsRF"), so a stray client is told apart from a peer
 *   offset 4   u8       format version (1)
 *   offset 5   u8       frame kind (1: message batch)
 *   offset 6   u16      reserved, zero
 *   offset 8   u64 BE   cluster ID of the sender: a member of another cluster is refused
 *   offset 16  u64 BE   member ID of the sender
 *   offset 24  u32 BE   number of messages in the body
 *   offset 28  u32 BE   body length in bytes
 *   offset 32  u32 BE   data length in bytes (the frame is exactly header, body and data)
 *   offset 36  u32      reserved, zero
 *   offset 40  body     msgpack array of message tuples (see encodeMessage)
 *   then       data     every byte field (entry data, snapshot data, context) back to back, in the
 *                       order the body mentions them; the body holds only their lengths
 *
 * Tuples rather than maps keep frames small and decoding fast, and keeping byte fields out of the
 * msgpack body makes encoding about three times faster (msgpackr's per-value byte handling
 * dominated). Every decoded field is checked, so a malformed frame throws MalformedFrameError here
 * and never reaches RawNode.step. Byte fields of decoded messages are views into the frame, not
 * copies: a receiver must not transfer or mutate them.
 */
import { Packr } from 'msgpackr';
import { assert } from '../lib/assert.js';
import { peerFrameBytesMax } from '../lib/limits.js';
import { isLocalMessage } from './raft.js';
import {
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  type Snapshot,
} from './types.js';

export const frameMagic = 0x74735246;
export const frameVersion = 1;
export const frameKindMessages = 1;
export const frameHeaderBytes = 40;

/** Who sent a frame and for which cluster; checked by the receiver before any message is used. */
export interface FrameHeader {
  clusterId: bigint;
  senderId: NodeId;
}

export interface DecodedFrame extends FrameHeader {
  messages: Message[];
}

/** The bytes are not a well-formed frame: bad header, bad msgpack, or a field of the wrong shape. */
export class MalformedFrameError extends Error {
  constructor(detail: string) {
    super(`malformed peer frame: ${detail}`);
    this.name = 'MalformedFrameError';
  }
}

/** The frame is larger than the bound the receiver accepts. */
export class FrameTooLargeError extends Error {
  constructor(
    readonly frameBytes: number,
    readonly limitBytes: number,
  ) {
    super(`peer frame of ${frameBytes} bytes exceeds the limit of ${limitBytes} bytes`);
    this.name = 'FrameTooLargeError';
  }
}

/** The sender belongs to another cluster (etcd: "request cluster ID mismatch"). */
export class ClusterIdMismatchError extends Error {
  constructor(
    readonly expected: bigint,
    readonly seen: bigint,
  ) {
    super(`request cluster ID mismatch (got ${seen.toString(16)} want ${expected.toString(16)})`);
    this.name = 'ClusterIdMismatchError';
  }
}

const messageTypeMax = MessageType.preVoteResp;
const entryTypeMax = EntryType.confChangeV2;
const uint64Max = (1n << 64n) - 1n;

// int64AsType makes every 64-bit integer a bigint, which is how IDs are written.
const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true });

/** Byte fields gathered while the body is built; the body records only their lengths. */
class ByteSink {
  readonly parts: Uint8Array[] = [];
  totalBytes = 0;

  add(bytes: Uint8Array): number {
    this.parts.push(bytes);
    this.totalBytes += bytes.length;
    return bytes.length;
  }
}

/** Hands out views of the data section in order; every length is checked against what is left. */
class ByteSource {
  constructor(
    private readonly frame: Uint8Array,
    private offset: number,
    private readonly end: number,
  ) {}

  take(length: unknown, where: string): Uint8Array {
    const bytes = integer(length, `${where} length`);
    if (bytes > this.end - this.offset) {
      throw new MalformedFrameError(
        `${where} needs ${bytes} bytes, the data section has ${this.end - this.offset} left`,
      );
    }
    const view = new Uint8Array(this.frame.buffer, this.frame.byteOffset + this.offset, bytes);
    this.offset += bytes;
    return view;
  }

  finish(): void {
    if (this.offset !== this.end)
      throw new MalformedFrameError(`${this.end - this.offset} data bytes are not used by any message`);
  }
}

/** Encodes a batch of messages into one frame that owns its whole ArrayBuffer (so it can be transferred). */
export function encodeFrame(header: FrameHeader, messages: readonly Message[]): Uint8Array<ArrayBuffer> {
  assertId(header.clusterId, 'cluster ID');
  assertId(header.senderId, 'sender ID');
  const sink = new ByteSink();
  const body = packr.pack(messages.map((message) => encodeMessage(message, sink)));
  const frame = new Uint8Array(frameHeaderBytes + body.length + sink.totalBytes);
  const view = new DataView(frame.buffer);
  view.setUint32(0, frameMagic);
  frame[4] = frameVersion;
  frame[5] = frameKindMessages;
  view.setBigUint64(8, header.clusterId);
  view.setBigUint64(16, header.senderId);
  view.setUint32(24, messages.length);
  view.setUint32(28, body.length);
  view.setUint32(32, sink.totalBytes);
  frame.set(body, frameHeaderBytes);
  let offset = frameHeaderBytes + body.length;
  for (const part of sink.parts) {
    frame.set(part, offset);
    offset += part.length;
  }
  return frame;
}

interface ParsedHeader extends FrameHeader {
  messageCount: number;
  bodyBytes: number;
}

/** Reads only the header, so a receiver can refuse a foreign cluster before decoding the body. */
export function decodeFrameHeader(frame: Uint8Array, frameBytesMax = peerFrameBytesMax): ParsedHeader {
  if (frame.length > frameBytesMax) throw new FrameTooLargeError(frame.length, frameBytesMax);
  if (frame.length < frameHeaderBytes)
    throw new MalformedFrameError(`${frame.length} bytes is shorter than the ${frameHeaderBytes}-byte header`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const magic = view.getUint32(0);
  if (magic !== frameMagic)
    throw new MalformedFrameError(`magic 0x${magic.toString(16)}, expected 0x${frameMagic.toString(16)}`);
  if (frame[4] !== frameVersion) throw new MalformedFrameError(`version ${frame[4]}, expected ${frameVersion}`);
  if (frame[5] !== frameKindMessages)
    throw new MalformedFrameError(`frame kind ${frame[5]}, expected ${frameKindMessages}`);
  const bodyBytes = view.getUint32(28);
  const dataBytes = view.getUint32(32);
  if (frameHeaderBytes + bodyBytes + dataBytes !== frame.length) {
    throw new MalformedFrameError(
      `header says ${bodyBytes} body and ${dataBytes} data bytes, frame holds ${frame.length - frameHeaderBytes}`,
    );
  }
  return {
    clusterId: view.getBigUint64(8),
    senderId: view.getBigUint64(16),
    messageCount: view.getUint32(24),
    bodyBytes,
  };
}

/** Decodes and checks a whole frame; throws MalformedFrameError or FrameTooLargeError. */
export function decodeFrame(frame: Uint8Array, frameBytesMax = peerFrameBytesMax): DecodedFrame {
  const header = decodeFrameHeader(frame, frameBytesMax);
  const bodyEnd = frameHeaderBytes + header.bodyBytes;
  let body: unknown;
  try {
    body = packr.unpack(frame.subarray(frameHeaderBytes, bodyEnd));
  } catch (error) {
    // msgpackr may quote the whole decoded value in its message; keep the error short.
    throw new MalformedFrameError(`body is not valid msgpack: ${(error as Error).message.slice(0, 200)}`);
  }
  if (!Array.isArray(body)) throw new MalformedFrameError(`body is ${describe(body)}, expected an array of messages`);
  if (body.length !== header.messageCount) {
    throw new MalformedFrameError(`header says ${header.messageCount} messages, body holds ${body.length}`);
  }
  const data = new ByteSource(frame, bodyEnd, frame.length);
  const messages = body.map((tuple, position) => decodeMessage(tuple, data, `message ${position}`));
  data.finish();
  return { clusterId: header.clusterId, senderId: header.senderId, messages };
}

/**
 * Decodes a frame addressed to `localId` in `clusterId`, from `senderId` when given: a foreign
 * cluster throws ClusterIdMismatchError, and a message not from the sender or not to us is malformed.
 */
export function decodeFrameFor(
  frame: Uint8Array,
  expected: { clusterId: bigint; localId: NodeId; senderId?: NodeId },
  frameBytesMax = peerFrameBytesMax,
): DecodedFrame {
  const header = decodeFrameHeader(frame, frameBytesMax);
  if (header.clusterId !== expected.clusterId) throw new ClusterIdMismatchError(expected.clusterId, header.clusterId);
  if (expected.senderId !== undefined && header.senderId !== expected.senderId) {
    throw new MalformedFrameError(
      `sender ${header.senderId.toString(16)} on the connection of member ${expected.senderId.toString(16)}`,
    );
  }
  const decoded = decodeFrame(frame, frameBytesMax);
  for (const message of decoded.messages) {
    if (message.to !== expected.localId || message.from !== header.senderId) {
      throw new MalformedFrameError(
        `message from ${message.from.toString(16)} to ${message.to.toString(16)} in a frame from ` +
          `${header.senderId.toString(16)} to ${expected.localId.toString(16)}`,
      );
    }
  }
  return decoded;
}

function assertId(id: bigint, what: string): void {
  assert(
    typeof id === 'bigint' && id >= 0n && id <= uint64Max,
    () => `${what} must be a uint64 bigint, got ${String(id)}`,
  );
}

// A message as [type, to, from, term, logTerm, index, commit, reject, rejectHint, entries, snapshot,
// contextBytes], an entry as [term, index, type, dataBytes]; null stands for an absent snapshot or context.
function encodeMessage(message: Message, sink: ByteSink): unknown[] {
  assert(!isLocalMessage(message.type), () => `local message type ${message.type} cannot be sent to a peer`);
  assertId(message.to, 'message to');
  assertId(message.from, 'message from');
  const entries = message.entries.map((entry) => [entry.term, entry.index, entry.type, sink.add(entry.data)]);
  const snapshot = message.snapshot === undefined ? null : encodeSnapshot(message.snapshot, sink);
  const context = message.context === undefined ? null : sink.add(message.context);
  return [
    message.type,
    message.to,
    message.from,
    message.term,
    message.logTerm,
    message.index,
    message.commit,
    message.reject,
    message.rejectHint,
    entries,
    snapshot,
    context,
  ];
}

function encodeSnapshot(snapshot: Snapshot, sink: ByteSink): unknown[] {
  const { confState, index, term } = snapshot.metadata;
  for (const id of [
    ...confState.voters,
    ...confState.learners,
    ...confState.votersOutgoing,
    ...confState.learnersNext,
  ]) {
    assertId(id, 'conf state member');
  }
  return [
    sink.add(snapshot.data),
    index,
    term,
    confState.voters,
    confState.learners,
    confState.votersOutgoing,
    confState.learnersNext,
    confState.autoLeave,
  ];
}

const messageFieldCount = 12;
const entryFieldCount = 4;
const snapshotFieldCount = 8;

function decodeMessage(value: unknown, data: ByteSource, where: string): Message {
  const tuple = tupleOf(value, messageFieldCount, where);
  const type = integer(tuple[0], `${where} type`);
  if (type > messageTypeMax) throw new MalformedFrameError(`${where} type ${type} is not a Raft message type`);
  if (isLocalMessage(type)) throw new MalformedFrameError(`${where} type ${type} is local to a member and never sent`);
  const message: Message = {
    type: type as MessageType,
    to: memberId(tuple[1], `${where} to`),
    from: memberId(tuple[2], `${where} from`),
    term: integer(tuple[3], `${where} term`),
    logTerm: integer(tuple[4], `${where} logTerm`),
    index: integer(tuple[5], `${where} index`),
    entries: [],
    commit: integer(tuple[6], `${where} commit`),
    reject: boolean(tuple[7], `${where} reject`),
    rejectHint: integer(tuple[8], `${where} rejectHint`),
  };
  const entries = arrayOf(tuple[9], `${where} entries`);
  message.entries = entries.map((entry, position) => decodeEntry(entry, data, `${where} entry ${position}`));
  if (tuple[10] !== null) message.snapshot = decodeSnapshot(tuple[10], data, `${where} snapshot`);
  if (tuple[11] !== null) message.context = data.take(tuple[11], `${where} context`);
  return message;
}

function decodeEntry(value: unknown, data: ByteSource, where: string): Entry {
  const tuple = tupleOf(value, entryFieldCount, where);
  const type = integer(tuple[2], `${where} type`);
  if (type > entryTypeMax) throw new MalformedFrameError(`${where} type ${type} is not an entry type`);
  return {
    term: integer(tuple[0], `${where} term`),
    index: integer(tuple[1], `${where} index`),
    type: type as EntryType,
    data: data.take(tuple[3], `${where} data`),
  };
}

function decodeSnapshot(value: unknown, data: ByteSource, where: string): Snapshot {
  const tuple = tupleOf(value, snapshotFieldCount, where);
  const confState: ConfState = {
    voters: memberIds(tuple[3], `${where} voters`),
    learners: memberIds(tuple[4], `${where} learners`),
    votersOutgoing: memberIds(tuple[5], `${where} votersOutgoing`),
    learnersNext: memberIds(tuple[6], `${where} learnersNext`),
    autoLeave: boolean(tuple[7], `${where} autoLeave`),
  };
  return {
    data: data.take(tuple[0], `${where} data`),
    metadata: { confState, index: integer(tuple[1], `${where} index`), term: integer(tuple[2], `${where} term`) },
  };
}

function tupleOf(value: unknown, length: number, where: string): unknown[] {
  if (!Array.isArray(value) || value.length !== length) {
    throw new MalformedFrameError(`${where} is ${describe(value)}, expected an array of ${length} fields`);
  }
  return value;
}

function arrayOf(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new MalformedFrameError(`${where} is ${describe(value)}, expected an array`);
  return value;
}

function integer(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new MalformedFrameError(`${where} is ${describe(value)}, expected a non-negative safe integer`);
  }
  return value;
}

function memberId(value: unknown, where: string): NodeId {
  if (typeof value !== 'bigint' || value <= 0n || value > uint64Max) {
    throw new MalformedFrameError(`${where} is ${describe(value)}, expected a non-zero uint64 member ID`);
  }
  return value;
}

function memberIds(value: unknown, where: string): NodeId[] {
  return arrayOf(value, where).map((id, position) => memberId(id, `${where}[${position}]`));
}

function boolean(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') throw new MalformedFrameError(`${where} is ${describe(value)}, expected a boolean`);
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'bigint') return `bigint ${value}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${value}`;
  return typeof value;
}
