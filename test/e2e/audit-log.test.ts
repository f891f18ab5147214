/**
 * --audit-log-path under a workload of etcdctl commands and JSON gateway calls on one member with
 * auth: every line validates against schemas/audit-event.schema.json, the expected records are
 * there with the right outcome, identity, key and revision, and none of the passwords, tokens or
 * values used appears anywhere in the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Member } from '../support/member.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { sutCommand, type MemberCommand } from '../support/sut.js';
import { auditLineProblems } from '../support/audit-schema.js';

const sut = sutCommand();

const secrets = {
  rootPassword: 'rootpw-S3cr3t-a1',
  alicePassword: 'alicepw-S3cr3t-b2',
  wrongPassword: 'wrongpw-S3cr3t-c3',
  bobPassword: 'bobpw-S3cr3t-d4',
  putValue: 'value-S3cr3t-e5',
  txnValue: 'txnvalue-S3cr3t-f6',
  gatewayValue: 'gwvalue-S3cr3t-g7',
};

interface Record {
  method: string;
  outcome: string;
  code: number;
  identity?: string;
  key?: string;
  range_end?: string;
  target?: string;
  revision?: number;
  remote: string;
  [field: string]: unknown;
}

async function ok(endpoint: string, args: string[], stdin?: string): Promise<string> {
  const result = await runEtcdctl(endpoint, args, stdin === undefined ? {} : { stdin });
  assert.equal(result.code, 0, `etcdctl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function gateway(url: string, path: string, body: object, token?: string): Promise<Record> {
  const headers: { [name: string]: string } = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = token;
  const response = await fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  return (await response.json()) as Record;
}

const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64');

/** Runs the workload; returns the token the gateway handed out and the revision of alice's put. */
async function workload(member: Member): Promise<{ token: string; putRevision: number }> {
  const endpoint = member.clientUrl.replace(/^http:\/\//, '');
  await ok(endpoint, ['user', 'add', `root:${secrets.rootPassword}`]);
  await ok(endpoint, ['role', 'add', 'root']);
  await ok(endpoint, ['user', 'grant-role', 'root', 'root']);
  await ok(endpoint, ['user', 'add', `alice:${secrets.alicePassword}`]);
  await ok(endpoint, ['role', 'add', 'app']);
  await ok(endpoint, ['role', 'grant-permission', 'app', 'readwrite', 'app/', '--prefix']);
  await ok(endpoint, ['user', 'grant-role', 'alice', 'app']);
  await ok(endpoint, ['auth', 'enable']);
  const alice = `--user=alice:${secrets.alicePassword}`;
  const bad = await runEtcdctl(endpoint, [`--user=alice:${secrets.wrongPassword}`, 'get', 'app/k']);
  assert.notEqual(bad.code, 0);
  const denied = await runEtcdctl(endpoint, [alice, 'get', 'secret/k']);
  assert.match(denied.stderr, /permission denied/);
  const put = JSON.parse(await ok(endpoint, [alice, '-w', 'json', 'put', 'app/k', secrets.putValue])) as {
    header: { revision: number };
  };
  await ok(endpoint, [alice, 'txn'], `value("app/k") = "${secrets.putValue}"\n\nput app/t ${secrets.txnValue}\n\n\n`);
  await ok(endpoint, [alice, 'del', 'app/t']);
  const lease = await ok(endpoint, [alice, 'lease', 'grant', '600']);
  const leaseId = /lease ([0-9a-f]+) granted/.exec(lease)?.[1];
  assert.ok(leaseId !== undefined, lease);
  await ok(endpoint, [alice, 'lease', 'revoke', leaseId]);
  await ok(endpoint, [`--user=root:${secrets.rootPassword}`, 'user', 'add', `bob:${secrets.bobPassword}`]);
  const { token } = (await gateway(member.clientUrl, '/v3/auth/authenticate', {
    name: 'alice',
    password: secrets.alicePassword,
  })) as unknown as { token: string };
  assert.ok(typeof token === 'string' && token.length > 0);
  const binaryKey = Buffer.from([0x61, 0x70, 0x70, 0x2f, 0xff, 0x00]);
  await gateway(member.clientUrl, '/v3/kv/put', { key: b64(binaryKey), value: b64(secrets.gatewayValue) }, token);
  return { token, putRevision: Number(put.header.revision) };
}

test(
  'the audit log records authentications, refusals and writes, validates, and holds no secret',
  sut.command === undefined ? { skip: sut.skipReason } : {},
  async () => {
    const auditDir = await mkdtemp(join(tmpdir(), 'tsetcd-audit-'));
    const auditPath = join(auditDir, 'audit.jsonl');
    const audited = await Member.start({
      command: sut.command as MemberCommand,
      extraFlags: ['--bcrypt-cost', '4', '--audit-log-path', auditPath],
    });
    let token = '';
    let putRevision = 0;
    try {
      ({ token, putRevision } = await workload(audited));
    } finally {
      // Stopping flushes and fsyncs the log.
      await audited.destroy();
    }
    const text = readFileSync(auditPath, 'utf8');
    const lines = text.split('\n').filter((line) => line !== '');
    for (const line of lines) assert.deepEqual(auditLineProblems(line), [], line);
    for (const secret of [...Object.values(secrets), token, b64(secrets.putValue), b64(secrets.gatewayValue)])
      assert.equal(text.includes(secret), false, `the audit log holds "${secret}"`);
    const records = lines.map((line) => JSON.parse(line) as Record);
    const find = (predicate: (record: Record) => boolean, what: string): Record => {
      const found = records.find(predicate);
      assert.ok(found !== undefined, `expected a record of ${what} in:\n${text}`);
      return found;
    };
    const userAdd = find((r) => r.method === '/etcdserverpb.Auth/UserAdd' && r.target === 'root', 'root added');
    assert.equal(userAdd.outcome, 'ok');
    assert.equal(userAdd.identity, undefined);
    const failed = find(
      (r) => r.method === '/etcdserverpb.Auth/Authenticate' && r.outcome === 'denied',
      'a failed authentication',
    );
    assert.equal(failed.identity, 'alice');
    assert.equal(failed.code, 3);
    find((r) => r.method === '/etcdserverpb.Auth/Authenticate' && r.outcome === 'ok', 'an authentication');
    const deniedRead = find((r) => r.method === '/etcdserverpb.KV/Range', 'a denied read');
    assert.deepEqual(
      [deniedRead.outcome, deniedRead.code, deniedRead.identity, deniedRead.key],
      ['denied', 7, 'alice', 'secret/k'],
    );
    assert.equal(
      records.filter((r) => r.method === '/etcdserverpb.KV/Range').length,
      1,
      'allowed reads are not recorded',
    );
    const put = find((r) => r.method === '/etcdserverpb.KV/Put', 'a put');
    assert.deepEqual([put.outcome, put.identity, put.key, put.revision], ['ok', 'alice', 'app/k', putRevision]);
    const txn = find((r) => r.method === '/etcdserverpb.KV/Txn', 'a txn');
    assert.deepEqual([txn.outcome, txn.identity, txn.key, txn.revision], ['ok', 'alice', 'app/k', putRevision + 1]);
    const del = find((r) => r.method === '/etcdserverpb.KV/DeleteRange', 'a delete');
    assert.deepEqual([del.outcome, del.identity, del.key, del.revision], ['ok', 'alice', 'app/t', putRevision + 2]);
    find((r) => r.method === '/etcdserverpb.Lease/LeaseGrant' && r.outcome === 'ok', 'a lease grant');
    const revoke = find((r) => r.method === '/etcdserverpb.Lease/LeaseRevoke', 'a lease revoke');
    assert.match(String(revoke.lease), /^[0-9]+$/);
    const bob = find((r) => r.method === '/etcdserverpb.Auth/UserAdd' && r.target === 'bob', 'bob added by root');
    assert.deepEqual([bob.outcome, bob.identity], ['ok', 'root']);
    const gatewayPut = find((r) => r.method === '/v3/kv/put', 'a put through the JSON gateway');
    assert.deepEqual([gatewayPut.outcome, gatewayPut.identity, gatewayPut.key], ['ok', 'alice', 'base64:YXBwL/8A']);
    assert.notEqual(gatewayPut.remote, '', 'the HTTP client is named');
    find((r) => r.method === '/v3/auth/authenticate' && r.outcome === 'ok', 'an authentication through the gateway');
    await rm(auditDir, { recursive: true, force: true });
  },
);
