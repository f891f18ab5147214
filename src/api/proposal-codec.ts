/**
 * The bytes of a proposal inside a Raft entry: {origin, id, body}. `origin` is the proposing
 * member, so only that member answers the waiting client when the entry is applied.
 *
 * Puts, txns and deletes, the writes clients make, have binary layouts; everything else is
 * msgpack. A msgpack envelope (a map) never starts with 0xf0, 0xf1 or 0xf2, which mark them:
 *
 *   0xf0 | origin u64 BE | id u64 BE | flags u8 (1 prevKv, 2 ignoreValue, 4 ignoreLease)
 *        | lease i64 BE | key length u32 BE | key | value (the rest)
 *   0xf1 | origin u64 BE | id u64 BE | TxnRequest protobuf (the rest; request-encoder.ts)
 *   0xf2 | origin u64 BE | id u64 BE | DeleteRangeRequest protobuf (the rest)
 *
 * These are the only forms of puts, txns and deletes: a msgpack one is refused, not read (no
 * release ever wrote one).
 *
 * When auth is enabled, a put, txn or delete carries who proposed it and the auth revision its
 * permission check used (etcd's RequestHeader username and auth_revision) in a wrapper around
 * the forms above; with auth disabled no wrapper is written, so the hot path stays as it was:
 *
 *   0xf3 | username length u16 BE | username UTF-8 | auth revision u64 BE | a 0xf0-0xf2 proposal
 *
 * The msgpack envelopes carry the caller as a field.
 *
 * Puts, txns and deletes are carved from shared slabs (logBytes): about 200 bytes of ArrayBuffer
 * bookkeeping less per entry, 20 MB over a log of 100,000. Whoever hands entries on copies their
 * bytes (the WAL client into its arena, the peer codec into a frame), never their buffer. The
 * msgpack ones own their buffer.
 */
import { Packr } from 'msgpackr';
import { logBytes } from '../lib/scratch-bytes.js';
import { decodeDeleteRangeRequest, decodeTxnRequest } from './request-decoder.js';
import { encodeDeleteRangeRequest, encodeTxnRequest } from './request-encoder.js';
import type { PutRequest, Proposal } from './types.js';
import type { AuthInfo } from '../auth/types.js';

export interface Envelope extends Proposal {
  origin: bigint;
  /** Who proposed it, when auth was enabled then (etcd's RequestHeader username and auth revision). */
  caller?: AuthInfo;
}

const packr = new Packr({ useRecords: false, int64AsType: 'bigint' });
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

const putMarker = 0xf0;
const putHeaderBytes = 1 + 8 + 8 + 1 + 8 + 4;
const txnMarker = 0xf1;
const deleteRangeMarker = 0xf2;
const callerMarker = 0xf3;
/** Marker, username length and auth revision around the username. */
const callerHeaderBytes = 1 + 2 + 8;
/** Marker, origin and id before a protobuf request. */
const protobufHeaderBytes = 1 + 8 + 8;
const flagPrevKv = 1;
const flagIgnoreValue = 2;
const flagIgnoreLease = 4;

export function encodeProposal(envelope: Envelope): Uint8Array {
  if (envelope.caller !== undefined && hasBinaryLayout(envelope.body.type)) return encodeWithCaller(envelope);
  if (envelope.body.type === 'put') return encodePut(envelope.origin, envelope.id, envelope.body.put);
  if (envelope.body.type === 'txn')
    return withHeader(txnMarker, envelope, encodeTxnRequest(envelope.body.txn, protobufHeaderBytes));
  if (envelope.body.type === 'deleteRange') {
    return withHeader(
      deleteRangeMarker,
      envelope,
      encodeDeleteRangeRequest(envelope.body.deleteRange, protobufHeaderBytes),
    );
  }
  return new Uint8Array(packr.pack(envelope));
}

/** Decodes entry data written by encodeProposal; byte fields come back as views into `data`. */
export function decodeProposal(data: Uint8Array): Envelope {
  if (data[0] === callerMarker) return decodeWithCaller(data);
  if (data[0] === putMarker) return decodePut(data);
  if (data[0] === txnMarker) return withBody(data, (request) => ({ type: 'txn', txn: decodeTxnRequest(request) }));
  if (data[0] === deleteRangeMarker)
    return withBody(data, (request) => ({ type: 'deleteRange', deleteRange: decodeDeleteRangeRequest(request) }));
  const envelope = unpackEnvelope(data);
  const type = envelope.body.type;
  if (type === 'put' || type === 'txn' || type === 'deleteRange')
    throw new Error(`${type} proposal in msgpack: ${type}s have a binary layout only`);
  return envelope;
}

/** The msgpack envelope of any other proposal; bytes that are not one throw a plain Error saying so. */
function unpackEnvelope(data: Uint8Array): Envelope {
  let value: unknown;
  try {
    value = packr.unpack(data);
  } catch (error) {
    // msgpackr throws RangeErrors too and may quote the decoded value; keep the error plain and short.
    throw new Error(`proposal is not valid msgpack: ${(error as Error).message.slice(0, 200)}`);
  }
  const body = (value as { body?: unknown } | null)?.body;
  if (typeof body !== 'object' || body === null || typeof (body as { type?: unknown }).type !== 'string')
    throw new Error(`proposal of ${data.length} bytes is not an envelope with a typed body`);
  return value as Envelope;
}

const membershipTypeNames = ['memberAttributes', 'clusterVersion'].map((name) => new TextEncoder().encode(name));

/**
 * False when `data` is certainly not a membership proposal (member attributes or the cluster
 * version): a put, or a msgpack envelope whose bytes contain neither type name (msgpack stores
 * strings as plain UTF-8). True may be a false alarm, which costs the caller only a full decode.
 */
export function mayBeMembershipProposal(data: Uint8Array): boolean {
  if (hasOriginHeader(data)) return false;
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return membershipTypeNames.some((name) => bytes.indexOf(name) !== -1);
}

/**
 * The member that proposed `data`, read from the header of a put, txn or delete proposal without
 * decoding the rest; undefined for the other (msgpack) proposals, whose origin takes a decode.
 */
export function proposalOrigin(data: Uint8Array): bigint | undefined {
  if (data[0] === callerMarker) return proposalOrigin(data.subarray(callerPrefixBytes(data)));
  if (!hasOriginHeader(data) || data.length < 9) return undefined;
  return new DataView(data.buffer, data.byteOffset, 9).getBigUint64(1);
}

/** Put, txn and delete proposals start with a marker byte, then origin and id; the rest are msgpack. */
function hasOriginHeader(data: Uint8Array): boolean {
  return data[0] === putMarker || data[0] === txnMarker || data[0] === deleteRangeMarker || data[0] === callerMarker;
}

function hasBinaryLayout(type: Envelope['body']['type']): boolean {
  return type === 'put' || type === 'txn' || type === 'deleteRange';
}

/** The bytes of the caller wrapper before the proposal it wraps. */
function callerPrefixBytes(data: Uint8Array): number {
  if (data.length < callerHeaderBytes) throw new Error(`proposal of ${data.length} bytes is shorter than its header`);
  const nameBytes = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint16(1);
  const prefixBytes = callerHeaderBytes + nameBytes;
  if (prefixBytes > data.length)
    throw new Error(`proposal caller of ${nameBytes} bytes runs past its ${data.length} bytes`);
  return prefixBytes;
}

function encodeWithCaller(envelope: Envelope): Uint8Array {
  const caller = envelope.caller!;
  const inner = encodeProposal({ origin: envelope.origin, id: envelope.id, body: envelope.body });
  const name = textEncoder.encode(caller.username);
  const bytes = new Uint8Array(callerHeaderBytes + name.length + inner.length);
  const view = new DataView(bytes.buffer);
  bytes[0] = callerMarker;
  view.setUint16(1, name.length);
  bytes.set(name, 3);
  view.setBigUint64(3 + name.length, BigInt(caller.revision));
  bytes.set(inner, callerHeaderBytes + name.length);
  return bytes;
}

function decodeWithCaller(data: Uint8Array): Envelope {
  const prefixBytes = callerPrefixBytes(data);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const username = textDecoder.decode(data.subarray(3, prefixBytes - 8));
  const revision = Number(view.getBigUint64(prefixBytes - 8));
  const inner = data.subarray(prefixBytes);
  if (inner[0] === callerMarker) throw new Error('proposal caller wraps another caller');
  return { ...decodeProposal(inner), caller: { username, revision } };
}

function encodePut(origin: bigint, id: number, put: PutRequest): Uint8Array {
  const bytes = logBytes(putHeaderBytes + put.key.length + put.value.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  bytes[0] = putMarker;
  view.setBigUint64(1, origin);
  view.setBigUint64(9, BigInt(id));
  bytes[17] =
    (put.prevKv ? flagPrevKv : 0) | (put.ignoreValue ? flagIgnoreValue : 0) | (put.ignoreLease ? flagIgnoreLease : 0);
  view.setBigInt64(18, put.lease);
  view.setUint32(26, put.key.length);
  bytes.set(put.key, putHeaderBytes);
  bytes.set(put.value, putHeaderBytes + put.key.length);
  return bytes;
}

function decodePut(data: Uint8Array): Envelope {
  if (data.length < putHeaderBytes) throw new Error(`put proposal of ${data.length} bytes is shorter than its header`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const keyBytes = view.getUint32(26);
  const keyEnd = putHeaderBytes + keyBytes;
  if (keyEnd > data.length) throw new Error(`put proposal key of ${keyBytes} bytes runs past its ${data.length} bytes`);
  const flags = data[17] as number;
  const put: PutRequest = {
    key: data.subarray(putHeaderBytes, keyEnd),
    value: data.subarray(keyEnd),
    lease: view.getBigInt64(18),
    prevKv: (flags & flagPrevKv) !== 0,
    ignoreValue: (flags & flagIgnoreValue) !== 0,
    ignoreLease: (flags & flagIgnoreLease) !== 0,
  };
  return { origin: view.getBigUint64(1), id: Number(view.getBigUint64(9)), body: { type: 'put', put } };
}

/** Fills in the marker, origin and id that `bytes` left room for before a protobuf request. */
function withHeader(marker: number, envelope: Envelope, bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  bytes[0] = marker;
  view.setBigUint64(1, envelope.origin);
  view.setBigUint64(9, BigInt(envelope.id));
  return bytes;
}

function withBody(data: Uint8Array, decodeBody: (request: Buffer) => Envelope['body']): Envelope {
  if (data.length < protobufHeaderBytes) throw new Error(`proposal of ${data.length} bytes is shorter than its header`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const body = decodeBody(
    Buffer.from(data.buffer, data.byteOffset + protobufHeaderBytes, data.length - protobufHeaderBytes),
  );
  return { origin: view.getBigUint64(1), id: Number(view.getBigUint64(9)), body };
}
