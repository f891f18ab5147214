/**
 * The known HTTP/2 attacks against a running tsetcd member's client port, played from raw
 * sockets. In each, the attacker gets the answer that ends its attack (GOAWAY, RST_STREAM, a
 * refusal, a closed or unread connection), another client (etcdctl) keeps putting and getting
 * within its command timeout, and the member's peak resident memory stays within
 * memoryGrowthBytesMax of where it was before the attack.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { readProcessStats } from '../../bench/proc-stats.js';
import { createGrpcServer } from '../../actors/client/grpc/router.js';
import { serveGrpcConnection } from '../../actors/client/http2/server.js';
import { etcdHttp2ServerOptions } from '../../actors/client/http2/server-options.js';
import { listenClient } from '../../actors/client/listener.js';
import { FrameFlag, FrameType, Http2ErrorCode, http2Preface } from '../../src/http2/frames.js';
import { clientPrefaceMsMax, headerStringBytesMax } from '../../src/lib/limits.js';
import { FakeKv } from '../api/fake-kv.js';
import { hasOpenssl, makeCertificates } from '../support/tls.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import {
  Attacker,
  frameBytes,
  grpcMessage,
  grpcRequestFields,
  headerBlock,
  hpackInteger,
  literalField,
  putRequestBytes,
  settingsPayload,
  uint32Payload,
} from '../support/raw-http2.js';
import { sutCommand } from '../support/sut.js';

const sut = sutCommand();
const skip = sut.command === undefined ? sut.skipReason : false;
/** How far the member's peak RSS may rise above its RSS before an attack: generous, as the brief of each guard is "bounded". */
const memoryGrowthBytesMax = 100 * 1024 * 1024;
/** Every attack here ends well within this. */
const bounded = { timeout: 120_000 };
/** Tests that wait for a close (after clientPrefaceMsMax or clientHandshakeMsMax); a missing timeout shows as this test timeout. */
const closesWithin = { timeout: 3 * clientPrefaceMsMax };
const putPath = '/etcdserverpb.KV/Put';
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

let member: Member;

before(async () => {
  if (sut.command === undefined) return;
  member = await Member.start({ command: sut.command });
});

after(async () => {
  await member?.destroy();
});

/** etcdctl puts a key and reads it back, each within etcdctl's own 5 s command timeout. */
async function anotherClientServed(key: string): Promise<void> {
  const put = await runEtcdctl(member.clientUrl, ['--command-timeout=5s', 'put', key, `value of ${key}`]);
  assert.equal(put.code, 0, `etcdctl put during the attack: ${put.stderr}`);
  const get = await runEtcdctl(member.clientUrl, ['--command-timeout=5s', 'get', key, '--print-value-only']);
  assert.equal(get.code, 0, `etcdctl get during the attack: ${get.stderr}`);
  assert.equal(get.stdout, `value of ${key}\n`);
}

/**
 * Runs `attack` while etcdctl puts and gets, then checks the member's peak RSS. The attack
 * resolves once it has done its worst, with its connections still open, and returns them so
 * they are closed only after the memory is read.
 */
async function underAttack(t: TestContext, name: string, attack: () => Promise<Attacker[]>): Promise<void> {
  // Resets the member's peak RSS (VmHWM) to its current RSS, so the peak read after is this attack's.
  writeFileSync(`/proc/${member.pid}/clear_refs`, '5');
  const rssBeforeBytes = readProcessStats(member.pid).rssKb * 1024;
  const attackers = attack();
  try {
    await anotherClientServed(`${name}-during`);
    const open = await attackers;
    await anotherClientServed(`${name}-after`);
    const peakBytes = readProcessStats(member.pid).peakRssKb * 1024;
    t.diagnostic(`member RSS before ${mib(rssBeforeBytes)}, peak after ${mib(peakBytes)}`);
    assert.ok(
      peakBytes - rssBeforeBytes < memoryGrowthBytesMax,
      `the member's peak RSS ${mib(peakBytes)} rose ${mib(peakBytes - rssBeforeBytes)} over ${mib(rssBeforeBytes)}`,
    );
    for (const attacker of open) attacker.close();
  } finally {
    for (const attacker of await attackers.catch(() => [])) attacker.close();
  }
}

const headers = (streamId: number, flags: number, block: Buffer) =>
  frameBytes(FrameType.headers, flags, streamId, block);
const putBlock = headerBlock(grpcRequestFields(putPath));

/** Frames for `count` streams from `firstStreamId` on, each made by `streamFrames`. */
function streams(firstStreamId: number, count: number, streamFrames: (streamId: number) => Buffer[]): Buffer {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) frames.push(...streamFrames(firstStreamId + 2 * i));
  return Buffer.concat(frames);
}

/** A chunk source for Attacker.flood: `total` chunks made by `make(index)`. */
function chunks(total: number, make: (index: number) => Buffer): () => Buffer | undefined {
  let index = 0;
  return () => (index < total ? make(index++) : undefined);
}

describe('HTTP/2 attacks on a member', { skip }, () => {
  test('rapid reset (HEADERS, DATA, RST_STREAM in a loop) gets GOAWAY ENHANCE_YOUR_CALM', bounded, async (t) => {
    let attacker: Attacker | undefined;
    await underAttack(t, 'rapid-reset', async () => {
      attacker = await Attacker.connect(member.clientPort);
      const body = grpcMessage(putRequestBytes('rapid', 'reset'));
      const batch = 100;
      // 100,000 calls cancelled at once, unless the server calls time first.
      await attacker.flood(
        chunks(1_000, (index) =>
          streams(1 + 2 * batch * index, batch, (id) => [
            headers(id, FrameFlag.endHeaders, putBlock),
            frameBytes(FrameType.data, FrameFlag.endStream, id, body),
            frameBytes(FrameType.rstStream, 0, id, uint32Payload(Http2ErrorCode.cancel)),
          ]),
        ),
      );
      await attacker.settled();
      return [attacker];
    });
    assert.deepEqual(attacker?.tally.goAway, {
      code: Http2ErrorCode.enhanceYourCalm,
      reason: 'too many stream resets',
    });
  });

  test('a CONTINUATION flood without END_HEADERS gets GOAWAY ENHANCE_YOUR_CALM', bounded, async (t) => {
    const attackers: Attacker[] = [];
    await underAttack(t, 'continuation', async () => {
      for (const fragmentBytes of [16_384, 0]) {
        const attacker = await Attacker.connect(member.clientPort);
        attackers.push(attacker);
        attacker.write(headers(1, 0, putBlock));
        // 160 MiB of fragments, or two million empty CONTINUATION frames.
        const fragment = frameBytes(FrameType.continuation, 0, 1, Buffer.alloc(fragmentBytes, 0x41));
        const perChunk = fragmentBytes === 0 ? 10_000 : 16;
        await attacker.flood(
          chunks(fragmentBytes === 0 ? 200 : 640, () => Buffer.concat(Array(perChunk).fill(fragment))),
        );
        await attacker.settled();
      }
      return attackers;
    });
    for (const attacker of attackers)
      assert.deepEqual(attacker.tally.goAway, {
        code: Http2ErrorCode.enhanceYourCalm,
        reason: 'header block too large',
      });
  });

  test('a SETTINGS flood from a client that never reads stalls: the server stops reading it', bounded, async (t) => {
    let attacker: Attacker | undefined;
    let writtenBytes = 0;
    const offeredBytes = 600 * 1024 * 1024;
    await underAttack(t, 'settings-flood', async () => {
      attacker = await Attacker.connect(member.clientPort);
      attacker.stopReading();
      const settings = frameBytes(FrameType.settings, 0, 0, settingsPayload([[0x4, 65_535]]));
      const chunk = Buffer.concat(Array(4_096).fill(settings));
      writtenBytes = await attacker.flood(chunks(Math.ceil(offeredBytes / chunk.length), () => chunk));
      return [attacker];
    });
    t.diagnostic(`the attacker wrote ${mib(writtenBytes)} of ${mib(offeredBytes)} before it stalled`);
    assert.ok(writtenBytes < offeredBytes / 10, `the server read ${mib(writtenBytes)} of SETTINGS it could not answer`);
    assert.equal(attacker?.closed, false, 'the connection waits for its client to read, it is not closed');
  });

  test('a PING flood gets GOAWAY ENHANCE_YOUR_CALM too_many_pings', bounded, async (t) => {
    let attacker: Attacker | undefined;
    await underAttack(t, 'ping-flood', async () => {
      attacker = await Attacker.connect(member.clientPort);
      const ping = frameBytes(FrameType.ping, 0, 0, Buffer.alloc(8));
      await attacker.flood(chunks(1_000, () => Buffer.concat(Array(1_000).fill(ping))));
      await attacker.ended;
      return [attacker];
    });
    assert.deepEqual(attacker?.tally.goAway, { code: Http2ErrorCode.enhanceYourCalm, reason: 'too_many_pings' });
  });

  test('a flood of empty DATA frames on an open stream gets GOAWAY ENHANCE_YOUR_CALM', bounded, async (t) => {
    let attacker: Attacker | undefined;
    await underAttack(t, 'empty-data', async () => {
      attacker = await Attacker.connect(member.clientPort);
      attacker.write(headers(1, FrameFlag.endHeaders, putBlock));
      const empty = frameBytes(FrameType.data, 0, 1);
      await attacker.flood(chunks(1_000, () => Buffer.concat(Array(1_000).fill(empty))));
      await attacker.settled();
      return [attacker];
    });
    assert.deepEqual(attacker?.tally.goAway, { code: Http2ErrorCode.enhanceYourCalm, reason: 'too many empty frames' });
  });

  test(
    'an HPACK bomb (one 4 KB table entry referenced 16,000 times a block) is RST_STREAM FRAME_SIZE_ERROR per stream, and the connection still serves a Put',
    bounded,
    async (t) => {
      let attacker: Attacker | undefined;
      const bombs = 500;
      await underAttack(t, 'hpack-bomb', async () => {
        attacker = await Attacker.connect(member.clientPort);
        // Stream 1 is a real Put whose block leaves a 4,000-byte header at index 62 of the table.
        const seed = Buffer.concat([putBlock, literalField('x-bomb', 'b'.repeat(4_000), true)]);
        const put = (key: string) => grpcMessage(putRequestBytes(key, 'bomb'));
        attacker.write(
          Buffer.concat([
            headers(1, FrameFlag.endHeaders, seed),
            frameBytes(FrameType.data, FrameFlag.endStream, 1, put('bomb-seed')),
          ]),
        );
        const bomb = Buffer.concat([putBlock, Buffer.alloc(16_000, hpackInteger(0x80, 7, 62)[0])]);
        await attacker.flood(
          chunks(bombs / 50, (index) =>
            streams(3 + 100 * index, 50, (id) => [headers(id, FrameFlag.endHeaders | FrameFlag.endStream, bomb)]),
          ),
        );
        const last = 3 + 2 * bombs;
        attacker.write(
          Buffer.concat([
            headers(last, FrameFlag.endHeaders, putBlock),
            frameBytes(FrameType.data, FrameFlag.endStream, last, put('bomb-after')),
          ]),
        );
        const seen = attacker;
        await seen.waitFor('both Puts answered', () => seen.tally.trailers.length === 2);
        return [attacker];
      });
      assert.equal(attacker?.tally.goAway, undefined);
      assert.deepEqual([...attacker!.tally.resets], [[Http2ErrorCode.frameSizeError, bombs]]);
      assert.deepEqual(
        attacker!.tally.trailers.map((fields) => fields['grpc-status']),
        ['0', '0'],
      );
    },
  );

  test('a Huffman literal that decodes past the string limit gets GOAWAY COMPRESSION_ERROR', bounded, async (t) => {
    let attacker: Attacker | undefined;
    await underAttack(t, 'huffman', async () => {
      attacker = await Attacker.connect(member.clientPort);
      // Zero bytes are Huffman code 00000 ('0') five bits at a time: 8/5 octets out per byte in.
      const encodedBytes = Math.ceil((headerStringBytesMax * 5) / 8 / 5) * 5 + 5;
      const block = Buffer.concat([
        putBlock,
        Buffer.from([0x00, 1, 0x79]),
        Buffer.from(hpackInteger(0x80, 7, encodedBytes)),
        Buffer.alloc(encodedBytes),
      ]);
      const frames: Buffer[] = [];
      for (let at = 0; at < block.length; at += 16_384) {
        const end = Math.min(block.length, at + 16_384);
        const type = at === 0 ? FrameType.headers : FrameType.continuation;
        frames.push(frameBytes(type, end === block.length ? FrameFlag.endHeaders : 0, 1, block.subarray(at, end)));
      }
      attacker.write(Buffer.concat(frames));
      await attacker.settled();
      return [attacker];
    });
    assert.equal(attacker?.tally.goAway?.code, Http2ErrorCode.compressionError);
  });

  test(
    'streams opened and never finished are refused once their connection holds its bound, with --max-concurrent-streams unlimited',
    bounded,
    async (t) => {
      let attacker: Attacker | undefined;
      const opened = 60_000;
      await underAttack(t, 'unfinished-streams', async () => {
        attacker = await Attacker.connect(member.clientPort);
        await attacker.flood(
          chunks(opened / 500, (index) =>
            streams(1 + 1_000 * index, 500, (id) => [headers(id, FrameFlag.endHeaders, putBlock)]),
          ),
        );
        const seen = attacker;
        await seen.waitFor('a refused stream', () => seen.tally.resets.has(Http2ErrorCode.refusedStream));
        return [attacker];
      });
      const refused = attacker!.tally.resets.get(Http2ErrorCode.refusedStream) ?? 0;
      assert.ok(refused > 0, 'some streams were refused');
      assert.equal(attacker!.tally.goAway, undefined);
    },
  );

  test(
    'streams that each buffer part of a large request are answered "etcdserver: too many requests" past the bound',
    bounded,
    async (t) => {
      let attacker: Attacker | undefined;
      const streamCount = 2_000;
      await underAttack(t, 'partial-requests', async () => {
        attacker = await Attacker.connect(member.clientPort);
        // Each message announces 1 MiB and sends 60 KiB of it: 2,000 of them would hold 117 MiB.
        const partial = Buffer.alloc(60 * 1024, 0x61);
        partial.writeUInt32BE(1024 * 1024, 1);
        partial[0] = 0;
        await attacker.flood(
          chunks(streamCount / 10, (index) =>
            streams(1 + 20 * index, 10, (id) => {
              const frames = [headers(id, FrameFlag.endHeaders, putBlock)];
              for (let at = 0; at < partial.length; at += 16_384)
                frames.push(frameBytes(FrameType.data, 0, id, partial.subarray(at, at + 16_384)));
              return frames;
            }),
          ),
        );
        const seen = attacker;
        await seen.waitFor('a refusal', () => seen.tally.trailers.length > 0);
        return [attacker];
      });
      assert.deepEqual(
        {
          status: attacker!.tally.trailers[0]?.['grpc-status'],
          message: attacker!.tally.trailers[0]?.['grpc-message'],
        },
        { status: '8', message: 'etcdserver: too many requests' },
      );
    },
  );

  test('clients that connect and send nothing, or stop inside the preface, are closed', closesWithin, async (t) => {
    const attackers: Attacker[] = [];
    await underAttack(t, 'silent', async () => {
      for (let i = 0; i < 30; i++) {
        const silent = await Attacker.connect(member.clientPort, false);
        const partPreface = await Attacker.connect(member.clientPort, false);
        partPreface.write(http2Preface.subarray(0, 10));
        const noSettings = await Attacker.connect(member.clientPort, false);
        noSettings.write(http2Preface);
        attackers.push(silent, partPreface, noSettings);
      }
      await Promise.all(attackers.map((attacker) => attacker.ended));
      return attackers;
    });
    assert.ok(attackers.every((attacker) => attacker.closed));
  });
});

describe('HTTP/2 guards on a bare connection', () => {
  test('a stream whose request never finishes is reset with CANCEL once idle', closesWithin, async () => {
    const routes = createGrpcServer({ kv: new FakeKv(), logger: pino({ level: 'silent' }) });
    const server = net.createServer((socket) =>
      serveGrpcConnection(socket, routes, { ...etcdHttp2ServerOptions, unfinishedStreamIdleMs: 200 }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const attacker = await Attacker.connect((server.address() as net.AddressInfo).port);
    try {
      attacker.write(headers(1, FrameFlag.endHeaders, putBlock));
      attacker.write(headers(3, FrameFlag.endHeaders, putBlock));
      attacker.write(frameBytes(FrameType.data, 0, 3, Buffer.alloc(3)));
      await attacker.waitFor('two resets', () => (attacker.tally.resets.get(Http2ErrorCode.cancel) ?? 0) === 2);
      assert.deepEqual([...attacker.tally.resets], [[Http2ErrorCode.cancel, 2]]);
    } finally {
      attacker.close();
      server.close();
    }
  });

  test(
    'a TLS client that never completes its handshake is closed, while others are served',
    { ...closesWithin, skip: hasOpenssl() ? false : 'openssl is not installed' },
    async () => {
      const certs = makeCertificates();
      const files = certs.member('server');
      const listener = await listenClient({
        host: '127.0.0.1',
        port: 0,
        grpcServer: createGrpcServer({ kv: new FakeKv(), logger: pino({ level: 'silent' }) }),
        http: { health: () => ({ health: true, reason: '' }) },
        tls: { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) },
      });
      try {
        const stalled = await Promise.all(
          Array.from({ length: 20 }, async () => {
            const socket = net.connect(listener.port, '127.0.0.1');
            socket.on('error', () => socket.destroy());
            await once(socket, 'connect');
            return socket;
          }),
        );
        const endpoint = `https://127.0.0.1:${listener.port}`;
        const put = await runEtcdctl(endpoint, ['--cacert', files.trustedCaFile, 'put', 'k', 'v']);
        assert.equal(put.code, 0, put.stderr);
        await Promise.all(stalled.map((socket) => (socket.destroyed ? undefined : once(socket, 'close'))));
      } finally {
        await listener.close();
        certs.remove();
      }
    },
  );
});
