import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { before, describe, test } from 'node:test';
import { DynamicTableMirror, HpackError, acceptableAuthority, decodeHeaderBlock, huffmanDecode, rewriteHeaderBlock } from '../../src/lib/hpack.js';

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

function asRecord(headers: Array<[string, Buffer | undefined]>): Record<string, string> {
  return Object.fromEntries(headers.map(([name, value]) => [name, value === undefined ? `<static ${name}>` : value.toString('latin1')]));
}

describe('HPACK header blocks from nghttp2', () => {
  test('decode to the headers sent, through indexing and eviction', () => {
    assert.equal(blocks.length, sent.length);
    const table = new DynamicTableMirror();
    for (const [i, block] of blocks.entries()) {
      const decoded = asRecord(decodeHeaderBlock(block, table));
      for (const [name, value] of Object.entries(sent[i]!)) {
        if (decoded[name] === `<static ${name}>`) continue;
        assert.equal(decoded[name], value, `request ${i}, header ${name}`);
      }
    }
  });

  test('a rewritten :authority keeps every later block decoding to the same headers', () => {
    const original = new DynamicTableMirror();
    const rewriting = new DynamicTableMirror();
    const rewritten = new DynamicTableMirror();
    let changed = 0;
    for (const [i, block] of blocks.entries()) {
      const expected = asRecord(decodeHeaderBlock(block, original));
      const out = rewriteHeaderBlock(block, rewriting, acceptableAuthority);
      if (out !== undefined) changed++;
      const seen = asRecord(decodeHeaderBlock(out ?? block, rewritten));
      expected[':authority'] = expected[':authority']!.replaceAll('/', '-');
      assert.deepEqual(seen, expected, `request ${i}`);
    }
    assert.ok(changed >= 1, 'the first block carries the authority as a literal');
  });

  test('an acceptable :authority is left alone and other names are never touched', () => {
    assert.equal(acceptableAuthority(':authority', Buffer.from('127.0.0.1:2379')), undefined);
    assert.equal(acceptableAuthority('x-trace', Buffer.from('http://a/b')), undefined);
    assert.equal(acceptableAuthority(':authority', Buffer.from('unix://a b'))!.toString(), 'unix:--a-b');
  });

  test('malformed blocks throw HpackError', () => {
    assert.throws(() => decodeHeaderBlock(Buffer.from([0xff]), new DynamicTableMirror()), HpackError);
    assert.throws(() => decodeHeaderBlock(Buffer.from([0xbe]), new DynamicTableMirror()), HpackError);
    assert.throws(() => decodeHeaderBlock(Buffer.from([0x41, 0x05, 0x61]), new DynamicTableMirror()), HpackError);
  });
});
