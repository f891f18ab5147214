import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { before, describe, test } from 'node:test';
import { HeaderDecoder, HpackError, huffmanDecode } from '../../src/http2/hpack.js';

describe('HPACK Huffman decoding', () => {
  // RFC 7541, Appendix C.4.
  for (const [hex, text] of [
    ['f1e3c2e5f23a6ba0ab90f4ff', 'www.example.com'],
    ['a8eb10649cbf', 'no-cache'],
    ['25a849e95ba97d7f', 'custom-key'],
    ['25a849e95bb8e8b4bf', 'custom-value'],
  ] as const) {
    test(`decodes RFC 7541's "${text}"`, () => {
      assert.equal(huffmanDecode(Buffer.from(hex, 'hex')).toString('latin1'), text);
    });
  }

  test('refuses a string that would decode to more octets than it is allowed', () => {
    // Ten zero bytes are sixteen five-bit codes for '0'.
    assert.equal(huffmanDecode(Buffer.alloc(10), 16).toString('latin1'), '0'.repeat(16));
    assert.throws(
      () => huffmanDecode(Buffer.alloc(10), 15),
      (error) => error instanceof HpackError && error.message === 'header string too long',
    );
  });

  test('refuses padding longer than seven bits or not made of ones', () => {
    assert.throws(() => huffmanDecode(Buffer.from('f1e3c2e5f23a6ba0ab90f4ffff', 'hex')), HpackError);
    assert.throws(() => huffmanDecode(Buffer.from('f1e3c2e5f23a6ba0ab90f4fe', 'hex')), HpackError);
  });
});

/** Header blocks exactly as Node's HTTP/2 client (nghttp2's encoder) sends them. */
let blocks: Buffer[] = [];
const sent: Array<Record<string, string>> = [];

before(async () => {
  const received: Buffer[] = [];
  const server = net.createServer((socket) => {
    socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  for (let i = 0; i < 80; i++) {
    const headers = {
      ':method': 'POST',
      ':path': `/etcdserverpb.KV/${i % 3 === 0 ? 'Put' : 'Range'}`,
      ':authority': `http://127.0.0.1:${port}`,
      'content-type': 'application/grpc',
      te: 'trailers',
      // Distinct long values push older entries out of the 4,096-byte table.
      'x-trace': `${i}-${'abcdefghij'.repeat(i % 7 === 0 ? 30 : 3)}`,
    };
    sent.push(headers);
    const stream = session.request(headers, { endStream: true });
    stream.on('error', () => undefined);
  }
  const want = sent.length;
  for (let waited = 0; waited < 100; waited++) {
    blocks = headerBlocks(Buffer.concat(received));
    if (blocks.length >= want) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  session.destroy();
  server.close();
});

/** The header block of each HEADERS frame after the client preface. */
function headerBlocks(bytes: Buffer): Buffer[] {
  const found: Buffer[] = [];
  for (let at = 24; at + 9 <= bytes.length;) {
    const length = bytes.readUIntBE(at, 3);
    if (at + 9 + length > bytes.length) break;
    const flags = bytes[at + 4]!;
    if (bytes[at + 3] === 1) {
      assert.equal(flags & 0x28, 0, 'the test expects unpadded HEADERS without priority');
      found.push(bytes.subarray(at + 9, at + 9 + length));
    }
    at += 9 + length;
  }
  return found;
}

/** One block decoded with `decoder`, as name/value pairs in order. */
function decodePairs(decoder: HeaderDecoder, block: Buffer): Array<[string, string]> {
  const fields: string[] = [];
  decoder.decode(block, fields);
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < fields.length; i += 2) pairs.push([fields[i]!, fields[i + 1]!]);
  return pairs;
}

/** A block decoded into a record; these requests never repeat a name. */
function asRecord(decoder: HeaderDecoder, block: Buffer): Record<string, string> {
  return Object.fromEntries(decodePairs(decoder, block));
}

describe('HPACK header blocks from nghttp2', () => {
  test('decode to the headers sent, through indexing and eviction', () => {
    assert.equal(blocks.length, sent.length);
    const decoder = new HeaderDecoder();
    for (const [i, block] of blocks.entries()) {
      assert.deepEqual(asRecord(decoder, block), { ...sent[i], ':scheme': 'http' }, `request ${i}`);
    }
  });

  test('malformed blocks throw HpackError', () => {
    assert.throws(() => new HeaderDecoder().decode(Buffer.from([0xff]), []), HpackError);
    assert.throws(() => new HeaderDecoder().decode(Buffer.from([0xbe]), []), HpackError);
    assert.throws(() => new HeaderDecoder().decode(Buffer.from([0x41, 0x05, 0x61]), []), HpackError);
  });
});

/** Decodes `hex` blocks in order with one decoder, as one direction of a connection would. */
function decodeInOrder(decoder: HeaderDecoder, hexBlocks: readonly string[]): Array<Array<[string, string]>> {
  return hexBlocks.map((hex) => decodePairs(decoder, Buffer.from(hex, 'hex')));
}

/** The three requests of RFC 7541 Appendix C.3 and C.4, as decoded headers. */
const rfcRequests: Array<Array<[string, string]>> = [
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
    ['cache-control', 'no-cache'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ],
];

/** The three responses of RFC 7541 Appendix C.5, which a 256-byte table makes evict entries. */
const rfcResponses: Array<Array<[string, string]>> = [
  [
    [':status', '302'],
    ['cache-control', 'private'],
    ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
    ['location', 'https://www.example.com'],
  ],
  [
    [':status', '307'],
    ['cache-control', 'private'],
    ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
    ['location', 'https://www.example.com'],
  ],
  [
    [':status', '200'],
    ['cache-control', 'private'],
    ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
    ['location', 'https://www.example.com'],
    ['content-encoding', 'gzip'],
    ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
  ],
];

describe('the HPACK HeaderDecoder', () => {
  test('decodes RFC 7541 C.3, three requests without Huffman coding, through one dynamic table', () => {
    const decoded = decodeInOrder(new HeaderDecoder(), [
      '828684410f7777772e6578616d706c652e636f6d',
      '828684be58086e6f2d6361636865',
      '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565',
    ]);
    assert.deepEqual(decoded, rfcRequests);
  });

  test('decodes RFC 7541 C.4, the same requests Huffman-coded, through one dynamic table', () => {
    const decoded = decodeInOrder(new HeaderDecoder(), [
      '828684418cf1e3c2e5f23a6ba0ab90f4ff',
      '828684be5886a8eb10649cbf',
      '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf',
    ]);
    assert.deepEqual(decoded, rfcRequests);
  });

  test('decodes RFC 7541 C.5 after a size update to 256 bytes, evicting the oldest entries as it goes', () => {
    const decoder = new HeaderDecoder();
    // 0x3f 0xe1 0x01 is a dynamic table size update to 256 (31 + 225 in a 5-bit prefix).
    const decoded = decodeInOrder(decoder, [
      '3fe101' +
        '4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d',
      '4803333037c1c0bf',
      '88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31',
    ]);
    assert.deepEqual(decoded, rfcResponses);
    // After C.5.3 the table holds three entries (215 bytes), the date third; a fourth index is gone.
    assert.deepEqual(decodeInOrder(decoder, ['c0']), [[['date', 'Mon, 21 Oct 2013 20:13:22 GMT']]]);
    assert.throws(() => decoder.decode(Buffer.from([0xc1]), []), HpackError);
  });

  test('a size update to zero empties the table so an index that worked before throws', () => {
    const decoder = new HeaderDecoder();
    assert.deepEqual(decodeInOrder(decoder, ['400a637573746f6d2d6b65790c637573746f6d2d76616c7565', 'be']), [
      [['custom-key', 'custom-value']],
      [['custom-key', 'custom-value']],
    ]);
    decoder.decode(Buffer.from([0x20]), []);
    assert.throws(() => decoder.decode(Buffer.from([0xbe]), []), HpackError);
  });

  test('an entry larger than the whole table empties it and is not added', () => {
    const decoder = new HeaderDecoder();
    // Resize to 64 bytes: "custom-key: custom-value" costs 54, so a second one evicts the first.
    decoder.decode(Buffer.from('3f21' + '400a637573746f6d2d6b65790c637573746f6d2d76616c7565', 'hex'), []);
    assert.deepEqual(decodeInOrder(decoder, ['be']), [[['custom-key', 'custom-value']]]);
    // A 40-byte value under a 1-byte name makes an entry of 73 bytes, more than the table holds.
    const value = 'v'.repeat(40);
    const block = Buffer.concat([Buffer.from([0x40, 0x01, 0x78, value.length]), Buffer.from(value, 'latin1')]);
    const fields: string[] = [];
    decoder.decode(block, fields);
    assert.deepEqual(fields, ['x', value]);
    assert.throws(() => decoder.decode(Buffer.from([0xbe]), []), HpackError);
  });

  test('a size update above the table size it was given, or after a header, throws', () => {
    const decoder = new HeaderDecoder(4096);
    // 0x3f 0xe2 0x1f is a size update to 4097.
    assert.throws(() => decoder.decode(Buffer.from([0x3f, 0xe2, 0x1f]), []), HpackError);
    assert.throws(() => decoder.decode(Buffer.from([0x82, 0x20]), []), HpackError);
    const fields: string[] = [];
    decoder.decode(Buffer.from([0x3f, 0xe1, 0x1f, 0x82]), fields);
    assert.deepEqual(fields, [':method', 'GET']);
  });

  test('an index past the table, index 0, and a truncated block throw HpackError', () => {
    const decoder = new HeaderDecoder();
    assert.throws(() => decoder.decode(Buffer.from([0xbe]), []), HpackError);
    assert.throws(() => decoder.decode(Buffer.from([0x80]), []), HpackError);
    assert.throws(() => decoder.decode(Buffer.from([0x7f, 0x05]), []), HpackError);
    assert.throws(() => decoder.decode(Buffer.from([0x40, 0x05, 0x61]), []), HpackError);
    assert.throws(() => decoder.decode(Buffer.from([0xff]), []), HpackError);
  });

  test("returns the header list size by RFC 9113's count of name, value and 32 octets per field", () => {
    const fields: string[] = [];
    const bytes = new HeaderDecoder().decode(Buffer.from('828684410f7777772e6578616d706c652e636f6d', 'hex'), fields);
    assert.equal(bytes, 7 + 3 + 32 + (7 + 4 + 32) + (5 + 1 + 32) + (10 + 15 + 32));
  });

  test('fields past the list limit are not kept, the size returned is over it, and the table stays in step', () => {
    const literal = (value: string) => Buffer.from([0x40, 1, 0x61, value.length, ...Buffer.from(value)]);
    // A 100-octet value entered at index 62, then referenced ten times: 133 octets of list each.
    const block = Buffer.concat([literal('x'.repeat(100)), Buffer.alloc(10, 0xbe), literal('y'.repeat(50))]);
    const limited = new HeaderDecoder();
    const unlimited = new HeaderDecoder();
    const kept: string[] = [];
    const all: string[] = [];
    const keptBytes = limited.decode(block, kept, 300);
    assert.equal(unlimited.decode(block, all), 11 * 133 + 83);
    assert.deepEqual(kept, all.slice(0, 4));
    assert.ok(keptBytes > 300, `returned ${keptBytes}`);
    // The literal past the limit still entered the table: index 62 is now 'y's, on both.
    const next = Buffer.from([0xbe, 0xbf]);
    const [afterLimited, afterAll]: [string[], string[]] = [[], []];
    limited.decode(next, afterLimited);
    unlimited.decode(next, afterAll);
    assert.deepEqual(afterLimited, ['a', 'y'.repeat(50), 'a', 'x'.repeat(100)]);
    assert.deepEqual(afterLimited, afterAll);
  });
});
