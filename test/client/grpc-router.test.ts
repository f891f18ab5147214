import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { listenClient, type ClientListener } from '../../actors/client/listener.js';
import { createGrpcServer } from '../../actors/client/grpc/router.js';
import { errors } from '../../src/api/errors.js';
import { encodeTxnRequest } from '../../src/api/request-encoder.js';
import { rangeRequestWith, type RequestOp, type TxnRequest } from '../../src/api/types.js';
import { requestBytesDefault } from '../../src/lib/limits.js';
import { FakeKv, fakeClusterId, fakeMemberId, fakeRaftTerm } from '../api/fake-kv.js';

const run = promisify(execFile);

interface EtcdctlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** etcdctl logs retries as JSON lines on stderr before its own "Error: ..." line. */
function lastLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  return lines[lines.length - 1] ?? '';
}

let listener: ClientListener;
let endpoint: string;
const kv = new FakeKv();
let healthy = true;
/** The cluster version /version reports; undefined: not decided yet. */
let clusterVersion: string | undefined = '3.4.0';
const logged: unknown[] = [];

async function etcdctl(args: string[], input?: string): Promise<EtcdctlResult> {
  const options = { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 8 * 1024 * 1024 };
  const child = run('/usr/bin/etcdctl', ['--endpoints', endpoint, '--command-timeout=5s', ...args], options);
  if (input !== undefined) child.child.stdin?.end(input);
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

function rawUnary(path: string, body: Buffer): Promise<{ code: number; details: string } | Buffer> {
  const client = new grpc.Client(endpoint, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (buffer: Buffer) => buffer,
      (buffer: Buffer) => buffer,
      body,
      (error, response) => {
        client.close();
        resolve(error ? { code: error.code, details: error.details } : response!);
      },
    );
  });
}

async function httpGet(path: string, method = 'GET'): Promise<{ status: number; body: string; headers: Headers }> {
  const response = await fetch(`http://${endpoint}${path}`, { method });
  return { status: response.status, body: await response.text(), headers: response.headers };
}

before(async () => {
  const logger = pino({ level: 'error' }, { write: (line: string) => logged.push(JSON.parse(line)) });
  const grpcServer = createGrpcServer({
    kv,
    logger,
    healthy: () => healthy,
    handlers: {
      'etcdserverpb.Maintenance/Status': async () => ({ version: '3.4.23', raftTerm: '7' }),
    },
  });
  listener = await listenClient({
    host: '127.0.0.1',
    port: 0,
    grpcServer,
    http: {
      health: () => (healthy ? { health: true, reason: '' } : { health: false, reason: 'no leader' }),
      clusterVersion: () => clusterVersion,
    },
  });
  endpoint = `127.0.0.1:${listener.port}`;
});

after(async () => {
  await listener.close();
});

describe('etcdctl 3.4 against the gRPC server', () => {
  test('put then get prints the key and value', async () => {
    assert.deepEqual(await etcdctl(['put', 'greeting', 'hello']), { code: 0, stdout: 'OK\n', stderr: '' });
    const got = await etcdctl(['get', 'greeting']);
    assert.equal(got.stdout, 'greeting\nhello\n');
  });

  test('get -w json shows every header field with the member identity', async () => {
    const got = await etcdctl(['get', 'greeting', '-w', 'json']);
    // etcdctl prints uint64s as bare JSON numbers, beyond double precision, so match the text.
    assert.match(got.stdout, new RegExp(`"cluster_id":${fakeClusterId}`));
    assert.match(got.stdout, new RegExp(`"member_id":${fakeMemberId}`));
    assert.match(got.stdout, /"revision":\d+/);
    assert.match(got.stdout, new RegExp(`"raft_term":${fakeRaftTerm}`));
    assert.match(got.stdout, /"count":1/);
  });

  test('prefix get, delete and the deleted count come back as etcd prints them', async () => {
    await etcdctl(['put', 'fruit/apple', 'red']);
    await etcdctl(['put', 'fruit/kiwi', 'green']);
    assert.equal((await etcdctl(['get', '--prefix', '--keys-only', 'fruit/'])).stdout, 'fruit/apple\n\nfruit/kiwi\n\n');
    assert.equal((await etcdctl(['del', '--prefix', 'fruit/'])).stdout, '2\n');
    assert.equal((await etcdctl(['get', '--prefix', 'fruit/'])).stdout, '');
  });

  test('a txn runs the branch its comparison selects', async () => {
    const script = 'value("greeting") = "hello"\n\nput txn-key yes\nget greeting\n\nput txn-key no\n\n';
    const result = await etcdctl(['txn'], script);
    assert.equal(result.stdout, 'SUCCESS\n\nOK\n\ngreeting\nhello\n');
    assert.equal((await etcdctl(['get', '--print-value-only', 'txn-key'])).stdout, 'yes\n');
  });

  test("a txn that puts the same key twice is refused with etcd's message", async () => {
    const result = await etcdctl(['txn'], '\nput twice 1\nput twice 2\n\n\n');
    assert.equal(result.code, 1);
    assert.equal(lastLine(result.stderr), 'Error: etcdserver: duplicate key given in txn request');
  });

  test("compaction reports the revision and a second one reports etcd's compacted error", async () => {
    const revision = JSON.parse(
      (await etcdctl(['get', 'greeting', '-w', 'json'])).stdout.replace(/:(\d{16,})/g, ':"$1"'),
    ).header.revision as number;
    assert.equal((await etcdctl(['compaction', String(revision)])).stdout, `compacted revision ${revision}\n`);
    const again = await etcdctl(['compaction', String(revision)]);
    assert.equal(again.code, 1);
    assert.equal(lastLine(again.stderr), 'Error: etcdserver: mvcc: required revision has been compacted');
  });

  test("an unimplemented method fails with grpc-go's unknown method text", async () => {
    const result = await etcdctl(['lease', 'grant', '10']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /code = Unimplemented desc = unknown method LeaseGrant for service etcdserverpb.Lease/);
  });

  test('a put over --max-request-bytes gets "request is too large"', async () => {
    const result = await etcdctl(['put', 'big'], 'x'.repeat(1.6 * 1024 * 1024));
    assert.equal(result.code, 1);
    assert.equal(lastLine(result.stderr), 'Error: etcdserver: request is too large');
  });

  test("the size limit falls on the same byte as etcd 3.4.23's", async () => {
    const largest = 1.5 * 1024 * 1024 - 24;
    assert.equal((await etcdctl(['put', 'k'], 'x'.repeat(largest))).stdout, 'OK\n');
    const over = await etcdctl(['put', 'k'], 'x'.repeat(largest + 1));
    assert.equal(lastLine(over.stderr), 'Error: etcdserver: request is too large');
  });

  test('a 2 MiB put is stopped by etcdctl itself, as it is against real etcd', async () => {
    const result = await etcdctl(['put', 'big'], 'x'.repeat(2 * 1024 * 1024));
    assert.equal(result.code, 1);
    assert.equal(
      lastLine(result.stderr),
      'Error: rpc error: code = ResourceExhausted desc = trying to send message larger than max (2097162 vs. 2097152)',
    );
  });

  test('an empty key is refused before reaching the store', async () => {
    const result = await etcdctl(['put', '', 'v']);
    assert.equal(lastLine(result.stderr), 'Error: etcdserver: key is not provided');
  });

  test('a plugged-in Maintenance/Status handler answers endpoint status', async () => {
    const result = await etcdctl(['endpoint', 'status', '-w', 'json']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /"version":"3.4.23"/);
  });
});

describe('the npm etcd3 client against the gRPC server', () => {
  test('puts, gets, deletes and runs a txn', async () => {
    const client = new Etcd3({ hosts: `http://${endpoint}` });
    try {
      await client.put('npm/one').value('1');
      assert.equal(await client.get('npm/one').string(), '1');
      const txn = await client.if('npm/one', 'Value', '==', '1').then(client.put('npm/two').value('2')).commit();
      assert.equal(txn.succeeded, true);
      assert.deepEqual(await client.getAll().prefix('npm/').strings(), { 'npm/one': '1', 'npm/two': '2' });
      await client.delete().prefix('npm/');
      assert.equal(await client.get('npm/one').string(), null);
    } finally {
      client.close();
    }
  });
});

describe('errors from the KV service', () => {
  test('an EtcdError keeps its code and message', async () => {
    kv.failNext = errors.noSpace();
    const response = await rawUnary('/etcdserverpb.KV/Range', Buffer.from([0x0a, 0x01, 0x61]));
    assert.deepEqual(response, { code: 8, details: 'etcdserver: mvcc: database space exceeded' });
  });

  test('any other error answers UNKNOWN with its message and is logged', async () => {
    kv.failNext = new Error('disk on fire');
    const response = await rawUnary('/etcdserverpb.KV/Range', Buffer.from([0x0a, 0x01, 0x61]));
    assert.deepEqual(response, { code: 2, details: 'disk on fire' });
    assert.ok(logged.length > 0);
  });
});

describe('the receive limit', () => {
  test("a 2 MiB put from a client without a send limit gets grpc-go's text, as real etcd answers", async () => {
    // PutRequest{key: "big", value: 2 MiB}: tag, length, key, tag, 3-byte length varint, value.
    const value = Buffer.alloc(2 * 1024 * 1024, 0x78);
    const body = Buffer.concat([Buffer.from([0x0a, 0x03, 0x62, 0x69, 0x67, 0x12, 0x80, 0x80, 0x80, 0x01]), value]);
    const response = await rawUnary('/etcdserverpb.KV/Put', body);
    assert.deepEqual(response, {
      code: 8,
      details: 'grpc: received message larger than max (2097162 vs. 2097152)',
    });
  });
});

describe('malformed requests', () => {
  test("a truncated protobuf gets etcd's unmarshalling error and the server keeps serving", async () => {
    const response = await rawUnary('/etcdserverpb.KV/Put', Buffer.from([0x0a, 0xff, 0xff, 0xff]));
    assert.deepEqual(response, { code: 13, details: 'grpc: error unmarshalling request: unexpected EOF' });
    const next = await rawUnary('/etcdserverpb.KV/Range', Buffer.from([0x0a, 0x01, 0x61]));
    assert.ok(Buffer.isBuffer(next));
  });

  test('a nested txn makes a txn a write, so it meets the size limit, as in etcd 3.4.23', async () => {
    // Measured against etcd 3.4.23: the flat txn is served, the nested one is proposed and refused.
    const range: RequestOp = {
      type: 'range',
      range: rangeRequestWith({ key: new Uint8Array(requestBytesDefault).fill(0x61) }),
    };
    const flat: TxnRequest = { compare: [], success: [range], failure: [] };
    const nested: TxnRequest = { compare: [], success: [{ type: 'txn', txn: flat }], failure: [] };
    assert.ok(Buffer.isBuffer(await rawUnary('/etcdserverpb.KV/Txn', Buffer.from(encodeTxnRequest(flat)))));
    const response = await rawUnary('/etcdserverpb.KV/Txn', Buffer.from(encodeTxnRequest(nested)));
    assert.deepEqual(response, { code: 3, details: 'etcdserver: request is too large' });
  });

  test('a txn op with no request set is "key not found", as etcd says', async () => {
    // TxnRequest{success: [RequestOp{}]}: field 2, length 0.
    const response = await rawUnary('/etcdserverpb.KV/Txn', Buffer.from([0x12, 0x00]));
    assert.deepEqual(response, { code: 3, details: 'etcdserver: key not found' });
  });
});

describe('gRPC health', () => {
  test('Check answers SERVING while healthy and NOT_SERVING otherwise', async () => {
    assert.deepEqual(await rawUnary('/grpc.health.v1.Health/Check', Buffer.alloc(0)), Buffer.from([0x08, 0x01]));
    healthy = false;
    try {
      assert.deepEqual(await rawUnary('/grpc.health.v1.Health/Check', Buffer.alloc(0)), Buffer.from([0x08, 0x02]));
    } finally {
      healthy = true;
    }
  });
});

/** Messages of a raw server-streaming call as they arrive, until cancel(). */
function rawStream(path: string, body: Buffer): { next: () => Promise<Buffer>; cancel: () => void } {
  const client = new grpc.Client(endpoint, grpc.credentials.createInsecure());
  const call = client.makeServerStreamRequest(
    path,
    (buffer: Buffer) => buffer,
    (buffer: Buffer) => buffer,
    body,
  );
  const arrived: Buffer[] = [];
  const waiting: ((message: Buffer) => void)[] = [];
  call.on('data', (message: Buffer) => {
    const taker = waiting.shift();
    if (taker === undefined) arrived.push(message);
    else taker(message);
  });
  call.on('error', () => undefined);
  return {
    next: () => {
      const message = arrived.shift();
      return message === undefined ? new Promise((resolve) => waiting.push(resolve)) : Promise.resolve(message);
    },
    cancel: () => {
      call.cancel();
      client.close();
    },
  };
}

describe('gRPC health watch', () => {
  test('Watch sends the status, then pushes each change of it until cancelled', { timeout: 10_000 }, async () => {
    const watch = rawStream('/grpc.health.v1.Health/Watch', Buffer.alloc(0));
    try {
      assert.deepEqual(await watch.next(), Buffer.from([0x08, 0x01]));
      healthy = false;
      assert.deepEqual(await watch.next(), Buffer.from([0x08, 0x02]));
      healthy = true;
      assert.deepEqual(await watch.next(), Buffer.from([0x08, 0x01]));
    } finally {
      healthy = true;
      watch.cancel();
    }
  });
});

describe('HTTP/1.1 on the same port', () => {
  test('/version names the etcd release we speak for, and the cluster version once there is one', async () => {
    clusterVersion = undefined;
    assert.equal((await httpGet('/version')).body, '{"etcdserver":"3.4.23","etcdcluster":"not_decided"}');
    clusterVersion = '3.4.0';
    const response = await httpGet('/version');
    assert.equal(response.status, 200);
    assert.equal(response.body, '{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}');
    assert.equal(response.headers.get('content-type'), 'application/json');
  });

  test('/health answers like etcd 3.4, with 503 when unhealthy', async () => {
    assert.deepEqual(
      { ...(await httpGet('/health')), headers: undefined },
      { status: 200, body: '{"health":"true"}', headers: undefined },
    );
    healthy = false;
    try {
      const response = await httpGet('/health');
      assert.equal(response.status, 503);
      assert.equal(response.body, '{"health":"false"}\n');
    } finally {
      healthy = true;
    }
  });

  test("unknown paths get Go's 404 text and non-GET /health gets 405", async () => {
    assert.deepEqual(
      { ...(await httpGet('/nope')), headers: undefined },
      {
        status: 404,
        body: '404 page not found\n',
        headers: undefined,
      },
    );
    const post = await httpGet('/health', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
  });

  test('a request split into single bytes is still recognised as HTTP/1.1', async () => {
    const socket = net.connect(listener.port, '127.0.0.1');
    const request = 'GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString()));
    const closed = new Promise((resolve) => socket.on('close', resolve));
    for (const character of request) {
      socket.write(character);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await closed;
    assert.match(answer, /^HTTP\/1.1 200 OK/);
    assert.match(answer, /"etcdserver":"3.4.23"/);
  });
});
