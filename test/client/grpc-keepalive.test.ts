/**
 * etcd's --max-concurrent-streams and --grpc-keepalive-* flags as a client sees them, checked the
 * same way against real etcd 3.4 and tsetcd on loopback: the SETTINGS a server opens with, a
 * stream over the limit refused, grpc-go's PING strikes ending in GOAWAY too_many_pings, and the
 * server's own keepalive PING closing a client that does not answer it. Node's HTTP/2 client is
 * the polite client; a raw socket speaking frames is the one that opens too many streams or stays
 * silent. The pure rules behind these come first.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { existsSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { etcdHttp2ServerOptions, http2ServerOptions } from '../../actors/client/http2/server-options.js';
import { serveGrpcConnection } from '../../actors/client/http2/server.js';
import { HeaderDecoder } from '../../src/http2/hpack.js';
import {
  FrameFlag,
  FrameType,
  FrameWriter,
  Http2ErrorCode,
  Setting,
  http2Preface,
  pingStrikesAfter,
} from '../../src/http2/frames.js';
import {
  clientPrefaceMsMax,
  grpcKeepaliveIntervalMsDefault,
  grpcKeepalivePolicyMinTimeMsDefault,
  grpcKeepaliveTimeoutMsDefault,
  grpcPingStrikesMax,
  grpcPingWithoutStreamIntervalMs,
  unfinishedStreamIdleMsMax,
} from '../../src/lib/limits.js';
import { Member } from '../support/member.js';
import { loopbackHost } from '../support/ports.js';
import { etcdBinaryPath, etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';
import { GrpcTraffic } from '../../actors/client/grpc/call-stats.js';

/** Every test ends by itself well within this; the slowest waits about four seconds. */
const bounded = { timeout: 15_000 };
/** The longest any single frame or event is waited for. */
const frameWaitMs = 5_000;

// ---- the pure rules ----

describe("grpc-go's judgement of a client PING (pingStrikesAfter)", () => {
  const minTimeMs = 5_000;

  test('a PING after the server sent HEADERS or DATA clears the strikes however soon it came', () => {
    assert.equal(pingStrikesAfter(2, 0, true, 0, minTimeMs), 0);
    assert.equal(pingStrikesAfter(2, 0, true, 3, minTimeMs), 0);
  });

  test('with no stream open, a PING sooner than two hours after the last is a strike', () => {
    assert.equal(pingStrikesAfter(0, grpcPingWithoutStreamIntervalMs - 1, false, 0, minTimeMs), 1);
    assert.equal(pingStrikesAfter(1, grpcPingWithoutStreamIntervalMs, false, 0, minTimeMs), 1);
  });

  test('with a stream open, only a PING sooner than the minimum time is a strike', () => {
    assert.equal(pingStrikesAfter(1, minTimeMs - 1, false, 1, minTimeMs), 2);
    assert.equal(pingStrikesAfter(1, minTimeMs, false, 1, minTimeMs), 1);
  });

  test('the first PING on a connection, with no previous one, is never a strike', () => {
    assert.equal(pingStrikesAfter(0, Infinity, false, 0, minTimeMs), 0);
  });

  test('the third strike in a row is the one over grpcPingStrikesMax', () => {
    let strikes = 0;
    for (let ping = 1; ping <= 3; ping++) strikes = pingStrikesAfter(strikes, 1, false, 0, minTimeMs);
    assert.equal(grpcPingStrikesMax, 2);
    assert.ok(strikes > grpcPingStrikesMax, `expected 3 strikes, saw ${strikes}`);
  });
});

describe("etcd's flags as grpc-go server options (http2ServerOptions)", () => {
  const flags = {
    maxConcurrentStreams: 7,
    grpcKeepaliveMinTimeMs: 300,
    grpcKeepaliveIntervalMs: 1_000,
    grpcKeepaliveTimeoutMs: 2_000,
  };

  test('values above 0 pass through', () => {
    assert.deepEqual(http2ServerOptions(flags), {
      maxConcurrentStreams: 7,
      keepaliveMinTimeMs: 300,
      keepaliveIntervalMs: 1_000,
      keepaliveTimeoutMs: 2_000,
      prefaceMs: clientPrefaceMsMax,
      unfinishedStreamIdleMs: unfinishedStreamIdleMsMax,
    });
  });

  test("--grpc-keepalive-min-time 0 leaves grpc-go's own five minutes", () => {
    assert.equal(
      http2ServerOptions({ ...flags, grpcKeepaliveMinTimeMs: 0 }).keepaliveMinTimeMs,
      grpcKeepalivePolicyMinTimeMsDefault,
    );
  });

  test("an interval or a timeout of 0 leaves grpc-go's own two hours and twenty seconds for both", () => {
    for (const zeroed of [{ grpcKeepaliveIntervalMs: 0 }, { grpcKeepaliveTimeoutMs: 0 }]) {
      const options = http2ServerOptions({ ...flags, ...zeroed });
      assert.deepEqual(
        [options.keepaliveIntervalMs, options.keepaliveTimeoutMs],
        [grpcKeepaliveIntervalMsDefault, grpcKeepaliveTimeoutMsDefault],
      );
    }
  });
});

// ---- a raw client speaking frames ----

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** A HEADERS frame's fields, decoded in arrival order. */
  fields?: Map<string, string>;
  atMs: number;
}

/** One frame's bytes, laid out by the server's own FrameWriter (whose output real etcd clients read). */
function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const writer = new FrameWriter();
  writer.frame(type, flags, streamId, payload);
  return Buffer.concat(writer.take());
}

/** HPACK literals without indexing, each name and value shorter than 127 bytes. */
function literalHeaders(fields: Array<[string, string]>): Buffer {
  return Buffer.concat(
    fields.flatMap(([name, value]) => {
      assert.ok(name.length < 127 && value.length < 127, 'short header fields only');
      return [
        Buffer.from([0, name.length]),
        Buffer.from(name, 'latin1'),
        Buffer.from([value.length]),
        Buffer.from(value, 'latin1'),
      ];
    }),
  );
}

const watchPath = '/etcdserverpb.Watch/Watch';
const rangePath = '/etcdserverpb.KV/Range';
/** RangeRequest{key: "a"}, with gRPC's five-byte prefix. */
const rangeMessage = Buffer.from([0, 0, 0, 0, 3, 0x0a, 1, 0x61]);

function requestHeaders(path: string): Buffer {
  return literalHeaders([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', 'localhost'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
  ]);
}

/** A client connection at the frame level that ACKs the server's SETTINGS and nothing else. */
class FrameClient {
  readonly frames: Frame[] = [];
  closedAtMs: number | undefined;
  readonly openedAtMs = performance.now();
  private input = Buffer.alloc(0);
  private readonly decoder = new HeaderDecoder();
  private readonly arrivals = new EventEmitter();

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('close', () => {
      this.closedAtMs = performance.now();
      this.arrivals.emit('change');
    });
    socket.on('error', () => socket.destroy());
  }

  /** Connects and sends the preface and an empty SETTINGS. */
  static async open(port: number): Promise<FrameClient> {
    const socket = net.connect(port, loopbackHost);
    await once(socket, 'connect');
    const client = new FrameClient(socket);
    socket.write(Buffer.concat([http2Preface, frame(FrameType.settings, 0, 0)]));
    return client;
  }

  send(type: number, flags: number, streamId: number, payload?: Buffer): void {
    this.socket.write(frame(type, flags, streamId, payload));
  }

  /** The first frame matching `match`, waiting up to frameWaitMs; undefined once the connection closed without one. */
  async next(match: (received: Frame) => boolean): Promise<Frame | undefined> {
    const deadline = performance.now() + frameWaitMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined || this.closedAtMs !== undefined) return found;
      const leftMs = deadline - performance.now();
      assert.ok(leftMs > 0, `no matching frame within ${frameWaitMs} ms`);
      await Promise.race([once(this.arrivals, 'change'), sleep(leftMs, undefined, { ref: false })]);
    }
  }

  /** Resolves once the server has closed the connection, failing after frameWaitMs. */
  async closed(): Promise<number> {
    await this.next(() => false);
    assert.ok(this.closedAtMs !== undefined, 'the connection is closed');
    return this.closedAtMs;
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.input = Buffer.concat([this.input, chunk]);
    while (this.input.length >= 9 && this.input.length >= 9 + this.input.readUIntBE(0, 3)) {
      const length = this.input.readUIntBE(0, 3);
      const received: Frame = {
        type: this.input[3]!,
        flags: this.input[4]!,
        streamId: this.input.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.input.subarray(9, 9 + length)),
        atMs: performance.now(),
      };
      this.input = this.input.subarray(9 + length);
      if (received.type === FrameType.headers) {
        const fields: string[] = [];
        this.decoder.decode(received.payload, fields);
        received.fields = new Map(
          fields.flatMap((field, index) => (index % 2 === 0 ? [[field, fields[index + 1]!] as [string, string]] : [])),
        );
      }
      if (received.type === FrameType.settings && received.flags === 0) this.send(FrameType.settings, FrameFlag.ack, 0);
      this.frames.push(received);
    }
    this.arrivals.emit('change');
  }
}

/** The settings of the server's first SETTINGS frame, by identifier. */
async function firstSettings(client: FrameClient): Promise<Map<number, number>> {
  const settings = await client.next((received) => received.type === FrameType.settings && received.flags === 0);
  assert.ok(settings !== undefined, 'the server opens with SETTINGS');
  const values = new Map<number, number>();
  for (let at = 0; at < settings.payload.length; at += 6)
    values.set(settings.payload.readUInt16BE(at), settings.payload.readUInt32BE(at + 2));
  return values;
}

const isGoAway = (received: Frame) => received.type === FrameType.goaway;
const isServerPing = (received: Frame) => received.type === FrameType.ping && (received.flags & FrameFlag.ack) === 0;

// ---- Node's HTTP/2 client ----

interface GoAway {
  code: number;
  debug: string;
}

/** A Node HTTP/2 session to a member, with the GOAWAY it got (if any) kept. */
class NodeClient {
  readonly session: http2.ClientHttp2Session;
  goAway: GoAway | undefined;
  serverPings = 0;
  private readonly settingsArrived: Promise<unknown>;
  /** Resolves when the server ends the connection: the session itself stays open after a GOAWAY until told. */
  readonly serverEnded: Promise<unknown>;

  constructor(member: Member) {
    const socket = net.connect(member.clientPort, loopbackHost);
    // A GOAWAY with an error code makes the session emit 'error', which once() would reject with.
    this.serverEnded = once(socket, 'end').catch(() => undefined);
    this.session = http2.connect(member.clientUrl, { createConnection: () => socket });
    this.settingsArrived = once(this.session, 'remoteSettings').catch(() => undefined);
    this.session.on('error', () => undefined);
    this.session.on('goaway', (code: number, _lastStreamId: number, debug?: Buffer) => {
      this.goAway = { code, debug: debug?.toString('utf8') ?? '' };
    });
    this.session.on('ping', () => this.serverPings++);
  }

  /** Resolves once the server's SETTINGS have arrived. */
  async connected(): Promise<void> {
    await Promise.race([
      this.settingsArrived,
      sleep(frameWaitMs, undefined, { ref: false }).then(() => assert.fail('no SETTINGS from the server')),
    ]);
  }

  /** One PING and its ACK (or its failure), then up to 50 ms for a GOAWAY that follows the ACK in the same write. */
  async ping(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (!this.session.ping(() => resolve())) resolve();
    });
    const deadline = performance.now() + 50;
    while (this.goAway === undefined && !this.session.closed && performance.now() < deadline) await sleep(5);
  }

  /** PINGs `gapMs` apart (about 50 ms more, see ping()) until GOAWAY, at most `pingsMax`; returns how many were sent. */
  async pingUntilGoAway(pingsMax: number, gapMs = 0): Promise<number> {
    let pings = 0;
    while (pings < pingsMax && this.goAway === undefined && !this.session.closed) {
      if (pings > 0 && gapMs > 0) await sleep(gapMs);
      await this.ping();
      pings++;
    }
    return pings;
  }

  /** A stream that stays open: a Watch call whose client side never ends. */
  openWatch(): http2.ClientHttp2Stream {
    const stream = this.session.request({
      ':method': 'POST',
      ':path': watchPath,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.on('error', () => undefined);
    return stream;
  }

  /** A Range call; resolves with its grpc-status once it is over. */
  async range(): Promise<string> {
    const stream = this.session.request({
      ':method': 'POST',
      ':path': rangePath,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.on('error', () => undefined);
    let status = 'none';
    stream.on('trailers', (trailers) => (status = String(trailers['grpc-status'])));
    stream.resume();
    stream.end(rangeMessage);
    await Promise.race([once(stream, 'close'), sleep(frameWaitMs, undefined, { ref: false })]);
    return status;
  }

  close(): void {
    this.session.destroy();
  }
}

// ---- the members: real etcd 3.4 as the reference and tsetcd, started with the same flags ----

const sut = sutCommand();
const commands: MemberCommand[] = [
  ...(existsSync(etcdBinaryPath) ? [etcdCommand()] : []),
  ...(sut.command === undefined ? [] : [sut.command]),
];
const skip = sut.command === undefined ? sut.skipReason : false;

async function startMembers(extraFlags: string[]): Promise<Member[]> {
  return Promise.all(commands.map((command) => Member.start({ command, extraFlags })));
}

/**
 * Runs `observe` against every member at once and asserts they all saw the same; returns what the
 * last (tsetcd) saw, for the test to check against what etcd is known to do.
 */
async function sameOnEach<T>(members: Member[], observe: (member: Member) => Promise<T>): Promise<T> {
  const seen = await Promise.all(members.map(observe));
  for (let index = 1; index < seen.length; index++) {
    assert.deepEqual(
      seen[index],
      seen[0],
      `${members[index]!.command.label} saw what ${members[0]!.command.label} saw`,
    );
  }
  return seen.at(-1)!;
}

describe('--max-concurrent-streams 2 --grpc-keepalive-min-time 300ms on etcd and tsetcd', { skip }, () => {
  const minTimeMs = 300;
  let members: Member[] = [];

  before(async () => {
    members = await startMembers(['--max-concurrent-streams', '2', '--grpc-keepalive-min-time', `${minTimeMs}ms`]);
  });

  after(async () => {
    await Promise.all(members.map((member) => member.destroy()));
  });

  test("the server's first SETTINGS announces MAX_CONCURRENT_STREAMS 2", bounded, async () => {
    const announced = await sameOnEach(members, async (member) => {
      const client = new NodeClient(member);
      try {
        await client.connected();
        return client.session.remoteSettings.maxConcurrentStreams;
      } finally {
        client.close();
      }
    });
    assert.equal(announced, 2);
  });

  test(
    'a third concurrent stream is refused with REFUSED_STREAM, and the connection and the other streams go on',
    bounded,
    async () => {
      const seen = await sameOnEach(members, async (member) => {
        const client = await FrameClient.open(member.clientPort);
        try {
          for (const streamId of [1, 3, 5])
            client.send(FrameType.headers, FrameFlag.endHeaders, streamId, requestHeaders(watchPath));
          const refused = await client.next((received) => received.type === FrameType.rstStream);
          // Stream 3 ends, which makes room for a Range call on stream 7.
          client.send(FrameType.rstStream, 0, 3, Buffer.from([0, 0, 0, Http2ErrorCode.cancel]));
          client.send(FrameType.headers, FrameFlag.endHeaders, 7, requestHeaders(rangePath));
          client.send(FrameType.data, FrameFlag.endStream, 7, rangeMessage);
          const trailers = await client.next(
            (received) => received.streamId === 7 && (received.flags & FrameFlag.endStream) !== 0,
          );
          return {
            refusedStream: refused?.streamId,
            refusedCode: refused?.payload.readUInt32BE(0),
            rangeStatus: trailers?.fields?.get('grpc-status'),
            otherResets: client.frames
              .filter((received) => received.type === FrameType.rstStream && received !== refused)
              .map((received) => received.streamId),
            goAway: client.frames.some(isGoAway),
          };
        } finally {
          client.close();
        }
      });
      assert.deepEqual(seen, {
        refusedStream: 5,
        refusedCode: Http2ErrorCode.refusedStream,
        rangeStatus: '0',
        otherResets: [],
        goAway: false,
      });
    },
  );

  test(
    'with no stream open, even PINGs further apart than the minimum time are strikes, and the fourth gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings"',
    bounded,
    async () => {
      const seen = await sameOnEach(members, async (member) => {
        const client = new NodeClient(member);
        try {
          await client.connected();
          const pings = await client.pingUntilGoAway(6, minTimeMs + 100);
          const serverEnded = await Promise.race([
            client.serverEnded.then(() => true),
            sleep(frameWaitMs, false, { ref: false }),
          ]);
          return { pings, goAway: client.goAway, serverEnded };
        } finally {
          client.close();
        }
      });
      // The first PING has none before it to be judged against; the three after it are strikes.
      assert.deepEqual(seen, {
        pings: grpcPingStrikesMax + 2,
        goAway: { code: Http2ErrorCode.enhanceYourCalm, debug: 'too_many_pings' },
        serverEnded: true,
      });
    },
  );

  test(
    'with a stream open, PINGs further apart than the minimum time are no strikes, and closer ones are',
    bounded,
    async () => {
      const seen = await sameOnEach(members, async (member) => {
        const client = new NodeClient(member);
        try {
          await client.connected();
          client.openWatch();
          const spacedPings = await client.pingUntilGoAway(5, minTimeMs + 100);
          const spacedGoAway = client.goAway;
          await sleep(minTimeMs + 100);
          const rapidPings = await client.pingUntilGoAway(6);
          return { spacedPings, spacedGoAway, rapidPings, goAway: client.goAway };
        } finally {
          client.close();
        }
      });
      // The first rapid PING still came the minimum time after the last spaced one; the three after it are strikes.
      assert.deepEqual(seen, {
        spacedPings: 5,
        spacedGoAway: undefined,
        rapidPings: grpcPingStrikesMax + 2,
        goAway: { code: Http2ErrorCode.enhanceYourCalm, debug: 'too_many_pings' },
      });
    },
  );

  test(
    "a PING right after each answer, as grpc-go's BDP estimator sends them, is never a strike",
    bounded,
    async () => {
      const seen = await sameOnEach(members, async (member) => {
        const client = new NodeClient(member);
        try {
          await client.connected();
          const statuses: string[] = [];
          for (let call = 0; call < 8; call++) {
            statuses.push(await client.range());
            await client.ping();
          }
          return { statuses, goAway: client.goAway, closed: client.session.closed };
        } finally {
          client.close();
        }
      });
      assert.deepEqual(seen, { statuses: Array(8).fill('0'), goAway: undefined, closed: false });
    },
  );
});

describe('--grpc-keepalive-interval 1s --grpc-keepalive-timeout 1s on etcd and tsetcd', { skip }, () => {
  const intervalMs = 1_000;
  const timeoutMs = 1_000;
  /** How far the server's timing may stray from the flags on a loaded machine. */
  const slackMs = 600;
  let members: Member[] = [];

  before(async () => {
    members = await startMembers([
      '--grpc-keepalive-interval',
      `${intervalMs}ms`,
      '--grpc-keepalive-timeout',
      `${timeoutMs}ms`,
    ]);
  });

  after(async () => {
    await Promise.all(members.map((member) => member.destroy()));
  });

  test(
    "at the default --max-concurrent-streams the first SETTINGS still announces 4294967295, as etcd's grpc-go does",
    bounded,
    async () => {
      const announced = await sameOnEach(members, async (member) => {
        const client = await FrameClient.open(member.clientPort);
        try {
          return (await firstSettings(client)).get(Setting.maxConcurrentStreams);
        } finally {
          client.close();
        }
      });
      assert.equal(announced, 2 ** 32 - 1);
    },
  );

  test(
    "a silent client gets the server's PING after the interval, then the connection closes after the timeout without GOAWAY",
    bounded,
    async () => {
      const seen = await sameOnEach(members, async (member) => {
        const client = await FrameClient.open(member.clientPort);
        try {
          const ping = await client.next(isServerPing);
          assert.ok(ping !== undefined, `${member.command.label} sent a PING`);
          const closedAtMs = await client.closed();
          const pingAfterMs = ping.atMs - client.openedAtMs;
          const closeAfterPingMs = closedAtMs - ping.atMs;
          assert.ok(
            pingAfterMs > intervalMs - slackMs && pingAfterMs < intervalMs + slackMs,
            `${member.command.label} pinged after ${pingAfterMs} ms`,
          );
          assert.ok(
            closeAfterPingMs > timeoutMs - slackMs && closeAfterPingMs < timeoutMs + slackMs,
            `${member.command.label} closed ${closeAfterPingMs} ms after its PING`,
          );
          return {
            pingPayload: ping.payload.toString('hex'),
            serverPings: client.frames.filter(isServerPing).length,
            goAway: client.frames.some(isGoAway),
          };
        } finally {
          client.close();
        }
      });
      assert.deepEqual(seen, { pingPayload: '0000000000000000', serverPings: 1, goAway: false });
    },
  );

  test("a client that answers the server's PINGs keeps its connection past several intervals", bounded, async () => {
    const seen = await sameOnEach(members, async (member) => {
      const client = new NodeClient(member);
      try {
        await client.connected();
        await sleep(3 * intervalMs + timeoutMs / 2);
        return {
          pingedTwiceOrMore: client.serverPings >= 2,
          closed: client.session.closed,
          status: await client.range(),
        };
      } finally {
        client.close();
      }
    });
    assert.deepEqual(seen, { pingedTwiceOrMore: true, closed: false, status: '0' });
  });
});

// ---- our server alone, for what a member cannot be started with cheaply ----

describe('serveGrpcConnection on its own', () => {
  const routes = {
    byPath: new Map(),
    services: new Set<string>(),
    receiveLimitBytes: 1 << 20,
    logger: pino({ level: 'silent' }),
    traffic: new GrpcTraffic(),
  };

  async function settingsWith(maxConcurrentStreams: number): Promise<Map<number, number>> {
    const server = net.createServer((socket) =>
      serveGrpcConnection(socket, routes, { ...etcdHttp2ServerOptions, maxConcurrentStreams }),
    );
    await new Promise<void>((resolve) => server.listen(0, loopbackHost, resolve));
    const client = await FrameClient.open((server.address() as net.AddressInfo).port);
    try {
      return await firstSettings(client);
    } finally {
      client.close();
      server.close();
    }
  }

  test('--max-concurrent-streams 0 means no limit and no announcement, as grpc-go takes it', bounded, async () => {
    assert.equal((await settingsWith(0)).has(Setting.maxConcurrentStreams), false);
    assert.equal((await settingsWith(5)).get(Setting.maxConcurrentStreams), 5);
  });
});
