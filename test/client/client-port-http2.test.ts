import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { listenClient, type ClientListener } from '../../actors/client/listener.js';
import { createGrpcServer } from '../../actors/client/grpc/router.js';
import { FakeKv } from '../api/fake-kv.js';

let listener: ClientListener;
let port: number;

before(async () => {
  const grpcServer = createGrpcServer({ kv: new FakeKv(), logger: pino({ level: 'silent' }) });
  listener = await listenClient({
    host: '127.0.0.1',
    port: 0,
    grpcServer,
    http: { health: () => ({ health: true, reason: '' }) },
  });
  port = listener.port;
});

after(async () => {
  await listener.close();
});

/** Unary Range calls on one session with the given :authority; resolves with each call's grpc-status. */
function rangeCalls(
  authority: string,
  count: number,
  extra: (i: number) => Record<string, string> = () => ({}),
): Promise<string[]> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  const calls = Array.from(
    { length: count },
    (_, i) =>
      new Promise<string>((resolve) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/etcdserverpb.KV/Range',
          ':authority': authority,
          'content-type': 'application/grpc',
          te: 'trailers',
          ...extra(i),
        });
        let status = 'no answer';
        stream.on('response', (headers) => (status = String(headers['grpc-status'] ?? status)));
        stream.on('trailers', (trailers) => (status = String(trailers['grpc-status'])));
        stream.on('error', (error: Error) => (status = error.message));
        stream.on('close', () => resolve(status));
        stream.resume();
        stream.end(Buffer.from([0, 0, 0, 0, 3, 0x0a, 0x01, 0x61]));
      }),
  );
  const deadline = setTimeout(() => session.destroy(), 10_000);
  return Promise.all(calls).finally(() => {
    clearTimeout(deadline);
    session.close();
  });
}

describe('HTTP/2 on the client port', () => {
  test('calls whose :authority carries a scheme, as etcdctl 3.4 sends per endpoint, are answered', async () => {
    const statuses = await rangeCalls(`http://127.0.0.1:${port}`, 40, (i) => ({
      'x-trace': `${i}-${'abcdefghij'.repeat(i % 5 === 0 ? 40 : 2)}`,
    }));
    assert.deepEqual(
      statuses,
      statuses.map(() => '0'),
    );
  });

  test('a request whose headers need CONTINUATION frames still arrives whole', async () => {
    const statuses = await rangeCalls(`http://127.0.0.1:${port}`, 2, () => ({ 'x-pad': 'p'.repeat(20_000) }));
    assert.deepEqual(statuses, ['0', '0']);
  });

  test('calls with a plain host:port authority are answered', async () => {
    assert.deepEqual(await rangeCalls(`127.0.0.1:${port}`, 3), ['0', '0', '0']);
  });

  test('a malformed first header block closes that connection with GOAWAY and the port keeps serving', async () => {
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let types: number[] = [];
    const goaway = new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        // Acknowledge the server's first SETTINGS, then send a block that indexes past the table.
        if (received.length === 1)
          socket.write(
            Buffer.concat([Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0]), Buffer.from([0, 0, 1, 1, 5, 0, 0, 0, 1, 0xbe])]),
          );
        const bytes = Buffer.concat(received);
        types = [];
        for (let at = 0; at + 9 <= bytes.length; at += 9 + bytes.readUIntBE(at, 3)) types.push(bytes[at + 3]!);
        if (types.includes(7)) resolve();
      });
      socket.on('close', () => resolve());
      setTimeout(resolve, 5_000);
    });
    socket.on('error', () => undefined);
    socket.write(
      Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
        Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
      ]),
    );
    await goaway;
    socket.destroy();
    assert.ok(types.includes(7), `a GOAWAY frame among ${JSON.stringify(types)}`);
    assert.deepEqual(await rangeCalls(`http://127.0.0.1:${port}`, 1), ['0']);
  });

  test('a connection that closes before its first request leaves the port serving', async () => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.resume();
    socket.end(
      Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
        Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
      ]),
    );
    await new Promise<void>((resolve) => socket.on('close', () => resolve()));
    assert.deepEqual(await rangeCalls(`127.0.0.1:${port}`, 1), ['0']);
  });
});
