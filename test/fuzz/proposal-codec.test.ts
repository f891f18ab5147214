import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EtcdError } from '../../src/api/errors.js';
import { decodeProposal, encodeProposal, type Envelope } from '../../src/api/proposal-codec.js';
import { rangeRequestWith } from '../../src/api/types.js';
import { parseOrRefuse, runFuzz } from './fuzz.js';

const origin = 0x1234_5678_9abc_def0n;
const key = Buffer.from('key');
/** Proposals of each binary layout (put, txn, delete) and a msgpack one. */
const envelopes: Envelope[] = [
  {
    origin,
    id: 7,
    body: {
      type: 'put',
      put: { key, value: Buffer.from('v'), lease: 5n, prevKv: true, ignoreValue: false, ignoreLease: true },
    },
  },
  {
    origin,
    id: 8,
    body: {
      type: 'txn',
      txn: {
        compare: [],
        success: [{ type: 'range', range: rangeRequestWith({ key, limit: 3 }) }],
        failure: [{ type: 'deleteRange', deleteRange: { key, rangeEnd: Buffer.alloc(0), prevKv: false } }],
      },
    },
  },
  { origin, id: 9, body: { type: 'deleteRange', deleteRange: { key, rangeEnd: Buffer.from('z'), prevKv: true } } },
  { origin, id: 10, body: { type: 'compaction', compaction: { revision: 4, physical: false } } },
];
const corpus = envelopes.map((envelope) => encodeProposal(envelope));

test('a proposal decodes to an envelope that encodes back to the same envelope, or throws a plain Error', () => {
  runFuzz('proposals', {
    corpus,
    check(input) {
      const envelope = parseOrRefuse(() => decodeProposal(input), Error, EtcdError);
      if (envelope === undefined) return;
      const type = envelope.body.type;
      // Ids are each member's own counter, below 2^53; a larger one read from the log matches no waiter.
      if ((type === 'put' || type === 'txn' || type === 'deleteRange') && Number.isSafeInteger(envelope.id))
        assert.deepEqual(decodeProposal(encodeProposal(envelope)), envelope);
    },
  });
});
