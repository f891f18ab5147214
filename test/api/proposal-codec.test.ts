import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Packr } from 'msgpackr';
import {
  decodeProposal,
  encodeProposal,
  mayBeMembershipProposal,
  type Envelope,
} from '../../src/api/proposal-codec.js';
import type { RequestOp } from '../../src/api/types.js';

const origin = 0x8e9e_05c5_2164_694dn;

function put(
  key: string,
  value: string,
  extra: Partial<{ lease: bigint; prevKv: boolean; ignoreValue: boolean; ignoreLease: boolean }> = {},
): Envelope {
  return {
    origin,
    id: 2 ** 40 + 7,
    body: {
      type: 'put',
      put: {
        key: new TextEncoder().encode(key),
        value: new TextEncoder().encode(value),
        lease: 0n,
        prevKv: false,
        ignoreValue: false,
        ignoreLease: false,
        ...extra,
      },
    },
  };
}

/** Byte fields compared by content, whatever their class. */
function plain(envelope: Envelope): unknown {
  return JSON.parse(
    JSON.stringify(envelope, (_key, value: unknown) =>
      typeof value === 'bigint' ? `${value}n` : value instanceof Uint8Array ? [...value] : value,
    ),
  );
}

test('put proposals round-trip through the binary layout, flags, lease and empty fields included', () => {
  const cases = [
    put('k', 'v'),
    put('', ''),
    put('key', 'x'.repeat(70_000), { lease: 0x7fff_ffff_ffff_ffffn, prevKv: true }),
    put('a', 'b', { lease: -5n, ignoreValue: true, ignoreLease: true }),
  ];
  for (const envelope of cases) {
    const bytes = encodeProposal(envelope);
    assert.equal(bytes[0], 0xf0);
    const { key, value } = (envelope.body as { put: { key: Uint8Array; value: Uint8Array } }).put;
    assert.equal(bytes.byteLength, 30 + key.length + value.length, 'the header, the key and the value, nothing more');
    assert.deepEqual(plain(decodeProposal(bytes)), plain(envelope));
  }
});

test('small put and txn proposals share slabs, a large one gets a buffer of its own, and none overlaps another', () => {
  const txn: Envelope = {
    origin,
    id: 9,
    body: { type: 'txn', txn: { compare: [], success: [put('t', 'v').body as RequestOp], failure: [] } },
  };
  const small = [encodeProposal(put('a', 'one')), encodeProposal(txn), encodeProposal(put('b', 'two'))];
  assert.ok(
    small.every((bytes) => bytes.buffer === small[0]!.buffer),
    'consecutive small proposals come from one slab',
  );
  const spans = small
    .map((bytes) => [bytes.byteOffset, bytes.byteOffset + bytes.byteLength] as const)
    .sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < spans.length; i++)
    assert.ok(spans[i]![0] >= spans[i - 1]![1], 'proposals carved from a slab do not overlap');
  const large = encodeProposal(put('big', 'x'.repeat(70_000)));
  assert.equal(large.byteLength, large.buffer.byteLength, 'a large proposal owns its buffer');
  // Each still decodes as written after the others were carved next to it.
  assert.equal(
    new TextDecoder().decode((decodeProposal(small[0]!).body as { put: { value: Uint8Array } }).put.value),
    'one',
  );
  assert.equal(decodeProposal(small[1]!).body.type, 'txn');
});

test('other proposals stay msgpack, own their buffer, and decode as written', () => {
  const grant: Envelope = {
    origin,
    id: 3,
    body: { type: 'leaseGrant', leaseGrant: { id: 0x1234_5678_9abc_def0n, ttlSeconds: 60 } },
  };
  const bytes = encodeProposal(grant);
  assert.notEqual(bytes[0], 0xf0);
  assert.equal(bytes.byteLength, bytes.buffer.byteLength);
  assert.deepEqual(decodeProposal(bytes), grant);
});

test('a put, txn or delete in msgpack is refused: they have one layout each, and msgpack is not it', () => {
  const packr = new Packr({ useRecords: false, int64AsType: 'bigint' });
  const deleteRange: Envelope = {
    origin,
    id: 6,
    body: { type: 'deleteRange', deleteRange: { key: Buffer.from('k'), rangeEnd: Buffer.alloc(0), prevKv: false } },
  };
  const txn: Envelope = { origin, id: 7, body: { type: 'txn', txn: { compare: [], success: [], failure: [] } } };
  for (const envelope of [put('k', 'v'), txn, deleteRange]) {
    assert.throws(() => decodeProposal(new Uint8Array(packr.pack(envelope))), /in msgpack/);
  }
});

test('a truncated put proposal is refused with what is wrong', () => {
  const bytes = encodeProposal(put('key', 'value'));
  assert.throws(() => decodeProposal(bytes.subarray(0, 20)), /shorter than its header/);
  const lying = new Uint8Array(bytes);
  new DataView(lying.buffer).setUint32(26, 1000);
  assert.throws(() => decodeProposal(lying), /runs past/);
});

test('a replayed entry is recognised as a membership proposal without decoding it, false alarms allowed', () => {
  const attributes: Envelope = {
    origin,
    id: 4,
    body: { type: 'memberAttributes', memberAttributes: { id: 9n, name: 'm1', clientUrls: ['http://127.0.0.1:2379'] } },
  };
  const txn = (value: string): Envelope => {
    const request = {
      key: new TextEncoder().encode('k'),
      value: new TextEncoder().encode(value),
      lease: 0n,
      prevKv: false,
      ignoreValue: false,
      ignoreLease: false,
    };
    return {
      origin,
      id: 5,
      body: { type: 'txn', txn: { compare: [], success: [{ type: 'put', put: request }], failure: [] } },
    };
  };
  assert.equal(mayBeMembershipProposal(encodeProposal(attributes)), true);
  const clusterVersion: Envelope = { origin, id: 7, body: { type: 'clusterVersion', clusterVersion: '3.4.0' } };
  assert.equal(mayBeMembershipProposal(encodeProposal(clusterVersion)), true);
  const compaction: Envelope = {
    origin,
    id: 8,
    body: { type: 'compaction', compaction: { revision: 3, physical: false } },
  };
  assert.equal(mayBeMembershipProposal(encodeProposal(compaction)), false);
  assert.equal(
    mayBeMembershipProposal(encodeProposal(put('memberAttributes', 'memberAttributes'))),
    false,
    'a put is never member attributes',
  );
  assert.equal(mayBeMembershipProposal(encodeProposal(txn('plain value'))), false);
  assert.equal(
    mayBeMembershipProposal(encodeProposal(txn('memberAttributes'))),
    false,
    'a txn is never member attributes',
  );
  const deleteRange: Envelope = {
    origin,
    id: 6,
    body: {
      type: 'deleteRange',
      deleteRange: { key: new TextEncoder().encode('memberAttributes'), rangeEnd: new Uint8Array(0), prevKv: false },
    },
  };
  assert.equal(mayBeMembershipProposal(encodeProposal(deleteRange)), false, 'a delete is never member attributes');
});

test('delete proposals round-trip through their protobuf layout, and a truncated one is refused', () => {
  const cases: Envelope[] = [
    {
      origin,
      id: 2 ** 40 + 1,
      body: { type: 'deleteRange', deleteRange: { key: Buffer.from('a'), rangeEnd: Buffer.from('z'), prevKv: true } },
    },
    {
      origin,
      id: 3,
      body: { type: 'deleteRange', deleteRange: { key: Buffer.from('k'), rangeEnd: Buffer.alloc(0), prevKv: false } },
    },
  ];
  for (const envelope of cases) {
    const bytes = encodeProposal(envelope);
    assert.equal(bytes[0], 0xf2);
    assert.deepEqual(plain(decodeProposal(bytes)), plain(envelope));
  }
  assert.throws(() => decodeProposal(encodeProposal(cases[0]!).subarray(0, 10)), /shorter than its header/);
  assert.throws(() => decodeProposal(encodeProposal(cases[0]!).subarray(0, 19)), /unexpected EOF/);
});

// Found by the fuzzer: msgpack that is not an envelope threw a TypeError reading `body.type`, and
// msgpack cut short could throw msgpackr's own errors.
test('bytes that are not a msgpack envelope are refused with a plain Error that says so', () => {
  const packr = new Packr({ useRecords: false });
  for (const [hex, text] of [
    ['01', /not an envelope with a typed body/],
    ['c0', /not an envelope with a typed body/],
    [Buffer.from(packr.pack({ origin: 1, id: 2 })).toString('hex'), /not an envelope with a typed body/],
    [Buffer.from(packr.pack({ body: { type: 7 } })).toString('hex'), /not an envelope with a typed body/],
    ['de0003a66f726967696e04a8706879736963616cc2', /not valid msgpack: Unexpected end of MessagePack data/],
  ] as const) {
    assert.throws(
      () => decodeProposal(Buffer.from(hex, 'hex')),
      (error: unknown) => Object.getPrototypeOf(error) === Error.prototype && text.test(String(error)),
      hex,
    );
  }
});
