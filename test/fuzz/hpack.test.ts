import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeaderDecoder, HpackError, defaultHeaderTableBytes, huffmanDecode } from '../../src/http2/hpack.js';
import { parseOrRefuse, runFuzz } from './fuzz.js';

/** Header blocks of RFC 7541's examples (C.3 and C.4, requests in order) and a table size update. */
const corpus = [
  '828684410f7777772e6578616d706c652e636f6d',
  '828684be58086e6f2d6361636865',
  '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565',
  '828684418cf1e3c2e5f23a6ba0ab90f4ff',
  '828684be5886a8eb10649cbf',
  '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf',
  '3fe11f828684be',
  '20828684',
].map((hex) => Buffer.from(hex, 'hex'));

/** The decoder's private table, read to check that it stays within its bound. */
interface DecoderTable {
  usedBytes: number;
  maxBytes: number;
  entries: string[];
  entrySizes: number[];
}

test('the HPACK decoder returns headers or throws HpackError, with its table and output bounded', () => {
  runFuzz('hpack', {
    corpus,
    check(input) {
      // Up to three blocks in a row through one decoder, so the dynamic table carries over.
      const decoder = new HeaderDecoder();
      const cuts = [0, input.length];
      if (input.length > 2) cuts.splice(1, 0, (input[0]! * 7) % input.length);
      for (let i = 0; i + 1 < cuts.length; i++) {
        const block = Buffer.from(input.subarray(cuts[i], cuts[i + 1]));
        const out: string[] = [];
        const listBytes = parseOrRefuse(() => decoder.decode(block, out), HpackError);
        const table = decoder as unknown as DecoderTable;
        assert.ok(table.usedBytes <= table.maxBytes && table.maxBytes <= defaultHeaderTableBytes);
        assert.equal(table.entries.length, 2 * table.entrySizes.length);
        if (listBytes === undefined) return;
        // Each header costs at least one octet of the block, and holds at most a table entry or what its octets decode to.
        assert.ok(out.length <= 2 * block.length, `${out.length / 2} headers from ${block.length} bytes`);
        assert.ok(listBytes <= (block.length / 2 + 1) * (defaultHeaderTableBytes + 32) + 2 * block.length);
      }
    },
  });
});

test('the Huffman decoder returns octets or throws HpackError, never more than 8/5 of its input', () => {
  runFuzz('huffman', {
    corpus: corpus.map((block) => block.subarray(block.length > 4 ? 4 : 0)),
    check(input) {
      const out = parseOrRefuse(() => huffmanDecode(input), HpackError);
      if (out !== undefined) assert.ok(out.length <= Math.ceil((input.length * 8) / 5));
    },
  });
});
