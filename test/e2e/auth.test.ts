/**
 * Auth against real etcd, through etcdctl 3.4 and raw gRPC calls carrying tokens: simple tokens
 * expire --auth-token-ttl after their last use; JWTs (keys made by openssl here) carry etcd's
 * claims and go stale when the auth store changes; the auth store survives a restart and a crash;
 * a follower that catches up through a snapshot knows the users made while it was down and
 * accepts tokens another member issued; Defragment and Hash need the root role. Each test runs on
 * etcd first, then on tsetcd, with the same expectations.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, type WireMessage } from '../../src/api/proto-wire.js';
import { KvConnection } from '../../bench/kv-client.js';
import { hasOpenssl, jwtTokenFlag, makeJwtKeys } from '../support/tls.js';
import { Cluster, pollUntil } from '../support/cluster.js';
import { authDialTimeoutFlag, runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const targets: Array<{ label: string; command?: MemberCommand; skip?: string }> = [
  { label: 'etcd', command: etcdCommand() },
  sut.command === undefined
    ? { label: 'tsetcd', skip: sut.skipReason }
    : { label: sut.command.label, command: sut.command },
];
/** bcrypt's lowest cost keeps the tests about auth rather than hashing. */
const fastBcrypt = ['--bcrypt-cost', '4'];
const catchUpWaitMs = 30_000;

type Unary = (
  request: WireMessage,
  metadata: grpc.Metadata,
  done: (error: grpc.ServiceError | null, response: WireMessage) => void,
) => void;

/** A raw gRPC call to `service`/`method` on `endpoint`, with the token (when given) in metadata "token". */
function call(
  endpoint: string,
  service: 'Auth' | 'KV' | 'Maintenance',
  method: string,
  request: WireMessage,
  token?: string,
): Promise<WireMessage> {
  const root = grpc.loadPackageDefinition(loadProtos()) as unknown as {
    etcdserverpb: Record<string, new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client>;
  };
  const client = new root.etcdserverpb[service]!(
    endpoint.replace(/^https?:\/\//, ''),
    grpc.credentials.createInsecure(),
  );
  const metadata = new grpc.Metadata();
  if (token !== undefined) metadata.set('token', token);
  return new Promise<WireMessage>((resolve, reject) => {
    (client as unknown as Record<string, Unary>)[method]!.call(client, request, metadata, (error, response) => {
      client.close();
      if (error === null) resolve(response);
      else reject(error);
    });
  });
}

async function authenticate(endpoint: string, name: string, password: string): Promise<string> {
  const response = await call(endpoint, 'Auth', 'Authenticate', { name, password });
  return String(response.token);
}

/** Times callAs authenticates again after a token expired before its call was served. */
const reauthenticationsMax = 5;

/**
 * Authenticates as `name` and makes one call with the new token. Under --auth-token-ttl 1 a token
 * unused for a second expires, and a loaded machine can take that long between the two requests:
 * then it authenticates again, a bounded number of times. Any other refusal is the call's answer.
 */
async function callAs(
  endpoint: string,
  name: string,
  password: string,
  service: 'KV' | 'Maintenance',
  method: string,
  request: WireMessage,
): Promise<{ token: string; response: WireMessage }> {
  for (let attempt = 0; ; attempt++) {
    const token = await authenticate(endpoint, name, password);
    try {
      return { token, response: await call(endpoint, service, method, request, token) };
    } catch (error) {
      const expired = /invalid auth token$/.test((error as grpc.ServiceError).details ?? '');
      if (!expired || attempt >= reauthenticationsMax) throw error;
    }
  }
}

/** etcdctl must succeed; returns its stdout. */
async function ctl(endpoint: string, ...args: string[]): Promise<string> {
  const result = await runEtcdctl(endpoint, [authDialTimeoutFlag, ...args]);
  assert.equal(result.code, 0, `etcdctl ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

/** The last line etcdctl wrote to stderr ("Error: ..."), for refusals. */
function refusal(result: CommandResult): string {
  return result.stderr.trim().split('\n').pop() ?? '';
}

/** root (root role) and alice (readwrite on prefix a/), then auth enabled. */
async function setUpUsers(endpoint: string): Promise<void> {
  await ctl(endpoint, 'user', 'add', 'root:rootpw');
  await ctl(endpoint, 'user', 'grant-role', 'root', 'root');
  await ctl(endpoint, 'user', 'add', 'alice:apw');
  await ctl(endpoint, 'role', 'add', 'a-writer');
  await ctl(endpoint, 'role', 'grant-permission', '--prefix', 'a-writer', 'readwrite', 'a/');
  await ctl(endpoint, 'user', 'grant-role', 'alice', 'a-writer');
  await ctl(endpoint, 'auth', 'enable');
}

const range = (key: string): WireMessage => ({ key: Buffer.from(key) });

// etcd's members and tsetcd's run side by side on their own ports: neither needs the other.
describe('auth on etcd and on tsetcd, side by side', { concurrency: true }, () => {
  for (const target of targets) {
    const options = target.skip === undefined ? {} : { skip: target.skip };
    // Each system's suites one after another: a suite's concurrency is inherited otherwise.
    describe(`auth on ${target.label}`, { ...options, concurrency: 1 }, () => {
      describe(`auth on one ${target.label} member with --auth-token-ttl 1`, options, () => {
        let member: Member;

        before(async () => {
          member = await Member.start({
            command: target.command as MemberCommand,
            extraFlags: [...fastBcrypt, '--auth-token-ttl', '1'],
          });
          await setUpUsers(member.clientUrl);
        });

        after(async () => {
          await member?.destroy();
        });

        test('a simple token is 16 letters and the raft index; it expires once unused for the TTL', async () => {
          const { token, response } = await callAs(member.clientUrl, 'alice', 'apw', 'KV', 'Range', range('a/1'));
          assert.match(token, /^[a-zA-Z]{16}\.\d+$/);
          assert.equal(response.count, '0');
          await assert.rejects(callAs(member.clientUrl, 'alice', 'apw', 'KV', 'Range', range('b')), {
            code: grpc.status.PERMISSION_DENIED,
            details: 'etcdserver: permission denied',
          });
          // etcd's TTL keeper looks once a second: three seconds unused are past a one-second TTL.
          await sleep(3_000);
          await assert.rejects(call(member.clientUrl, 'KV', 'Range', range('a/1'), token), {
            code: grpc.status.UNAUTHENTICATED,
            details: 'etcdserver: invalid auth token',
          });
          await assert.rejects(call(member.clientUrl, 'KV', 'Range', range('a/1'), 'made-up.12'), {
            code: grpc.status.UNAUTHENTICATED,
            details: 'etcdserver: invalid auth token',
          });
        });

        test('users, roles, permissions and the enabled flag survive a restart and a crash', async () => {
          for (const restart of [() => member.stop(), () => member.kill9()]) {
            await ctl(member.clientUrl, '--user', 'alice:apw', 'put', 'a/kept', 'yes');
            await restart();
            await member.restart();
            assert.equal(
              await ctl(member.clientUrl, '--user', 'alice:apw', 'get', 'a/kept', '--print-value-only'),
              'yes\n',
            );
            const denied = await runEtcdctl(member.clientUrl, ['--user', 'alice:apw', 'put', 'b', '1']);
            assert.equal(refusal(denied), 'Error: etcdserver: permission denied');
            const anonymous = await runEtcdctl(member.clientUrl, ['get', 'a/kept']);
            assert.equal(refusal(anonymous), 'Error: etcdserver: user name is empty');
            assert.equal(await ctl(member.clientUrl, '--user', 'root:rootpw', 'user', 'list'), 'alice\nroot\n');
          }
        });
      });

      for (const signMethod of ['RS256', 'ES256'] as const) {
        describe(
          `JWT (${signMethod}) auth tokens on one ${target.label} member`,
          { ...options, skip: options.skip ?? (!hasOpenssl() && 'openssl is not installed') },
          () => {
            let member: Member;
            let keyDir: string;

            before(async () => {
              keyDir = mkdtempSync(join(tmpdir(), 'tsetcd-jwt-'));
              const tokenFlag = jwtTokenFlag(makeJwtKeys(keyDir, signMethod), signMethod, '10m');
              member = await Member.start({
                command: target.command as MemberCommand,
                extraFlags: [...fastBcrypt, '--auth-token', tokenFlag],
              });
              await setUpUsers(member.clientUrl);
            });

            after(async () => {
              await member?.destroy();
              if (keyDir !== undefined) rmSync(keyDir, { recursive: true, force: true });
            });

            test('a JWT carries username, revision and exp, and goes stale when the auth store changes', async () => {
              const token = await authenticate(member.clientUrl, 'alice', 'apw');
              const [header, payload] = token
                .split('.')
                .slice(0, 2)
                .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>);
              assert.equal(header?.alg, signMethod);
              assert.deepEqual(Object.keys(payload ?? {}).sort(), ['exp', 'revision', 'username']);
              assert.equal(payload?.username, 'alice');
              assert.ok(Number(payload?.exp) > Date.now() / 1_000, `exp ${String(payload?.exp)} is in the future`);
              await call(member.clientUrl, 'KV', 'Put', { key: Buffer.from('a/1'), value: Buffer.from('v') }, token);
              assert.equal(
                await ctl(member.clientUrl, '--user', 'alice:apw', 'get', 'a/1', '--print-value-only'),
                'v\n',
              );
              await ctl(member.clientUrl, '--user', 'root:rootpw', 'role', 'add', 'another');
              await assert.rejects(call(member.clientUrl, 'KV', 'Range', range('a/1'), token), {
                code: grpc.status.INVALID_ARGUMENT,
                details: 'etcdserver: revision of auth store is old',
              });
              const tampered = `${token.slice(0, -4)}AAAA`;
              await assert.rejects(call(member.clientUrl, 'KV', 'Range', range('a/1'), tampered), {
                code: grpc.status.UNAUTHENTICATED,
                details: 'etcdserver: invalid auth token',
              });
            });

            // Here, where tokens last ten minutes: with --auth-token-ttl 1 a token can expire on a
            // busy machine while the other user authenticates.
            test('Defragment and Hash need the root role', async () => {
              const aliceToken = await authenticate(member.clientUrl, 'alice', 'apw');
              const rootToken = await authenticate(member.clientUrl, 'root', 'rootpw');
              for (const method of ['Defragment', 'Hash']) {
                // etcd 3.4 answers UNKNOWN "auth: permission denied" here; later releases etcd's own error.
                await assert.rejects(call(member.clientUrl, 'Maintenance', method, {}, aliceToken), {
                  details: /permission denied$/,
                });
                await call(member.clientUrl, 'Maintenance', method, {}, rootToken);
              }
            });
          },
        );
      }

      describe(`a three-member ${target.label} cluster with --snapshot-count 1000`, options, () => {
        let cluster: Cluster;

        before(async () => {
          cluster = await Cluster.start({
            command: target.command as MemberCommand,
            extraFlags: [...fastBcrypt, '--snapshot-count', '1000'],
          });
        });

        after(async () => {
          await cluster?.destroy();
        });

        test('a follower that catches up through a snapshot knows the users made while it was down, and tokens work on every member', async () => {
          const leader = await cluster.leader();
          const [follower] = cluster.followers(leader);
          assert.ok(follower !== undefined, 'expected a follower');
          await follower.kill9();
          const connection = new KvConnection(leader.clientUrl);
          try {
            // More entries than the leader keeps behind a snapshot (5,000), so the follower needs one.
            for (let batch = 0; batch < 250; batch++) {
              await Promise.all(
                Array.from({ length: 30 }, (_, i) =>
                  connection.put(Buffer.from(`fill/${batch * 30 + i}`), Buffer.from('x'), 5_000),
                ),
              );
            }
          } finally {
            connection.close();
          }
          await setUpUsers(leader.clientUrl);
          await follower.restart();
          await pollUntil(`${follower.describe()} to know alice`, catchUpWaitMs, async () => {
            const result = await runEtcdctl(follower.clientUrl, [
              '--user',
              'alice:apw',
              'get',
              'a/x',
              '--consistency=s',
            ]);
            return result.code === 0 ? '' : result.stderr;
          });
          const denied = await runEtcdctl(follower.clientUrl, ['--user', 'alice:apw', 'put', 'b', '1']);
          assert.equal(refusal(denied), 'Error: etcdserver: permission denied');
          // A token is valid on every member, whichever issued it.
          const token = await authenticate(leader.clientUrl, 'alice', 'apw');
          for (const member of cluster.running()) {
            await call(
              member.clientUrl,
              'KV',
              'Put',
              { key: Buffer.from(`a/${member.name}`), value: Buffer.from('v') },
              token,
            );
          }
          const other = await authenticate(follower.clientUrl, 'alice', 'apw');
          const answer = await call(
            leader.clientUrl,
            'KV',
            'Range',
            { key: Buffer.from('a/'), rangeEnd: Buffer.from('a0') },
            other,
          );
          assert.equal(answer.count, String(cluster.running().length));
        });
      });
    });
  }
});
