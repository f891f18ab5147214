import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { listenClient, type ClientListener } from '../../actors/client/listener.js';
import { createGrpcServer } from '../../actors/client/grpc/router.js';
import { createJsonGateway, gatewayTarget, type JsonGateway } from '../../actors/client/json-gateway.js';
import type { WireMessage } from '../../src/api/proto-wire.js';
import {
  decodeGoBase64,
  decodeToJson,
  encodeJsonRequest,
  GatewayJsonError,
  gatewayProtoRoot,
  readJsonPrefix,
} from '../../src/api/jsonpb.js';
import { etcdCommand } from '../support/sut.js';
import { Member } from '../support/member.js';
import { FakeKv } from '../api/fake-kv.js';
import type { GrpcStreamCall } from '../../actors/client/grpc/calls.js';

interface Answer {
  status: number;
  body: string;
}

let etcd: Member;
let listener: ClientListener;
let gateway: JsonGateway;
let ours: string;

async function post(base: string, path: string, body: string, method = 'POST'): Promise<Answer> {
  const response = await fetch(`${base}${path}`, { method, body: method === 'GET' ? undefined : body });
  return { status: response.status, body: await response.text() };
}

/** Cluster and member IDs and terms differ between any two clusters; everything else must not. */
function normalised(body: string, revisions = false): string {
  const text = revisions ? body.replace(/"revision":"\d+"/g, '"revision":"<rev>"') : body;
  return text
    .replace(/"cluster_id":"\d+","member_id":"\d+",/g, '')
    .replace(/,?"raft_term":"\d+"/g, '')
    .replace(/"ID":"\d+"/g, '"ID":"<id>"');
}

/**
 * The body as a parsed JSON value: this file's server has a fake store, so only values are compared
 * here; json-gateway-etcd.test.ts compares whole bodies byte for byte with a real tsetcd member.
 */
function comparable(body: string, revisions: boolean): unknown {
  const text = normalised(body, revisions);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Both servers answered with the same status and, once normalised, the same JSON value (not compared as bytes). */
async function assertSameAnswer(path: string, body: string, method = 'POST', revisions = false) {
  const expected = await post(etcd.clientUrl, path, body, method);
  const actual = await post(ours, path, body, method);
  assert.equal(actual.status, expected.status, `${method} ${path} ${body}: status`);
  assert.deepEqual(
    comparable(actual.body, revisions),
    comparable(expected.body, revisions),
    `${method} ${path} ${body}`,
  );
}

/** Stand-ins for the lease and watch services so the stream framing can be compared. */
function streamStubs() {
  return {
    'etcdserverpb.Lease/LeaseKeepAlive': (call: GrpcStreamCall) => {
      call.on('data', (request: WireMessage) => call.write({ header: { revision: '1' }, ID: request.ID, TTL: '60' }));
      call.on('end', () => call.end());
    },
    'etcdserverpb.Watch/Watch': (call: GrpcStreamCall) => {
      call.on('data', () => call.write({ header: { revision: '1' }, watchId: '0', created: true }));
    },
    'etcdserverpb.Lease/LeaseGrant': async (request: WireMessage) => ({
      header: { revision: '1' },
      ID: request.ID,
      TTL: request.TTL,
    }),
  };
}

before(async () => {
  etcd = await Member.start({ command: etcdCommand() });
  let port = 0;
  gateway = createJsonGateway({ target: () => gatewayTarget('127.0.0.1', port) });
  const grpcServer = createGrpcServer({ kv: new FakeKv(), logger: pino({ level: 'silent' }), handlers: streamStubs() });
  listener = await listenClient({
    host: '127.0.0.1',
    port: 0,
    grpcServer,
    http: { health: () => ({ health: true, reason: '' }), routes: gateway.routes },
  });
  port = listener.port;
  ours = `http://127.0.0.1:${port}`;
});

after(async () => {
  gateway?.close();
  await listener?.close();
  await etcd?.destroy();
});

describe('the JSON gateway answers like etcd', () => {
  test('puts, ranges and deletes give the same JSON, with snake_case and camelCase names accepted', async () => {
    await assertSameAnswer('/v3/kv/put', '{"key":"Zm9v","value":"YmFy"}');
    await assertSameAnswer('/v3/kv/put', '{"key":"YQ==","value":"MQ==","prev_kv":true}');
    await assertSameAnswer('/v3/kv/put', '{"key":"YQ==","value":"Mg==","prevKv":true}');
    await assertSameAnswer('/v3/kv/range', '{"key":"YQ==","range_end":"ew==","keysOnly":true}');
    await assertSameAnswer('/v3/kv/range', '{"key":"YQ==","rangeEnd":"ew==","count_only":true}');
    await assertSameAnswer('/v3/kv/range', '{"key":"YQ==","limit":1} trailing bytes are ignored');
    await assertSameAnswer('/v3/kv/range', '{"key":"Zm9v","limit":"1","sort_order":"DESCEND","bogus":[1]}');
    await assertSameAnswer('/v3beta/kv/range', '{"key":"Zm9v"}');
    await assertSameAnswer('/v3/kv/deleterange', '{"key":"YQ==","prev_kv":true}');
    await assertSameAnswer(
      '/v3/kv/txn',
      '{"compare":[{"key":"Zm9v","target":"VALUE","value":"YmFy"}],"success":[{"requestPut":{"key":"Zm9v","value":"Mg=="}}]}',
    );
  });

  test('etcd errors keep their gRPC code and map to the same HTTP status', async () => {
    await assertSameAnswer('/v3/kv/put', '{"key":""}');
    await assertSameAnswer('/v3/kv/range', '');
    await assertSameAnswer('/v3/kv/range', '{"key":"Zm9v","revision":"99"}');
    await assertSameAnswer('/v3/kv/compaction', '{"revision":"99"}');
  });

  test('malformed bodies are refused with Go encoding/json and jsonpb texts', async () => {
    const bodies = [
      '{"key":',
      '{"key":"YQ==",}',
      'xyz',
      '[]',
      '{"key":5}',
      '{"key":"YQ"}',
      '{"key":"Zm9v_-"}',
      '{"key":"YQ==","limit":"abc"}',
      '{"key":"YQ==","limit":1.5}',
      '{"key":"YQ==","limit":"99999999999999999999"}',
      '{"key":"YQ==","limit":"0x10"}',
      '{"key":"YQ==","limit":""}',
      '{"key":"YQ==","keys_only":"yes"}',
      '{"key":"YQ==","sort_order":"BOGUS"}',
      '{"key":"YQ==","sort_order":true}',
      '{"key":"YQ==","x":tru}',
      '{"key":"YQ==" "x"}',
      '{"key":"\\q"}',
      '{"key":"YQ==","x":[1,}',
      '{"key":"YQ==","x":-a}',
      '{"compare":{}}',
      '{"compare":[{"target":"BAD"}]}',
    ];
    for (const body of bodies) {
      const path = body.includes('compare') ? '/v3/kv/txn' : '/v3/kv/range';
      await assertSameAnswer(path, body);
    }
  });

  test('unknown paths, other methods and preflight requests get Go http answers', async () => {
    await assertSameAnswer('/v3/nope', '{}');
    await assertSameAnswer('/v3/kv/range', '', 'GET');
    await assertSameAnswer('/v3/kv/range', '', 'PUT');
    await assertSameAnswer('/v3/kv/range', '', 'OPTIONS');
  });

  test('error bodies list error, message and code in etcd 3.4 order', async () => {
    const answer = await post(ours, '/v3/kv/put', '{"key":""}');
    assert.equal(
      answer.body,
      '{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}',
    );
  });

  test('stream answers are newline-delimited result objects', async () => {
    const granted = await post(etcd.clientUrl, '/v3/lease/grant', '{"TTL":"60","ID":"77"}');
    assert.equal(granted.status, 200);
    for (const body of ['{"ID":"77"}\n{"ID":77}', '', '{"ID":"x"}', '{"ID":77']) {
      await assertSameAnswer('/v3/lease/keepalive', body, 'POST', true);
    }
  });

  test('a watch answers its create request on an open stream', async () => {
    const read = async (base: string) => {
      const controller = new AbortController();
      const response = await fetch(`${base}/v3/watch`, {
        method: 'POST',
        body: '{"create_request":{"key":"Zm9v"}}',
        signal: controller.signal,
      });
      const reader = response.body!.getReader();
      const { value } = await reader.read();
      controller.abort();
      return {
        status: response.status,
        type: response.headers.get('content-type'),
        line: normalised(Buffer.from(value!).toString(), true),
      };
    };
    assert.deepEqual(await read(ours), await read(etcd.clientUrl));
  });
});

describe('gateway JSON codec', () => {
  const root = gatewayProtoRoot();

  test('base64 errors name the byte Go names', () => {
    assert.equal(decodeGoBase64(Buffer.from('Zm9v\r\nYmFy')).toString(), 'foobar');
    assert.equal(decodeGoBase64(Buffer.from('YQ==')).toString(), 'a');
    for (const [input, offset] of [
      ['YQ', 0],
      ['Zm9v_-', 4],
      ['Y===', 1],
      ['YQ==YQ==', 4],
      ['YQ=x', 2],
    ] as const) {
      assert.throws(
        () => decodeGoBase64(Buffer.from(input)),
        new GatewayJsonError(`illegal base64 data at input byte ${offset}`),
      );
    }
  });

  test('a stream body yields one value at a time and waits for the rest of a split one', () => {
    const body = Buffer.from('{"a":1} {"b":');
    const first = readJsonPrefix(body, 0, false);
    assert.equal(first.kind, 'value');
    assert.equal(readJsonPrefix(body, first.kind === 'value' ? first.end : 0, false).kind, 'incomplete');
    assert.equal(readJsonPrefix(Buffer.from('  \n'), 0, false).kind, 'end');
  });

  test('uint64 IDs survive the trip at full width', () => {
    const request = root.lookupType('etcdserverpb.MemberRemoveRequest');
    const member = root.lookupType('etcdserverpb.Member');
    const value = readJsonPrefix(Buffer.from('{"ID":18446744073709551615}'), 0, true);
    assert.equal(value.kind, 'value');
    const bytes = encodeJsonRequest(request, value.kind === 'value' ? value.value : { kind: 'null' });
    assert.equal(decodeToJson(request, bytes), '{"ID":"18446744073709551615"}');
    const memberBytes = member.encode(member.fromObject({ ID: '18446744073709551615', name: '<a&b>' })).finish();
    assert.equal(decodeToJson(member, memberBytes), '{"ID":"18446744073709551615","name":"\\u003ca\\u0026b\\u003e"}');
  });
});
