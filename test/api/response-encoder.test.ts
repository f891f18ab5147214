import assert from 'node:assert/strict';
import { test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { headerToWire, loadProtos, type WireMessage } from '../../src/api/proto-wire.js';
import {
  deleteRangeResponseToWire,
  putResponseToWire,
  rangeResponseToWire,
  txnResponseToWire,
} from '../support/kv-proto-wire.js';
import {
  encodeDeleteRangeResponse,
  encodePutResponse,
  encodeRangeResponse,
  encodeTxnResponse,
} from '../../src/api/response-encoder.js';
import type { KeyValue, ResponseHeader, TxnResult } from '../../src/api/types.js';

const kv = loadProtos()['etcdserverpb.KV'] as grpc.ServiceDefinition;
const header: ResponseHeader = {
  clusterId: 0xcdef_1234_5678_9abcn,
  memberId: 0x8e9e_05c5_2164_694dn,
  revision: 2 ** 40 + 3,
  raftTerm: 7,
};

function kvOf(key: string, value: string, lease: bigint, version = 1): KeyValue {
  return { key: Buffer.from(key), value: Buffer.from(value), createRevision: 2, modRevision: 2 ** 33, version, lease };
}

/** Both encodings, decoded by the same protobuf definition, must say the same. */
function decodeBoth(
  method: 'Range' | 'Put' | 'DeleteRange' | 'Txn',
  direct: Uint8Array,
  generic: WireMessage,
): [unknown, unknown] {
  const definition = kv[method]!;
  const decode = definition.responseDeserialize as (buffer: Buffer) => unknown;
  const serialize = definition.responseSerialize as (message: WireMessage) => Buffer;
  return [decode(Buffer.from(direct)), decode(serialize(generic))];
}

test('a Range response encoded directly decodes to what the generic encoder gives, for every field', () => {
  const cases = [
    { kvs: [], more: false, count: 0 },
    { kvs: [kvOf('a', 'x', 0n)], more: false, count: 1 },
    {
      kvs: [kvOf('', '', 0x7fff_ffff_ffff_ffffn, 0), kvOf('big', 'v'.repeat(300), -1n, 9)],
      more: true,
      count: 2 ** 35,
    },
  ];
  for (const result of cases) {
    const [direct, generic] = decodeBoth(
      'Range',
      encodeRangeResponse(header, result),
      rangeResponseToWire(headerToWire(header), result) as unknown as WireMessage,
    );
    assert.deepEqual(direct, generic);
  }
});

test('a Put response encoded directly decodes to what the generic encoder gives, with and without prev_kv', () => {
  for (const result of [{}, { prevKv: kvOf('k', 'old', 5n, 3) }]) {
    const [direct, generic] = decodeBoth(
      'Put',
      encodePutResponse(header, result),
      putResponseToWire(headerToWire(header), result) as unknown as WireMessage,
    );
    assert.deepEqual(direct, generic);
  }
  const zero = { clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0 };
  const [direct, generic] = decodeBoth(
    'Put',
    encodePutResponse(zero, {}),
    putResponseToWire(headerToWire(zero), {}) as unknown as WireMessage,
  );
  assert.deepEqual(direct, generic);
});

test('a DeleteRange response encoded directly decodes to what the generic encoder gives, with and without prev_kvs', () => {
  const cases = [
    { deleted: 0, prevKvs: [] },
    { deleted: 2 ** 35, prevKvs: [] },
    { deleted: 2, prevKvs: [kvOf('a', 'x', 0n), kvOf('b', '', -1n, 4)] },
  ];
  for (const result of cases) {
    const [direct, generic] = decodeBoth(
      'DeleteRange',
      encodeDeleteRangeResponse(header, result),
      deleteRangeResponseToWire(headerToWire(header), result) as unknown as WireMessage,
    );
    assert.deepEqual(direct, generic);
  }
});

test('a Txn response encoded directly decodes to what the generic encoder gives, nested op headers and a nested txn included', () => {
  const cases: TxnResult[] = [
    { succeeded: false, responses: [] },
    {
      succeeded: true,
      responses: [
        { type: 'put', put: {} },
        { type: 'put', put: { prevKv: kvOf('k', 'old', 5n, 3), revision: 2 ** 40 + 2 } },
      ],
    },
    {
      succeeded: true,
      responses: [
        { type: 'deleteRange', deleteRange: { deleted: 1, prevKvs: [kvOf('d', 'gone', 0n)], revision: 7 } },
        { type: 'range', range: { kvs: [kvOf('a', 'x', 0n)], more: true, count: 3 } },
        {
          type: 'txn',
          txn: {
            succeeded: false,
            responses: [
              { type: 'range', range: { kvs: [], more: false, count: 0, revision: 4 } },
              { type: 'put', put: {} },
            ],
          },
        },
      ],
    },
  ];
  for (const result of cases) {
    const [direct, generic] = decodeBoth(
      'Txn',
      encodeTxnResponse(header, result),
      txnResponseToWire(header, result) as unknown as WireMessage,
    );
    assert.deepEqual(direct, generic);
  }
});

test("the headers of ops inside a txn leave the member's own identity fields in place for the next answer", () => {
  encodeTxnResponse(header, { succeeded: true, responses: [{ type: 'put', put: {} }] });
  const [direct, generic] = decodeBoth(
    'Put',
    encodePutResponse(header, {}),
    putResponseToWire(headerToWire(header), {}) as unknown as WireMessage,
  );
  assert.deepEqual(direct, generic);
});
