import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeProposal, encodeProposal, mayBeMemberAttributes, type Envelope } from '../../src/api/proposal-codec.js';

const origin = 0x8e9e_05c5_2164_694dn;

function put(key: string, value: string, extra: Partial<{ lease: bigint; prevKv: boolean; ignoreValue: boolean; ignoreLease: boolean }> = {}): Envelope {
  return {
    origin,
    id: 2 ** 40 + 7,
    body: { type: 'put', put: { key: new TextEncoder().encode(key), value: new TextEncoder().encode(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false, ...extra } },
  };
}

/** Byte fields compared by content, whatever their class. */
function plain(envelope: Envelope): unknown {
  return JSON.parse(JSON.stringify(envelope, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value instanceof Uint8Array ? [...value] : value)));
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
    assert.equal(bytes.byteLength, bytes.buffer.byteLength, 'the encoding owns its buffer exactly');
    assert.deepEqual(plain(decodeProposal(bytes)), plain(envelope));
  }
});

test('other proposals stay msgpack, own their buffer, and decode as written', () => {
  const grant: Envelope = { origin, id: 3, body: { type: 'leaseGrant', leaseGrant: { id: 0x1234_5678_9abc_def0n, ttlSeconds: 60 } } };
  const bytes = encodeProposal(grant);
  assert.notEqual(bytes[0], 0xf0);
  assert.equal(bytes.byteLength, bytes.buffer.byteLength);
  assert.deepEqual(decodeProposal(bytes), grant);
});

test('a truncated put proposal is refused with what is wrong', () => {
  const bytes = encodeProposal(put('key', 'value'));
  assert.throws(() => decodeProposal(bytes.subarray(0, 20)), /shorter than its header/);
  const lying = new Uint8Array(bytes);
  new DataView(lying.buffer).setUint32(26, 1000);
  assert.throws(() => decodeProposal(lying), /runs past/);
});

test('a replayed entry is recognised as member attributes without decoding it, false alarms allowed', () => {
  const attributes: Envelope = { origin, id: 4, body: { type: 'memberAttributes', memberAttributes: { id: 9n, name: 'm1', clientUrls: ['http://127.0.0.1:2379'] } } };
  const txn = (value: string): Envelope => {
    const request = { key: new TextEncoder().encode('k'), value: new TextEncoder().encode(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false };
    return { origin, id: 5, body: { type: 'txn', txn: { compare: [], success: [{ type: 'put', put: request }], failure: [] } } };
  };
  assert.equal(mayBeMemberAttributes(encodeProposal(attributes)), true);
  assert.equal(mayBeMemberAttributes(encodeProposal(put('memberAttributes', 'memberAttributes'))), false, 'a put is never member attributes');
  assert.equal(mayBeMemberAttributes(encodeProposal(txn('plain value'))), false);
  assert.equal(mayBeMemberAttributes(encodeProposal(txn('memberAttributes'))), false, 'a txn is never member attributes');
  // A msgpack proposal that happens to carry the name is a false alarm: it is decoded, and decodes as what it is.
  const deleteRange: Envelope = { origin, id: 6, body: { type: 'deleteRange', deleteRange: { key: new TextEncoder().encode('memberAttributes'), rangeEnd: new Uint8Array(0), prevKv: false } } };
  const lookalike = encodeProposal(deleteRange);
  assert.equal(mayBeMemberAttributes(lookalike), true);
  assert.equal(decodeProposal(lookalike).body.type, 'deleteRange');
});
