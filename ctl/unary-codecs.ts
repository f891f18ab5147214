/**
 * The unary calls tsetcdctl sends without gRPC's libraries: their requests are encoded and their
 * responses decoded by src/api's codecs. Commands build requests and printers read responses as
 * proto-loader objects (snake_case names, 64-bit integers as decimal strings, bytes as Buffers,
 * every field present, an absent message null), so this module maps between that shape and the
 * codecs' domain objects; a test holds its answers against proto-loader's.
 */
import {
  encodeDeleteRangeRequest,
  encodeAuthenticateRequest,
  encodePutRequest,
  encodeRangeRequest,
  encodeCompactionRequest,
} from '../src/api/request-encoder.js';
import {
  decodeAuthenticateResponse,
  decodeCompactionResponse,
  decodeDeleteRangeResponse,
  decodePutResponse,
  decodeRangeResponse,
} from '../src/api/response-decoder.js';
import type { KeyValue, ResponseHeader } from '../src/api/types.js';
import type { Message } from './client.js';

/** How one method's request is written (after `prefixBytes` bytes for the frame) and its response read. */
export interface UnaryCodec {
  readonly encode: (request: Message, prefixBytes: number) => Uint8Array;
  readonly decode: (bytes: Buffer) => Message;
}

const emptyBuffer = Buffer.alloc(0);

function bytesOf(value: unknown): Uint8Array {
  if (value === undefined || value === null) return emptyBuffer;
  return typeof value === 'string' ? Buffer.from(value) : (value as Uint8Array);
}

const numberOf = (value: unknown): number => (value === undefined || value === null ? 0 : Number(value));
const bigintOf = (value: unknown): bigint => (value === undefined || value === null ? 0n : BigInt(value as string));

function bufferOf(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function headerMessage(header: ResponseHeader | undefined): Message | null {
  if (header === undefined) return null;
  return {
    cluster_id: header.clusterId.toString(),
    member_id: header.memberId.toString(),
    revision: String(header.revision),
    raft_term: String(header.raftTerm),
  };
}

function keyValueMessage(kv: KeyValue): Message {
  return {
    key: bufferOf(kv.key),
    create_revision: String(kv.createRevision),
    mod_revision: String(kv.modRevision),
    version: String(kv.version),
    value: bufferOf(kv.value),
    lease: kv.lease.toString(),
  };
}

/** The calls with codecs, by `Service/Method`. */
export const unaryCodecs: Readonly<Record<string, UnaryCodec>> = {
  'KV/Range': {
    encode: (request, prefixBytes) =>
      encodeRangeRequest(
        {
          key: bytesOf(request.key),
          rangeEnd: bytesOf(request.range_end),
          limit: numberOf(request.limit),
          revision: numberOf(request.revision),
          sortOrder: numberOf(request.sort_order),
          sortTarget: numberOf(request.sort_target),
          serializable: request.serializable === true,
          keysOnly: request.keys_only === true,
          countOnly: request.count_only === true,
          minModRevision: numberOf(request.min_mod_revision),
          maxModRevision: numberOf(request.max_mod_revision),
          minCreateRevision: numberOf(request.min_create_revision),
          maxCreateRevision: numberOf(request.max_create_revision),
        },
        prefixBytes,
      ),
    decode: (bytes) => {
      const { header, result } = decodeRangeResponse(bytes);
      return {
        header: headerMessage(header),
        kvs: result.kvs.map(keyValueMessage),
        more: result.more,
        count: String(result.count),
      };
    },
  },
  'KV/Put': {
    encode: (request, prefixBytes) =>
      encodePutRequest(
        {
          key: bytesOf(request.key),
          value: bytesOf(request.value),
          lease: bigintOf(request.lease),
          prevKv: request.prev_kv === true,
          ignoreValue: request.ignore_value === true,
          ignoreLease: request.ignore_lease === true,
        },
        prefixBytes,
      ),
    decode: (bytes) => {
      const { header, result } = decodePutResponse(bytes);
      return {
        header: headerMessage(header),
        prev_kv: result.prevKv === undefined ? null : keyValueMessage(result.prevKv),
      };
    },
  },
  'KV/DeleteRange': {
    encode: (request, prefixBytes) =>
      encodeDeleteRangeRequest(
        { key: bytesOf(request.key), rangeEnd: bytesOf(request.range_end), prevKv: request.prev_kv === true },
        prefixBytes,
      ),
    decode: (bytes) => {
      const { header, result } = decodeDeleteRangeResponse(bytes);
      return {
        header: headerMessage(header),
        deleted: String(result.deleted),
        prev_kvs: result.prevKvs.map(keyValueMessage),
      };
    },
  },
  'KV/Compact': {
    encode: (request, prefixBytes) =>
      encodeCompactionRequest(
        { revision: numberOf(request.revision), physical: request.physical === true },
        prefixBytes,
      ),
    decode: (bytes) => ({ header: headerMessage(decodeCompactionResponse(bytes).header) }),
  },
  'Auth/Authenticate': {
    encode: (request, prefixBytes) =>
      encodeAuthenticateRequest(
        { name: String(request.name ?? ''), password: String(request.password ?? '') },
        prefixBytes,
      ),
    decode: (bytes) => {
      const { header, result } = decodeAuthenticateResponse(bytes);
      return { header: headerMessage(header), token: result.token };
    },
  },
};
