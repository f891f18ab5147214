import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeaderDecoder, HpackError, defaultHeaderTableBytes, huffmanDecode } from '../../src/http2/hpack.js';
import { GrpcHeaderEncoder, percentEncode } from '../../actors/client/grpc/headers.js';
import { parseOrRefuse, randomBytes, runFuzz } from './fuzz.js';
import { Prng } from '../../src/lib/prng.js';

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

/** The dynamic table entries of a decoder, newest first. */
const tableOf = (decoder: HeaderDecoder) => (decoder as unknown as DecoderTable).entries;

test('a header list limit only drops fields from the end, and the dynamic table stays as without it', () => {
  runFuzz('hpack-list-limit', {
    corpus,
    check(input) {
      if (input.length < 2) return;
      // The first byte picks the limit (0 to 2,040 octets), the rest is two blocks in a row.
      const limitBytes = input[0]! * 8;
      const blocks = [
        input.subarray(1, 1 + Math.floor((input.length - 1) / 2)),
        input.subarray(1 + Math.floor((input.length - 1) / 2)),
      ];
      const limited = new HeaderDecoder();
      const unlimited = new HeaderDecoder();
      for (const bytes of blocks) {
        const block = Buffer.from(bytes);
        const all: string[] = [];
        const allBytes = parseOrRefuse(() => unlimited.decode(block, all), HpackError);
        // The limited decoder skips literals it drops without decoding them, so it may accept what the other refuses.
        if (allBytes === undefined) return;
        const kept: string[] = [];
        const keptBytes = limited.decode(block, kept, limitBytes);
        assert.deepEqual(kept, all.slice(0, kept.length));
        if (allBytes <= limitBytes) assert.equal(keptBytes, allBytes);
        else assert.ok(keptBytes > limitBytes && kept.length < all.length);
        assert.deepEqual(tableOf(limited), tableOf(unlimited));
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

/** Messages for grpc-message: empty, plain, with '%', and with characters outside ASCII. */
const messages = ['', 'etcdserver: request timed out', '100% done', 'caf\u00e9 \u{1f600}', 'line\nbreak'];

/**
 * Runs the script in `input` against our answer encoder, one byte per step, and decodes each block
 * it writes with a decoder kept in step: every block must decode to the fields the step asked for.
 */
function encodeAndDecode(input: Uint8Array): void {
  const encoder = new GrpcHeaderEncoder();
  const decoder = new HeaderDecoder();
  for (let at = 0; at + 2 < input.length; at += 3) {
    const [step, code, choice] = [input[at]! % 5, input[at + 1]! % 17, input[at + 2]!];
    const message = messages[choice % messages.length]!;
    const httpStatus = [200, 404, 503][choice % 3]!;
    let block: Buffer;
    let expected: string[];
    if (step === 0) {
      block = encoder.responseHeaders();
      expected = [':status', '200', 'content-type', 'application/grpc'];
    } else if (step === 1) {
      block = encoder.okTrailers();
      expected = ['grpc-status', '0'];
    } else if (step === 2) {
      block = encoder.statusTrailers(code, message);
      expected = ['grpc-status', String(code)];
      if (message !== '') expected.push('grpc-message', percentEncode(message));
    } else if (step === 3) {
      block = encoder.trailersOnly(code, message, httpStatus);
      expected = [':status', String(httpStatus), 'content-type', 'application/grpc', 'grpc-status', String(code)];
      if (message !== '') expected.push('grpc-message', percentEncode(message));
    } else {
      encoder.peerTableBytes([0, 100, 4096, 65536][choice % 4]!);
      continue;
    }
    const out: string[] = [];
    decoder.decode(block, out);
    assert.deepEqual(out, expected);
  }
}

test('every header block our answer encoder writes decodes to the fields it was asked for', () => {
  const scripts = Array.from({ length: 8 }, (_, seed) => randomBytes(new Prng(seed), 60));
  runFuzz('hpack-round-trip', { corpus: scripts, check: encodeAndDecode });
});
