import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EtcdError } from '../../src/api/errors.js';
import {
  decodeDeleteRangeRequest,
  decodePutRequest,
  decodeRangeRequest,
  decodeTxnRequest,
} from '../../src/api/request-decoder.js';
import { encodeDeleteRangeRequest, encodeTxnRequest } from '../../src/api/request-encoder.js';
import { rangeRequestWith, type Compare, type RequestOp, type TxnRequest } from '../../src/api/types.js';
import { protoReaderOf, wireBytes } from '../../src/lib/protobuf.js';
import type { Prng } from '../../src/lib/prng.js';
import { parseOrRefuse, runFuzz } from './fuzz.js';
import { nestTxn } from './nested-txn.js';

const bytes = (text: string): Buffer => Buffer.from(text);

const compare: Compare = {
  result: 1,
  target: 2,
  key: bytes('k'),
  rangeEnd: bytes('l'),
  version: 0,
  createRevision: 0,
  modRevision: 300,
  value: Buffer.alloc(0),
  lease: 0n,
};
const put: RequestOp = {
  type: 'put',
  put: { key: bytes('key'), value: bytes('value'), lease: -1n, prevKv: true, ignoreValue: false, ignoreLease: false },
};
const range: RequestOp = {
  type: 'range',
  range: rangeRequestWith({ key: bytes('a'), rangeEnd: bytes('z'), limit: 2 ** 40, revision: 5, countOnly: true }),
};
const deleteRange: RequestOp = {
  type: 'deleteRange',
  deleteRange: { key: bytes('a'), rangeEnd: Buffer.from([0]), prevKv: true },
};
const inner: TxnRequest = { compare: [compare], success: [put], failure: [range] };
const txns: TxnRequest[] = [
  { compare: [], success: [], failure: [] },
  inner,
  { compare: [compare, { ...compare, target: 3, value: bytes('v') }], success: [put, deleteRange], failure: [put] },
  { compare: [], success: [{ type: 'txn', txn: inner }], failure: [{ type: 'txn', txn: { ...inner, failure: [] } }] },
];

/** Valid requests of every kind, as our encoder writes them (protobuf wire format, etcd's field numbers). */
const corpus: Uint8Array[] = [
  ...txns.map((txn) => encodeTxnRequest(txn)),
  ...txns.flatMap((txn) => txn.success.map((op) => encodeTxnRequest({ compare: [], success: [op], failure: [] }))),
  encodeDeleteRangeRequest(deleteRange.deleteRange),
];

const nest = (input: Uint8Array, prng: Prng): Uint8Array => nestTxn(input, prng.pick([2, 50, 1_001, 10_000]));

/** Decoding errors become gRPC errors: a plain Error with the protobuf reader's text, or etcd's own EtcdError. */
const decodeErrors = [Error, EtcdError] as const;

test('the protobuf reader walks any input to its end or throws a plain Error', () => {
  runFuzz('proto-reader', {
    corpus,
    check(input) {
      const walk = (reader: ReturnType<typeof protoReaderOf>, depth: number): void => {
        while (!reader.done) {
          const key = reader.key();
          if ((key & 7) === wireBytes && depth < 4) walk(reader.message(), depth + 1);
          else reader.skip(key);
        }
      };
      parseOrRefuse(() => walk(protoReaderOf(input), 0), Error);
    },
  });
});

test('each KV request decoder returns a request or throws a plain Error or an EtcdError', () => {
  const decoders = [decodeRangeRequest, decodePutRequest, decodeDeleteRangeRequest, decodeTxnRequest];
  runFuzz('kv-request-decoders', {
    corpus,
    mutations: [nest],
    inputBytesMax: 96 * 1024,
    check(input) {
      for (const decode of decoders) parseOrRefuse(() => decode(Buffer.from(input)), ...decodeErrors);
    },
  });
});

test('a decoded Txn or DeleteRange request encodes to bytes that decode to the same request', () => {
  runFuzz('kv-request-round-trip', {
    corpus,
    check(input) {
      const txn = parseOrRefuse(() => decodeTxnRequest(Buffer.from(input)), ...decodeErrors);
      if (txn !== undefined) assert.deepEqual(decodeTxnRequest(Buffer.from(encodeTxnRequest(txn))), txn);
      const deletion = parseOrRefuse(() => decodeDeleteRangeRequest(Buffer.from(input)), ...decodeErrors);
      if (deletion !== undefined)
        assert.deepEqual(decodeDeleteRangeRequest(Buffer.from(encodeDeleteRangeRequest(deletion))), deletion);
    },
  });
});
