import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../src/api/proto-wire.js';
import {
  deleteRangeRequestFromWire,
  putRequestFromWire,
  rangeRequestFromWire,
  txnRequestFromWire,
  txnRequestToWire,
  type WireDeleteRangeRequest,
  type WirePutRequest,
  type WireRangeRequest,
  type WireTxnRequest,
} from '../support/kv-proto-wire.js';
import { EtcdError } from '../../src/api/errors.js';
import {
  decodeDeleteRangeRequest,
  decodePutRequest,
  decodeRangeRequest,
  decodeSnapshotRequest,
  decodeTxnRequest,
} from '../../src/api/request-decoder.js';
import { encodeTxnRequest } from '../../src/api/request-encoder.js';
import {
  CompareTarget,
  type Compare,
  type RangeRequest,
  type RequestOp,
  type TxnRequest,
} from '../../src/api/types.js';
import { Prng } from '../../src/lib/prng.js';
import { txnNestingDepthMax } from '../../src/lib/limits.js';
import { nestTxn } from '../fuzz/nested-txn.js';

const kv = loadProtos()['etcdserverpb.KV'] as grpc.ServiceDefinition;
type Method = 'Range' | 'Put' | 'DeleteRange' | 'Txn';

const serialize = (method: Method, wire: unknown): Buffer =>
  (kv[method]!.requestSerialize as (value: unknown) => Buffer)(wire);
const protobufjsDecode = (method: Method, bytes: Buffer): unknown =>
  (kv[method]!.requestDeserialize as (buffer: Buffer) => unknown)(bytes);

/** The generic path: protobufjs through proto-loader, then proto-wire.ts's mapping to domain objects. */
const generic: Record<Method, (bytes: Buffer) => unknown> = {
  Range: (bytes) => rangeRequestFromWire(protobufjsDecode('Range', bytes) as WireRangeRequest),
  Put: (bytes) => putRequestFromWire(protobufjsDecode('Put', bytes) as WirePutRequest),
  DeleteRange: (bytes) => deleteRangeRequestFromWire(protobufjsDecode('DeleteRange', bytes) as WireDeleteRangeRequest),
  Txn: (bytes) => txnRequestFromWire(protobufjsDecode('Txn', bytes) as WireTxnRequest),
};
const direct: Record<Method, (bytes: Buffer) => unknown> = {
  Range: decodeRangeRequest,
  Put: decodePutRequest,
  DeleteRange: decodeDeleteRangeRequest,
  Txn: decodeTxnRequest,
};

/** Byte fields compared by content, whatever their class (an unset compare value is a Uint8Array in the generic path). */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item)]));
  return value;
}

/** Both decoders read `bytes` and must give equal domain objects, or both refuse it. */
function assertSameDecoding(method: Method, bytes: Buffer): unknown {
  let expected: unknown;
  try {
    expected = generic[method](bytes);
  } catch (error) {
    assert.throws(
      () => direct[method](bytes),
      `the generic decoder refused (${(error as Error).message}), the direct one did not`,
    );
    return undefined;
  }
  const decoded = direct[method](bytes);
  assert.deepEqual(plain(decoded), plain(expected));
  return decoded;
}

/** Random domain requests, with only the operand the compare target names set (the wire has a oneof). */
class Requests {
  constructor(private readonly prng: Prng) {}

  private int(bound: number): number {
    return this.prng.nextInt(bound);
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  bytes(): Buffer {
    return this.int(4) === 0
      ? Buffer.alloc(0)
      : Buffer.from(Array.from({ length: 1 + this.int(this.int(10) === 0 ? 300 : 12) }, () => this.int(256)));
  }

  number(): number {
    return this.pick([0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 + 5, 2 ** 49 + 1, Number.MAX_SAFE_INTEGER, -1, -(2 ** 40)]);
  }

  lease(): bigint {
    return this.pick([0n, 1n, 0x7fff_ffff_ffff_ffffn, -1n, -(2n ** 63n), 0x694d_0000n]);
  }

  bool(): boolean {
    return this.int(2) === 1;
  }

  range(): RangeRequest {
    return {
      key: this.bytes(),
      rangeEnd: this.bytes(),
      limit: this.number(),
      revision: this.number(),
      sortOrder: this.int(3),
      sortTarget: this.int(5),
      serializable: this.bool(),
      keysOnly: this.bool(),
      countOnly: this.bool(),
      minModRevision: this.number(),
      maxModRevision: this.number(),
      minCreateRevision: this.number(),
      maxCreateRevision: this.number(),
    };
  }

  compare(): Compare {
    const target = this.int(5) as CompareTarget;
    const base: Compare = {
      result: this.int(4),
      target,
      key: this.bytes(),
      rangeEnd: this.bytes(),
      version: 0,
      createRevision: 0,
      modRevision: 0,
      value: Buffer.alloc(0),
      lease: 0n,
    };
    if (target === CompareTarget.version) base.version = this.number();
    if (target === CompareTarget.create) base.createRevision = this.number();
    if (target === CompareTarget.mod) base.modRevision = this.number();
    if (target === CompareTarget.value) base.value = this.bytes();
    if (target === CompareTarget.lease) base.lease = this.lease();
    return base;
  }

  op(depth: number): RequestOp {
    switch (this.int(depth > 0 ? 4 : 3)) {
      case 0:
        return { type: 'range', range: this.range() };
      case 1:
        return {
          type: 'put',
          put: {
            key: this.bytes(),
            value: this.bytes(),
            lease: this.lease(),
            prevKv: this.bool(),
            ignoreValue: this.bool(),
            ignoreLease: this.bool(),
          },
        };
      case 2:
        return { type: 'deleteRange', deleteRange: { key: this.bytes(), rangeEnd: this.bytes(), prevKv: this.bool() } };
      default:
        return { type: 'txn', txn: this.txn(depth - 1) };
    }
  }

  txn(depth: number): TxnRequest {
    const many = <T>(make: () => T): T[] => Array.from({ length: this.int(4) }, make);
    return {
      compare: many(() => this.compare()),
      success: many(() => this.op(depth)),
      failure: many(() => this.op(depth)),
    };
  }
}

describe('the direct request decoder', () => {
  test('decodes what protobufjs encodes to the same domain objects as the generic path, for random requests', () => {
    const requests = new Requests(new Prng(20261126));
    for (let i = 0; i < 300; i++) {
      const txn = requests.txn(2);
      const decoded = assertSameDecoding('Txn', serialize('Txn', txnRequestToWire(txn)));
      assert.deepEqual(plain(decoded), plain(txn));
      const range = requests.range();
      assert.deepEqual(
        assertSameDecoding(
          'Range',
          serialize(
            'Range',
            txnRequestToWire({ compare: [], success: [{ type: 'range', range }], failure: [] }).success[0]!
              .requestRange,
          ),
        ),
        range,
      );
    }
  });

  test('skips unknown fields of every wire type, takes the last of a repeated scalar and reads fields in any order', () => {
    const put = (...fields: number[][]): Buffer => Buffer.from(fields.flat());
    const cases = [
      // value, then key, then lease twice (the last wins), then prev_kv.
      put([0x12, 1, 0x76], [0x0a, 2, 0x6b, 0x31], [0x18, 5], [0x18, 7], [0x20, 1]),
      // unknown field 9 as varint, fixed64, bytes and fixed32 around the known ones.
      put(
        [0x48, 0x96, 0x01],
        [0x0a, 1, 0x61],
        [0x49, 1, 2, 3, 4, 5, 6, 7, 8],
        [0x4a, 3, 1, 2, 3],
        [0x4d, 1, 2, 3, 4],
        [0x28, 1],
      ),
      // a key given twice: the last wins.
      put([0x0a, 1, 0x61], [0x0a, 1, 0x62]),
      // an empty message.
      put(),
    ];
    for (const bytes of cases) assertSameDecoding('Put', bytes);
    const decoded = decodePutRequest(cases[0]!);
    assert.equal(decoded.lease, 7n);
    assert.equal(decoded.prevKv, true);
    assert.equal(Buffer.from(decoded.key).toString(), 'k1');
  });

  test('refuses truncated fields as grpc-go does (unexpected EOF), as the generic path does too', () => {
    const cases = [
      [0x0a, 5, 0x61], // key says 5 bytes, has 1
      [0x18], // lease without its varint
      [0x18, 0x80], // lease varint cut short
      [0x49, 1, 2, 3], // unknown fixed64 cut short
    ];
    for (const bytes of cases) {
      assert.throws(() => decodePutRequest(Buffer.from(bytes)), /^Error: unexpected EOF$/, `bytes ${bytes.join(',')}`);
      assertSameDecoding('Put', Buffer.from(bytes));
    }
  });

  test('refuses a field number of 0 as etcd does, and wire types it cannot skip', () => {
    assert.throws(() => decodePutRequest(Buffer.from([0x00, 0x01])), /^Error: proto: illegal tag 0 \(wire type 0\)$/);
    for (const wireType of [3, 4, 6, 7])
      assert.throws(
        () => decodePutRequest(Buffer.from([0x48 | wireType, 0])),
        new RegExp(`^Error: proto: illegal wireType ${wireType}$`),
      );
  });

  test('an op with nothing set is etcd\'s "key not found", as in the generic path', () => {
    const bytes = serialize('Txn', { compare: [], success: [{}], failure: [] });
    assert.throws(
      () => decodeTxnRequest(bytes),
      (error: unknown) => error instanceof EtcdError && error.message === 'etcdserver: key not found',
    );
    assert.throws(
      () => generic.Txn(bytes),
      (error: unknown) => error instanceof EtcdError && error.message === 'etcdserver: key not found',
    );
  });
});

describe('the snapshot request decoder', () => {
  const maintenance = loadProtos()['etcdserverpb.Maintenance'] as grpc.ServiceDefinition;
  const protobufjsSnapshot = (bytes: Buffer): unknown =>
    (maintenance['Snapshot']!.requestDeserialize as (buffer: Buffer) => unknown)(bytes);

  test('reads an empty request, or one with fields it does not know, as protobufjs does', () => {
    const cases = [[], [0x08, 0x96, 0x01], [0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0x1a, 2, 0x61, 0x62, 0x25, 1, 2, 3, 4]];
    for (const bytes of cases) {
      assert.deepEqual(decodeSnapshotRequest(Buffer.from(bytes)), {});
      assert.deepEqual({ ...(protobufjsSnapshot(Buffer.from(bytes)) as object) }, {}, `bytes ${bytes.join(',')}`);
    }
  });

  test('refuses truncated fields and field number 0 as the other decoders do', () => {
    for (const bytes of [[0x0a, 5, 0x61], [0x08], [0x11, 1, 2]]) {
      assert.throws(() => decodeSnapshotRequest(Buffer.from(bytes)), /^Error: unexpected EOF$/);
      assert.throws(() => protobufjsSnapshot(Buffer.from(bytes)));
    }
    assert.throws(() => decodeSnapshotRequest(Buffer.from([0x00, 0x01])), /^Error: proto: illegal tag 0/);
  });
});

describe('the txn request encoder', () => {
  test('writes bytes both decoders read back as the same request', () => {
    const requests = new Requests(new Prng(7));
    for (let i = 0; i < 300; i++) {
      const txn = requests.txn(2);
      const bytes = encodeTxnRequest(txn);
      assert.deepEqual(plain(assertSameDecoding('Txn', Buffer.from(bytes))), plain(txn));
    }
  });

  test('leaves room for a prefix and writes zero values nowhere', () => {
    const empty = encodeTxnRequest(
      {
        compare: [],
        success: [
          {
            type: 'put',
            put: {
              key: Buffer.alloc(0),
              value: Buffer.alloc(0),
              lease: 0n,
              prevKv: false,
              ignoreValue: false,
              ignoreLease: false,
            },
          },
        ],
        failure: [],
      },
      3,
    );
    // Three prefix bytes, then success (field 2) holding a RequestOp whose request_put (field 2) is empty.
    assert.deepEqual([...empty], [0, 0, 0, 0x12, 2, 0x12, 0]);
  });
});

describe('txns nested in txns', () => {
  const emptyTxn = new Uint8Array(0);

  test('decode up to txnNestingDepthMax levels deep', () => {
    let txn = decodeTxnRequest(Buffer.from(nestTxn(emptyTxn, txnNestingDepthMax)));
    for (let level = 0; level < txnNestingDepthMax; level++) {
      const op = txn.success[0];
      assert.equal(op?.type, 'txn');
      txn = (op as Extract<RequestOp, { type: 'txn' }>).txn;
    }
    assert.deepEqual(txn, { compare: [], success: [], failure: [] });
  });

  // Found by the fuzzer: 20,000 levels (about 110 KiB) overflowed the stack with a RangeError.
  test('are refused with a clear error one level deeper and at 20,000 levels, without overflowing the stack', () => {
    for (const depth of [txnNestingDepthMax + 1, 20_000]) {
      assert.throws(
        () => decodeTxnRequest(Buffer.from(nestTxn(emptyTxn, depth))),
        (error: unknown) =>
          Object.getPrototypeOf(error) === Error.prototype && /exceeded maximum recursion depth/.test(String(error)),
      );
    }
  });
});
