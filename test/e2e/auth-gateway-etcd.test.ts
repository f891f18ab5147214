/**
 * Auth through the JSON gateway (HTTP/1.1 POST /v3/...) against real etcd: a token from
 * /v3/auth/authenticate goes in the Authorization header (or Grpc-Metadata-Token), and every answer
 * (HTTP status and JSON body) with and without it, with a token nobody issued and with a user who
 * lacks the permission must be etcd's. Bodies are compared as JSON once the header's ids, terms and
 * revisions and the token itself are masked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { authSetupCommands, runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand } from '../support/sut.js';

const sut = sutCommand();
const skip = sut.skipReason ?? false;
const members: Member[] = [];

const base64 = (text: string): string => Buffer.from(text).toString('base64');

/** An HTTP answer as compared: status and the body with what differs between clusters masked. */
interface GatewayAnswer {
  readonly status: number;
  readonly body: unknown;
}

function masked(text: string): unknown {
  const body = text
    .replace(/"(cluster_id|member_id|raft_term|revision)":"\d+"/g, '"$1":"<$1>"')
    .replace(/"token":"[^"]+"/g, '"token":"<token>"');
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

async function post(member: Member, path: string, body: object, headers: Record<string, string> = {}) {
  const response = await fetch(`${member.clientUrl}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers,
  });
  const text = await response.text();
  return { status: response.status, text };
}

/** Logs `name` in through the gateway; the token. */
async function tokenOf(member: Member, name: string, password: string): Promise<string> {
  const { status, text } = await post(member, '/v3/auth/authenticate', { name, password });
  assert.equal(status, 200, `${member.command.label}: authenticate ${name}: ${text}`);
  return (JSON.parse(text) as { token: string }).token;
}

before(async () => {
  if (skip !== false) return;
  for (const command of [etcdCommand(), sut.command!]) {
    const member = await Member.start({ command, extraFlags: ['--bcrypt-cost', '4'] });
    members.push(member);
    for (const args of authSetupCommands([['user', 'add', 'bob:bpw']])) {
      const result = await runEtcdctl(member.clientUrl, args);
      assert.equal(result.code, 0, `etcdctl ${args.join(' ')}: ${result.stderr}`);
    }
  }
});

after(async () => {
  for (const member of members) await member.destroy();
});

describe('the JSON gateway takes the token in the Authorization header as etcd 3.4 does', { skip }, () => {
  test('every step answers with the same HTTP status and JSON body on both', async () => {
    const transcript = async (member: Member): Promise<Record<string, GatewayAnswer>> => {
      const answers: Record<string, GatewayAnswer> = {};
      const step = async (name: string, path: string, body: object, headers: Record<string, string> = {}) => {
        const { status, text } = await post(member, path, body, headers);
        answers[name] = { status, body: masked(text) };
      };
      await step('authenticate alice', '/v3/auth/authenticate', { name: 'alice', password: 'apw' });
      await step('authenticate with a wrong password', '/v3/auth/authenticate', { name: 'alice', password: 'x' });
      const alice = await tokenOf(member, 'alice', 'apw');
      const bob = await tokenOf(member, 'bob', 'bpw');
      const put = { key: base64('a/1'), value: base64('v') };
      const range = { key: base64('a/1') };
      await step('put with the token', '/v3/kv/put', put, { Authorization: alice });
      await step('range with the token', '/v3/kv/range', range, { Authorization: alice });
      await step('range with Grpc-Metadata-Token', '/v3/kv/range', range, { 'Grpc-Metadata-Token': alice });
      await step('put without a token', '/v3/kv/put', put);
      await step('range without a token', '/v3/kv/range', range);
      await step('range with a token nobody issued', '/v3/kv/range', range, { Authorization: 'not-a-token' });
      await step('put with a token nobody issued', '/v3/kv/put', put, { Authorization: 'not-a-token' });
      await step('range by a user without the permission', '/v3/kv/range', range, { Authorization: bob });
      await step('put by a user without the permission', '/v3/kv/put', put, { Authorization: bob });
      await step('user list by a user without root', '/v3/auth/user/list', {}, { Authorization: alice });
      return answers;
    };
    const [etcd, ours] = [await transcript(members[0]!), await transcript(members[1]!)];
    assert.equal(etcd['range with the token']?.status, 200);
    assert.notEqual(etcd['range with a token nobody issued']?.status, 200);
    assert.deepEqual(ours, etcd);
  });
});
