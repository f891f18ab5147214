/**
 * The JSON gateway against real etcd 3.4, byte for byte: the same HTTP/1.1 requests (node:http,
 * as curl would send them) go to a real etcd member (its gRPC gateway is on by default in 3.4)
 * and to a real tsetcd member, in the same order, so both stores reach the same revisions. Each
 * answer's status, Content-Type and body bytes must be equal once the values that must differ
 * between two clusters (cluster_id, member_id, raft_term) are masked; key order, number
 * formatting, escaping and omitted fields are all compared.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { test } from 'node:test';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();

/** One request of the transcript: an HTTP method, a path and a body sent as is. */
interface GatewayRequest {
  readonly method: 'POST' | 'GET';
  readonly path: string;
  readonly body: string;
}

/** What came back, as compared: status, Content-Type and the body with only the cluster's own ids masked. */
interface GatewayAnswer {
  readonly request: string;
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

const base64 = (text: string): string => Buffer.from(text).toString('base64');
const post = (path: string, body: object | string): GatewayRequest => ({
  method: 'POST',
  path,
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

/** Writes, reads, txns, leases, compaction and refusals; every one changes or reads the same store. */
const transcript: readonly GatewayRequest[] = [
  post('/v3/kv/put', { key: base64('foo'), value: base64('bar') }),
  post('/v3/kv/put', { key: base64('a'), value: base64('1'), prev_kv: true }),
  post('/v3/kv/put', { key: base64('a'), value: base64('2'), prevKv: true }),
  post('/v3/kv/put', { key: base64('b'), value: '' }),
  post('/v3/kv/put', { key: base64('<&>'), value: base64('\u00e9\u2028\u0000') }),
  post('/v3/kv/range', { key: base64('a'), range_end: base64('{') }),
  post('/v3/kv/range', { key: base64('a'), range_end: base64('{'), keys_only: true, limit: '1' }),
  post('/v3/kv/range', { key: base64('a'), range_end: base64('{'), count_only: true }),
  post('/v3/kv/range', { key: base64('a'), range_end: base64('{'), sort_order: 'DESCEND', sort_target: 'VALUE' }),
  post('/v3/kv/range', { key: base64('foo'), serializable: true, revision: '2' }),
  post('/v3/kv/range', { key: base64('missing') }),
  post('/v3/kv/txn', {
    compare: [{ key: base64('a'), target: 'VALUE', value: base64('2') }],
    success: [
      { request_put: { key: base64('t1'), value: base64('x') } },
      { request_range: { key: base64('a') } },
      { request_delete_range: { key: base64('b'), prev_kv: true } },
    ],
    failure: [{ request_put: { key: base64('never'), value: base64('z') } }],
  }),
  post('/v3/kv/txn', {
    compare: [{ key: base64('a'), target: 'MOD', result: 'GREATER', mod_revision: '100' }],
    success: [{ request_put: { key: base64('never'), value: base64('z') } }],
    failure: [{ request_range: { key: base64('t'), range_end: base64('u') } }],
  }),
  post('/v3/kv/deleterange', { key: base64('a'), prev_kv: true }),
  post('/v3/kv/deleterange', { key: base64('nothing') }),
  post('/v3/lease/grant', { ID: '4660', TTL: '600' }),
  post('/v3/kv/put', { key: base64('leased'), value: base64('v'), lease: '4660' }),
  post('/v3/lease/leases', {}),
  post('/v3/kv/range', { key: base64('leased') }),
  post('/v3/lease/revoke', { ID: '4660' }),
  post('/v3/lease/revoke', { ID: '4660' }),
  post('/v3/kv/compaction', { revision: '5', physical: true }),
  post('/v3/kv/range', { key: base64('foo'), revision: '3' }),
  post('/v3/kv/range', { key: base64('foo'), revision: '99' }),
  post('/v3/kv/put', { key: '' }),
  post('/v3/kv/put', '{"key":'),
  post('/v3/kv/range', '{"key":"YQ","limit":"x"}'),
  post('/v3/nope', '{}'),
  post('/v3/auth/status', {}),
  post('/v3/maintenance/downgrade', {}),
  { method: 'GET', path: '/v3/kv/range', body: '' },
];

/** The values two clusters must not share; everything else in a body is compared as bytes. */
function masked(body: string): string {
  return body.replace(/"(cluster_id|member_id|raft_term)":"\d+"/g, '"$1":"<$1>"');
}

function send(member: Member, request: GatewayRequest): Promise<GatewayAnswer> {
  const url = new URL(request.path, member.clientUrl);
  return new Promise((resolve, reject) => {
    const outgoing = http.request(url, { method: request.method }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          request: `${request.method} ${request.path} ${request.body}`,
          status: response.statusCode ?? 0,
          contentType: response.headers['content-type'] ?? '',
          body: masked(Buffer.concat(chunks).toString('utf8')),
        }),
      );
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end(request.method === 'GET' ? undefined : request.body);
  });
}

/** Lines of a watch stream on `leased` from revision 9: the created response, then its put and its delete by the revoke. */
const watchLinesWanted = 2;

/** Opens /v3/watch, reads until `watchLinesWanted` lines came, and closes it; the lines as one answer. */
function watchFromStart(member: Member): Promise<GatewayAnswer> {
  const body = JSON.stringify({ create_request: { key: base64('leased'), start_revision: '9', prev_kv: true } });
  const url = new URL('/v3/watch', member.clientUrl);
  return new Promise((resolve, reject) => {
    const outgoing = http.request(url, { method: 'POST' }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        if (text.split('\n').length <= watchLinesWanted) return;
        resolve({
          request: `POST /v3/watch ${body}`,
          status: response.statusCode ?? 0,
          contentType: response.headers['content-type'] ?? '',
          body: masked(text.split('\n').slice(0, watchLinesWanted).join('\n')),
        });
        outgoing.destroy();
      });
      response.on('error', () => undefined);
    });
    outgoing.on('error', (error) => (outgoing.destroyed ? undefined : reject(error)));
    // Ending the request body only ends the sending side: the watch keeps streaming its events.
    outgoing.end(body);
  });
}

async function answersOf(command: MemberCommand): Promise<GatewayAnswer[]> {
  const member = await Member.start({ command });
  try {
    const answers: GatewayAnswer[] = [];
    for (const request of transcript) answers.push(await send(member, request));
    answers.push(await watchFromStart(member));
    return answers;
  } finally {
    await member.destroy();
  }
}

test(
  `the JSON gateway answers like etcd 3.4 byte for byte on ${sut.command?.label ?? 'tsetcd'}`,
  sut.skipReason === undefined ? {} : { skip: sut.skipReason },
  async () => {
    const expected = await answersOf(etcdCommand());
    const actual = await answersOf(sut.command as MemberCommand);
    const differing = expected
      .map((want, index) => ({ want, got: actual[index] }))
      .filter(({ want, got }) => JSON.stringify(want) !== JSON.stringify(got));
    assert.deepEqual(
      differing.map(({ got }) => got),
      differing.map(({ want }) => want),
      `${differing.length} of ${expected.length} answers differ from etcd's`,
    );
  },
);
