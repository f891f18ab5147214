import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  clientStreamingMethods,
  grpcMethods,
  keyValueToWire,
  loadProtos,
  streamingMethods,
} from '../../src/api/proto-wire.js';
import {
  headerFromWire,
  keyValueFromWire,
  putRequestFromWire,
  rangeRequestFromWire,
  txnRequestFromWire,
  txnRequestToWire,
  txnResponseToWire,
  type WireTxnRequest,
} from '../support/kv-proto-wire.js';
import { EtcdError } from '../../src/api/errors.js';
import type { KeyValue, ResponseHeader, TxnRequest } from '../../src/api/types.js';

const bytes = (text: string) => Buffer.from(text);

describe('the loaded protos', () => {
  test('declare exactly the methods the server registers, with the same streaming ones', () => {
    // The router takes each method's kind from these lists and loads the protos only on a call's first use.
    const definition = loadProtos();
    const loaded: string[] = [];
    const streaming: string[] = [];
    const clientStreaming: string[] = [];
    for (const [name, value] of Object.entries(definition)) {
      if ('format' in value) continue;
      for (const [method, attributes] of Object.entries(value)) {
        const path = `${name}/${method}`;
        loaded.push(path);
        if (attributes.requestStream || attributes.responseStream) streaming.push(path);
        if (attributes.requestStream) clientStreaming.push(path);
        if (attributes.requestStream) assert.ok(attributes.responseStream, `${path} streams answers too`);
      }
    }
    assert.deepEqual(loaded.sort(), [...grpcMethods].sort());
    assert.deepEqual(streaming.sort(), [...streamingMethods].sort());
    assert.deepEqual(clientStreaming.sort(), [...clientStreamingMethods].sort());
  });

  test("encode a KeyValue with etcd's field numbers", () => {
    const type = loadProtos()['mvccpb.KeyValue'] as { serialize: (value: object) => Buffer };
    const kv = keyValueToWire({
      key: bytes('k'),
      createRevision: 2,
      modRevision: 3,
      version: 4,
      value: bytes('v'),
      lease: 6n,
    });
    const expected = [0x0a, 0x01, 0x6b, 0x10, 0x02, 0x18, 0x03, 0x20, 0x04, 0x2a, 0x01, 0x76, 0x30, 0x06];
    assert.deepEqual([...type.serialize(kv)], expected);
  });
});

describe('mapping wire messages to domain types', () => {
  test('revisions become numbers and leases become bigints', () => {
    const put = putRequestFromWire({
      key: bytes('k'),
      value: bytes('v'),
      lease: '7587862208331862287',
      prevKv: true,
      ignoreValue: false,
      ignoreLease: false,
    });
    assert.equal(put.lease, 7587862208331862287n);
    const range = rangeRequestFromWire({
      key: bytes('a'),
      rangeEnd: bytes('b'),
      limit: '10',
      revision: '42',
      sortOrder: 2,
      sortTarget: 3,
      serializable: true,
      keysOnly: false,
      countOnly: false,
      minModRevision: '0',
      maxModRevision: '0',
      minCreateRevision: '5',
      maxCreateRevision: '0',
    });
    assert.equal(range.revision, 42);
    assert.equal(range.limit, 10);
    assert.equal(range.minCreateRevision, 5);
  });

  test('header and key-value round trip through the wire shape', () => {
    const kv: KeyValue = {
      key: bytes('k'),
      value: bytes('v'),
      createRevision: 3,
      modRevision: 9,
      version: 2,
      lease: -1n,
    };
    assert.deepEqual(keyValueFromWire(keyValueToWire(kv)), kv);
    assert.deepEqual(
      headerFromWire({ clusterId: '18446744073709551615', memberId: '1', revision: '5', raftTerm: '2' }),
      {
        clusterId: 18446744073709551615n,
        memberId: 1n,
        revision: 5,
        raftTerm: 2,
      },
    );
  });

  test('a txn survives domain -> wire -> domain, nested txns and compare operands included', () => {
    const txn: TxnRequest = {
      compare: [
        {
          result: 3,
          target: 3,
          key: bytes('a'),
          rangeEnd: new Uint8Array(0),
          version: 0,
          createRevision: 0,
          modRevision: 0,
          value: bytes('x'),
          lease: 0n,
        },
      ],
      success: [
        {
          type: 'txn',
          txn: {
            compare: [],
            success: [
              {
                type: 'put',
                put: {
                  key: bytes('b'),
                  value: bytes('1'),
                  lease: 5n,
                  prevKv: false,
                  ignoreValue: false,
                  ignoreLease: false,
                },
              },
            ],
            failure: [],
          },
        },
      ],
      failure: [{ type: 'deleteRange', deleteRange: { key: bytes('c'), rangeEnd: bytes('d'), prevKv: true } }],
    };
    assert.deepEqual(txnRequestFromWire(txnRequestToWire(txn)), txn);
  });

  test('an op with nothing set is etcd\'s "key not found"', () => {
    const wire: WireTxnRequest = { compare: [], success: [{}], failure: [] };
    assert.throws(
      () => txnRequestFromWire(wire),
      (error: unknown) => error instanceof EtcdError && error.message === 'etcdserver: key not found',
    );
  });
});

describe('txn responses on the wire', () => {
  const header: ResponseHeader = { clusterId: 11n, memberId: 22n, revision: 8, raftTerm: 3 };

  test('nested op headers carry only a revision and a nested txn header stays zero, as etcd 3.4 answers', () => {
    const wire = txnResponseToWire(header, {
      succeeded: true,
      responses: [
        { type: 'deleteRange', deleteRange: { deleted: 0, prevKvs: [], revision: 7 } },
        { type: 'put', put: {} },
        {
          type: 'txn',
          txn: { succeeded: false, responses: [{ type: 'range', range: { kvs: [], more: false, count: 0 } }] },
        },
      ],
    });
    const zero = { clusterId: '0', memberId: '0', raftTerm: '0' };
    assert.deepEqual(wire.header, { clusterId: '11', memberId: '22', revision: '8', raftTerm: '3' });
    assert.deepEqual(wire.responses[0], {
      responseDeleteRange: { header: { ...zero, revision: '7' }, deleted: '0', prevKvs: [] },
    });
    assert.deepEqual(wire.responses[1], { responsePut: { header: { ...zero, revision: '8' } } });
    assert.deepEqual(wire.responses[2], {
      responseTxn: {
        header: { ...zero, revision: '0' },
        succeeded: false,
        responses: [{ responseRange: { header: { ...zero, revision: '8' }, kvs: [], more: false, count: '0' } }],
      },
    });
  });
});
