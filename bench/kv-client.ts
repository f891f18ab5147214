/**
 * A minimal etcd KV client over raw gRPC with hand-encoded protobuf: only PutRequest,
 * RangeRequest and a TxnRequest of puts, and only the response header's revision and the range
 * count decoded. It keeps
 * the load generator's own CPU cost low and independent of any .proto loading.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { TlsFiles } from '../test/support/certificates.js';

const putMethod = '/etcdserverpb.KV/Put';
const rangeMethod = '/etcdserverpb.KV/Range';
const txnMethod = '/etcdserverpb.KV/Txn';
const authenticateMethod = '/etcdserverpb.Auth/Authenticate';
const wireVarint = 0;
const wireLengthDelimited = 2;
/** etcd's default client receive limit is far above anything the bench reads; keep gRPC's cap generous. */
const receiveMessageBytesMax = 64 * 1024 * 1024;

/** What the bench needs from a Put, Range or Txn response. */
export interface KvReply {
  readonly revision: number;
  /** RangeResponse.count; 0 for Put and Txn. */
  readonly count: number;
}

/** One gRPC channel to one endpoint; many concurrent calls may share it. */
export class KvConnection {
  private readonly client: grpc.Client;
  /** Every call carries this token (metadata "token") when the connection was given one. */
  private readonly tokenMetadata: grpc.Metadata | undefined;

  /**
   * `endpoint` is host:port or http(s)://host:port; `token` is an auth token every call carries;
   * with `tls` the connection is TLS and presents its client certificate.
   */
  constructor(endpoint: string, token?: string, tls?: TlsFiles) {
    const target = endpoint.replace(/^https?:\/\//, '');
    const credentials =
      tls === undefined
        ? grpc.credentials.createInsecure()
        : grpc.credentials.createSsl(
            readFileSync(tls.trustedCaFile),
            readFileSync(tls.keyFile),
            readFileSync(tls.certFile),
          );
    // A local subchannel pool gives each connection its own TCP socket, as --conns intends.
    this.client = new grpc.Client(target, credentials, {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': receiveMessageBytesMax,
    });
    if (token !== undefined) {
      this.tokenMetadata = new grpc.Metadata();
      this.tokenMetadata.set('token', token);
    }
  }

  /** etcd's Authenticate: resolves with the token for `name` (AuthenticateResponse.token, field 2). */
  authenticate(name: string, password: string, deadlineMs: number): Promise<string> {
    const request = Buffer.concat([lengthDelimited(1, Buffer.from(name)), lengthDelimited(2, Buffer.from(password))]);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest<Buffer, string>(
        authenticateMethod,
        (message) => message,
        decodeToken,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (error, token) =>
          error !== null || token === undefined ? reject(error ?? new Error('empty reply')) : resolve(token),
      );
    });
  }

  /** Sends one PutRequest. */
  put(key: Buffer, value: Buffer, deadlineMs: number): Promise<KvReply> {
    return this.call(putMethod, encodePutRequest(key, value), deadlineMs);
  }

  /** Sends one single-key RangeRequest; serializable reads skip the read-index round. */
  range(key: Buffer, serializable: boolean, deadlineMs: number): Promise<KvReply> {
    return this.call(rangeMethod, encodeRangeRequest(key, serializable), deadlineMs);
  }

  /** Sends one TxnRequest with no compares whose success branch puts `value` at each key. */
  txnPut(keys: readonly Buffer[], value: Buffer, deadlineMs: number): Promise<KvReply> {
    return this.call(txnMethod, encodeTxnPutRequest(keys, value), deadlineMs);
  }

  close(): void {
    this.client.close();
  }

  private call(method: string, request: Buffer, deadlineMs: number): Promise<KvReply> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest<Buffer, KvReply>(
        method,
        (message) => message,
        decodeReply,
        request,
        this.tokenMetadata?.clone() ?? new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (error, reply) =>
          error !== null || reply === undefined ? reject(error ?? new Error('empty reply')) : resolve(reply),
      );
    });
  }
}

/** PutRequest{key = 1, value = 2}. */
export function encodePutRequest(key: Buffer, value: Buffer): Buffer {
  return Buffer.concat([lengthDelimited(1, key), lengthDelimited(2, value)]);
}

/** RangeRequest{key = 1, serializable = 7}. */
export function encodeRangeRequest(key: Buffer, serializable: boolean): Buffer {
  const parts = [lengthDelimited(1, key)];
  if (serializable) parts.push(Buffer.from([(7 << 3) | wireVarint, 1]));
  return Buffer.concat(parts);
}

/** TxnRequest{success = 2: RequestOp{request_put = 2: PutRequest} per key}, with no compares. */
export function encodeTxnPutRequest(keys: readonly Buffer[], value: Buffer): Buffer {
  return Buffer.concat(keys.map((key) => lengthDelimited(2, lengthDelimited(2, encodePutRequest(key, value)))));
}

/** Reads header.revision (field 1 -> 3) and count (field 4) from a Put, Range or Txn response. */
export function decodeReply(message: Buffer): KvReply {
  let revision = 0;
  let count = 0;
  forEachField(message, (field, wireType, value, start, end) => {
    if (field === 1 && wireType === wireLengthDelimited) {
      forEachField(message.subarray(start, end), (headerField, _type, headerValue) => {
        if (headerField === 3) revision = headerValue;
      });
    } else if (field === 4 && wireType === wireVarint) {
      count = value;
    }
  });
  return { revision, count };
}

/** AuthenticateResponse.token (field 2). */
function decodeToken(message: Buffer): string {
  let token = '';
  forEachField(message, (field, wireType, _value, start, end) => {
    if (field === 2 && wireType === wireLengthDelimited) token = message.subarray(start, end).toString();
  });
  return token;
}

function lengthDelimited(field: number, bytes: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | wireLengthDelimited), varint(bytes.length), bytes]);
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

type FieldVisitor = (field: number, wireType: number, varintValue: number, start: number, end: number) => void;

/** Walks top-level fields; varints are exact up to 2^53, enough for revisions and counts. */
function forEachField(message: Buffer, visit: FieldVisitor): void {
  let offset = 0;
  while (offset < message.length) {
    const [tag, afterTag] = readVarint(message, offset);
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (wireType === wireVarint) {
      const [value, next] = readVarint(message, afterTag);
      visit(field, wireType, value, afterTag, next);
      offset = next;
    } else if (wireType === wireLengthDelimited) {
      const [length, start] = readVarint(message, afterTag);
      visit(field, wireType, 0, start, start + length);
      offset = start + length;
    } else if (wireType === 1 || wireType === 5) {
      offset = afterTag + (wireType === 1 ? 8 : 4);
    } else {
      throw new Error(`unexpected protobuf wire type ${wireType} at offset ${offset}`);
    }
  }
}

function readVarint(message: Buffer, offset: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let at = offset; at < message.length && at < offset + 10; at += 1) {
    const byte = message[at] as number;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, at + 1];
    scale *= 0x80;
  }
  throw new Error(`truncated varint at offset ${offset}`);
}
