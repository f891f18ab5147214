/**
 * tsetcdctl's hand-written unary codecs against proto-loader, which the printers were written for:
 * requests must encode to the same bytes and responses decode to the same objects (names, 64-bit
 * values as strings, defaults filled in, absent messages null).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type * as protoLoader from '@grpc/proto-loader';
import { packageDefinition, type Message } from '../../ctl/client.js';
import { FlagValues, parseFlags, type FlagSpec } from '../../ctl/flags.js';
import { delFlags, getFlags, putFlags } from '../../ctl/command-tree.js';
import { delOp, getOp, putOp } from '../../ctl/kv-commands.js';
import type { Output } from '../../ctl/output.js';
import { unaryCodecs } from '../../ctl/unary-codecs.js';
import { encodeDeleteRangeResponse, encodePutResponse, encodeRangeResponse } from '../../src/api/response-encoder.js';
import type { KeyValue, ResponseHeader } from '../../src/api/types.js';

const header: ResponseHeader = {
  clusterId: 0xcdef_1234_5678_9abcn,
  memberId: 0x8e9e_05c5_2164_694dn,
  revision: 2 ** 40 + 3,
  raftTerm: 7,
};
const zeroHeader: ResponseHeader = { clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0 };

function kvOf(key: string, value: string, lease: bigint, version = 1): KeyValue {
  return { key: Buffer.from(key), value: Buffer.from(value), createRevision: 2, modRevision: 2 ** 33, version, lease };
}

function method(service: string, name: string): protoLoader.MethodDefinition<Message, Message> {
  const definition = packageDefinition()[`etcdserverpb.${service}`] as protoLoader.ServiceDefinition;
  const found = definition[name];
  if (found === undefined) throw new Error(`expected ${service}.${name} in the protos`);
  return found as protoLoader.MethodDefinition<Message, Message>;
}

function codec(path: string): NonNullable<(typeof unaryCodecs)[string]> {
  const found = unaryCodecs[path];
  if (found === undefined) throw new Error(`expected a codec for ${path}`);
  return found;
}

/** The codec's decoding of `bytes` must equal proto-loader's. */
function assertDecodesAlike(service: string, name: string, bytes: Uint8Array): void {
  const buffer = Buffer.from(bytes);
  assert.deepEqual(codec(`${service}/${name}`).decode(buffer), method(service, name).responseDeserialize(buffer));
}

/** The codec's encoding of `request` must equal proto-loader's, after any room left for the frame. */
function assertEncodesAlike(service: string, name: string, request: Message): void {
  const frameBytes = 5;
  const ours = Buffer.from(codec(`${service}/${name}`).encode(request, frameBytes)).subarray(frameBytes);
  assert.deepEqual(ours, method(service, name).requestSerialize(request));
}

test('Range, Put and DeleteRange responses decode as proto-loader decodes them', () => {
  const kvs = [kvOf('a', 'x', 0n), kvOf('', '', 0x7fff_ffff_ffff_ffffn, 0), kvOf('big', 'v'.repeat(300), -1n, 9)];
  for (const responseHeader of [header, zeroHeader]) {
    assertDecodesAlike('KV', 'Range', encodeRangeResponse(responseHeader, { kvs: [], more: false, count: 0 }));
    assertDecodesAlike('KV', 'Range', encodeRangeResponse(responseHeader, { kvs, more: true, count: 2 ** 35 }));
    assertDecodesAlike('KV', 'Put', encodePutResponse(responseHeader, {}));
    assertDecodesAlike('KV', 'Put', encodePutResponse(responseHeader, { prevKv: kvOf('k', 'old', 5n, 3) }));
    assertDecodesAlike('KV', 'DeleteRange', encodeDeleteRangeResponse(responseHeader, { deleted: 0, prevKvs: [] }));
    assertDecodesAlike('KV', 'DeleteRange', encodeDeleteRangeResponse(responseHeader, { deleted: 3, prevKvs: kvs }));
  }
  // A response without a header: proto-loader gives null, and so must the codec.
  assertDecodesAlike('KV', 'Range', Buffer.from([0x20, 0x01]));
});

test('a Compact response decodes as proto-loader decodes it, and its request encodes alike', () => {
  assertDecodesAlike('KV', 'Compact', Buffer.from([0x0a, 0x04, 0x18, 0x09, 0x20, 0x02]));
  assertDecodesAlike('KV', 'Compact', Buffer.alloc(0));
  assertEncodesAlike('KV', 'Compact', { revision: '12', physical: true });
  assertEncodesAlike('KV', 'Compact', { revision: '3' });
});

test('an Authenticate response decodes as proto-loader decodes it', () => {
  const token = Buffer.from('abcDEF.42');
  const encoded = Buffer.concat([Buffer.from([0x0a, 0x02, 0x18, 0x05, 0x12, token.length]), token]);
  assertDecodesAlike('Auth', 'Authenticate', encoded);
  assertDecodesAlike('Auth', 'Authenticate', Buffer.alloc(0));
});

test('the requests get, put and del build encode as proto-loader encodes them', () => {
  const output: Output = { out: () => undefined, err: () => undefined };
  const flagsOf = (specs: readonly FlagSpec[], args: readonly string[]): FlagValues => {
    const flags = new FlagValues([...specs]);
    assert.equal(parseFlags(args, flags).ok, true);
    return flags;
  };
  const requests: Array<[string, Message]> = [
    ['Range', getOp(output, flagsOf(getFlags, []), ['a']).request],
    ['Range', getOp(output, flagsOf(getFlags, ['--prefix', '--limit=5', '--rev=9', '--order=DESCEND']), ['a']).request],
    ['Range', getOp(output, flagsOf(getFlags, ['--from-key', '--consistency=s', '--keys-only']), ['']).request],
    ['Put', putOp(output, flagsOf(putFlags, ['--lease=ff', '--prev-kv']), ['k', 'v'], () => undefined).request],
    ['Put', putOp(output, flagsOf(putFlags, ['--ignore-value', '--ignore-lease']), ['k'], () => undefined).request],
    ['DeleteRange', delOp(output, flagsOf(delFlags, ['--prefix', '--prev-kv']), ['k']).request],
    ['DeleteRange', delOp(output, flagsOf(delFlags, []), ['a', 'z']).request],
  ];
  for (const [name, request] of requests) assertEncodesAlike('KV', name, request);
  assertEncodesAlike('Auth', 'Authenticate', { name: 'root', password: 'pässword' });
});
