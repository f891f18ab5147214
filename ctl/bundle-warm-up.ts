/**
 * The one-shot commands the bundle build runs before it takes V8's code cache of the bundle. V8
 * compiles a function when it is first called and a code cache holds only what was compiled by
 * then, so a cache taken after the top level alone leaves every function of a get or a put to be
 * compiled from source at each start. Running put, get and del first puts them in the cache.
 *
 * They run in the build's process (runCaptured) against a loopback HTTP/2 server that answers
 * etcd's KV Put, Range and DeleteRange with fixed responses encoded by src/api, so the build needs
 * no etcd; what the commands print is checked, so a warm-up that stopped reaching the printers
 * fails the build instead of leaving a cold cache behind.
 */
import { createServer, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { encodeDeleteRangeResponse, encodePutResponse, encodeRangeResponse } from '../src/api/response-encoder.js';
import type { ResponseHeader } from '../src/api/types.js';
import type { CtlModule } from './bundle-loader.cjs';
import { grpcFrameHeaderBytes } from './grpc-unary.js';

const header: ResponseHeader = { clusterId: 1n, memberId: 2n, revision: 2, raftTerm: 2 };
const key = new TextEncoder().encode('warm-up');
const value = new TextEncoder().encode('value');

/** The fixed answer to each method the warm-up commands call. */
const answers: Readonly<Record<string, Uint8Array>> = {
  '/etcdserverpb.KV/Put': encodePutResponse(header, {}),
  '/etcdserverpb.KV/Range': encodeRangeResponse(header, {
    kvs: [{ key, value, createRevision: 2, modRevision: 2, version: 1, lease: 0n }],
    more: false,
    count: 1,
  }),
  '/etcdserverpb.KV/DeleteRange': encodeDeleteRangeResponse(header, { deleted: 1, prevKvs: [] }),
};

/** The command lines run, each with what etcdctl prints for the answers above. */
const commands: ReadonlyArray<{ readonly args: readonly string[]; readonly printed: string }> = [
  { args: ['put', 'warm-up', 'value'], printed: 'OK\n' },
  { args: ['get', 'warm-up'], printed: 'warm-up\nvalue\n' },
  { args: ['del', 'warm-up'], printed: '1\n' },
];

/** A gRPC answer: the response framed as gRPC frames a message, then grpc-status 0 in trailers. */
function answer(stream: ServerHttp2Stream, path: string): void {
  const message = answers[path];
  if (message === undefined) {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
    return;
  }
  const framed = Buffer.alloc(grpcFrameHeaderBytes + message.length);
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, grpcFrameHeaderBytes);
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(framed);
}

/** Runs the warm-up commands through `ctl`; throws when one prints other than etcdctl would. */
export async function warmUp(ctl: CtlModule): Promise<void> {
  const server = createServer();
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    // The request is read to its end before the answer, as a server would.
    stream.resume();
    stream.once('end', () => answer(stream, String(headers[':path'])));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  try {
    const endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const { args, printed } of commands) {
      const result = await ctl.runCaptured([`--endpoints=${endpoint}`, '--command-timeout=10s', ...args]);
      const seen = { code: result.code, stdout: String(result.stdout), stderr: String(result.stderr) };
      const expected = { code: 0, stdout: printed, stderr: '' };
      if (JSON.stringify(seen) !== JSON.stringify(expected))
        throw new Error(
          `expected the warm-up's ${args[0]} to print ${JSON.stringify(expected)}, saw ${JSON.stringify(seen)}`,
        );
    }
  } finally {
    // A client may keep its connection open after the command; closing the server waits for none.
    for (const session of sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
