/**
 * The checker's operations on etcd's gRPC KV service: a get is a Range of one key, a put a Put, a
 * delete a DeleteRange of one key, a txn a Txn; answers are read back into the model's outputs.
 * Wire objects as @grpc/proto-loader gives them with the project's options (camelCase, longs as strings).
 */
import type { GrpcMethod, WireMessage } from '../../../src/api/proto-wire.js';
import type { Compare, KeyValueSeen, KvInput, KvOutput, TxnOpResult, TxnRequestOp } from './kv-model.js';

/** etcd's Compare.CompareResult and Compare.CompareTarget numbers. */
const compareResultNumbers = { equal: 0, greater: 1, less: 2, 'not-equal': 3 } as const;
const compareTargetNumbers = { version: 0, create: 1, mod: 2, value: 3 } as const;

/** The gRPC method and request for an input. */
export function requestFor(input: KvInput): { method: GrpcMethod; request: WireMessage } {
  switch (input.type) {
    case 'get':
      return { method: 'etcdserverpb.KV/Range', request: { key: Buffer.from(input.key) } };
    case 'put':
      return {
        method: 'etcdserverpb.KV/Put',
        request: { key: Buffer.from(input.key), value: Buffer.from(input.value) },
      };
    case 'delete':
      return { method: 'etcdserverpb.KV/DeleteRange', request: { key: Buffer.from(input.key) } };
    case 'txn':
      return {
        method: 'etcdserverpb.KV/Txn',
        request: {
          compare: input.compares.map(compareToWire),
          success: input.success.map(requestOpToWire),
          failure: input.failure.map(requestOpToWire),
        },
      };
    default:
      return input satisfies never;
  }
}

function compareToWire(compare: Compare): WireMessage {
  const wire: WireMessage = {
    key: Buffer.from(compare.key),
    result: compareResultNumbers[compare.result],
    target: compareTargetNumbers[compare.target],
  };
  switch (compare.target) {
    case 'value':
      wire.value = Buffer.from(String(compare.operand));
      break;
    case 'version':
      wire.version = String(compare.operand);
      break;
    case 'create':
      wire.createRevision = String(compare.operand);
      break;
    case 'mod':
      wire.modRevision = String(compare.operand);
      break;
    default:
      return compare.target satisfies never;
  }
  return wire;
}

function requestOpToWire(op: TxnRequestOp): WireMessage {
  const { request } = requestFor(op);
  switch (op.type) {
    case 'get':
      return { requestRange: request };
    case 'put':
      return { requestPut: request };
    case 'delete':
      return { requestDeleteRange: request };
    default:
      return op satisfies never;
  }
}

/** The model's output for an input from the store's response; throws on a response of the wrong shape. */
export function outputFrom(input: KvInput, response: WireMessage): KvOutput {
  const revision = headerRevisionOf(response);
  switch (input.type) {
    case 'get':
      return { type: 'get', revision, kv: singleKv(response, input.key) };
    case 'put':
      return { type: 'put', revision };
    case 'delete':
      return { type: 'delete', revision, deleted: Number(response.deleted ?? 0) };
    case 'txn': {
      const succeeded = response.succeeded === true;
      const branch = succeeded ? input.success : input.failure;
      const responses = (response.responses ?? []) as WireMessage[];
      if (responses.length !== branch.length)
        throw new Error(`expected ${branch.length} txn responses, saw ${responses.length}`);
      const results = branch.map((op, i): TxnOpResult => {
        const one = responses[i] as WireMessage;
        switch (op.type) {
          case 'get':
            return { type: 'get', kv: singleKv(one.responseRange as WireMessage, op.key) };
          case 'put':
            return { type: 'put' };
          case 'delete':
            return { type: 'delete', deleted: Number((one.responseDeleteRange as WireMessage).deleted ?? 0) };
          default:
            return op satisfies never;
        }
      });
      return { type: 'txn', revision, succeeded, results };
    }
    default:
      return input satisfies never;
  }
}

function headerRevisionOf(response: WireMessage): number {
  const revision = Number((response.header as { revision?: string } | undefined)?.revision ?? NaN);
  if (!Number.isInteger(revision) || revision <= 0)
    throw new Error(`expected a header revision, saw ${JSON.stringify(response.header)}`);
  return revision;
}

function singleKv(range: WireMessage | undefined, key: string): KeyValueSeen | null {
  const kvs = (range?.kvs ?? []) as Array<{
    key: Buffer;
    value: Buffer;
    version: string;
    createRevision: string;
    modRevision: string;
  }>;
  if (kvs.length > 1) throw new Error(`a range of one key ${key} returned ${kvs.length} keys`);
  const [kv] = kvs;
  if (kv === undefined) return null;
  if (kv.key.toString() !== key) throw new Error(`a range of ${key} returned key ${kv.key.toString()}`);
  return {
    value: kv.value.toString(),
    version: Number(kv.version),
    createRevision: Number(kv.createRevision),
    modRevision: Number(kv.modRevision),
  };
}
