/**
 * JWT auth tokens (--auth-token jwt,...) against real etcd, for the signing methods auth.test.ts
 * does not already cover: HMAC (HS256, HS384, HS512: priv-key is the shared secret, read as raw
 * bytes), RSA-PSS and the larger RSA and ECDSA sizes. etcd and tsetcd start with the same key files
 * and must answer the same etcdctl commands and raw calls alike: a user logs in and is held to
 * their permissions, a tampered token is refused, a token issued by one member of a cluster is
 * taken by the others and refused by all once its ttl is over, and a start with --auth-token
 * options or keys etcd refuses (missing, unreadable or of the wrong kind) fails with etcd's error.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../support/cluster.js';
import { describeAnswer, EtcdGrpc } from '../support/etcd-grpc.js';
import { authSetupCommands, runEtcdctl, type CommandResult } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';
import { jwtTokenFlag, makeJwtKeys, tlsSkipReason } from '../support/tls.js';

const sut = sutCommand();
const skip = tlsSkipReason(sut);
const fastBcrypt = ['--bcrypt-cost', '4'];
/** The ttl of the cluster's tokens: long enough to use a token on every member, short enough to wait out. */
const shortTtlSeconds = 4;
/** How long a token may outlive its ttl before the test gives up waiting for its refusal. */
const expiryWaitMs = 30_000;

let keyDir = '';
const keysFor = (signMethod: string) => makeJwtKeys(mkdtempSync(join(keyDir, `${signMethod}-`)), signMethod);

before(() => {
  if (skip === false) keyDir = mkdtempSync(join(tmpdir(), 'tsetcd-jwt-etcd-'));
});
after(() => {
  if (keyDir !== '') rmSync(keyDir, { recursive: true, force: true });
});

/** etcdctl's answer with what differs between runs (times, ports) masked. */
function said(result: CommandResult): string {
  const stderr = result.stderr.replace(/^\{"level":"warn".*\n/gm, '').replace(/127\.0\.0\.1:\d+/g, '<endpoint>');
  return `${String(result.code)} ${result.stdout.trim()} ${stderr.trim()}`;
}

/** root (root role) and alice (readwrite on a/), then auth enabled; each step must succeed. */
async function setUpUsers(endpoint: string): Promise<void> {
  for (const args of authSetupCommands()) {
    const result = await runEtcdctl(endpoint, args);
    assert.equal(result.code, 0, `etcdctl ${args.join(' ')}: ${result.stderr}`);
  }
}

/** The header and claim names of a JWT. */
function shape(token: string): string {
  const [header, payload] = token
    .split('.')
    .slice(0, 2)
    .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>);
  return `alg=${String(header?.alg)} claims=${Object.keys(payload ?? {})
    .sort()
    .join(',')}`;
}

/** The token with one character of its signature changed. */
function tampered(token: string): string {
  const last = token.at(-2) === 'A' ? 'B' : 'A';
  return `${token.slice(0, -2)}${last}${token.slice(-1)}`;
}

/** What one member answers to a user's life with a JWT of `signMethod`: one line per step. */
async function tokenTranscript(endpoint: string): Promise<string[]> {
  const lines: string[] = [];
  const ctl = async (step: string, ...args: string[]) =>
    lines.push(`${step}: ${said(await runEtcdctl(endpoint, args))}`);
  await ctl('alice puts a/1', '--user', 'alice:apw', 'put', 'a/1', 'v');
  await ctl('alice gets a/1', '--user', 'alice:apw', 'get', 'a/1', '--print-value-only');
  await ctl('alice puts b', '--user', 'alice:apw', 'put', 'b', 'v');
  await ctl('alice with a wrong password', '--user', 'alice:wrong', 'get', 'a/1');
  const client = new EtcdGrpc(endpoint);
  try {
    const login = await client.unary('etcdserverpb.Auth/Authenticate', { name: 'alice', password: 'apw' });
    const token = String(login.response.token);
    lines.push(`authenticate: ${describeAnswer(login)} ${shape(token)}`);
    const range = { key: Buffer.from('a/1') };
    lines.push(`range: ${describeAnswer(await client.unary('etcdserverpb.KV/Range', range, token))}`);
    lines.push(`tampered: ${describeAnswer(await client.unary('etcdserverpb.KV/Range', range, tampered(token)))}`);
    const unsigned = `${token.split('.').slice(0, 2).join('.')}.`;
    lines.push(`unsigned: ${describeAnswer(await client.unary('etcdserverpb.KV/Range', range, unsigned))}`);
  } finally {
    client.close();
  }
  return lines;
}

async function transcriptOn(command: MemberCommand, tokenFlag: string): Promise<string[]> {
  const member = await Member.start({ command, extraFlags: [...fastBcrypt, '--auth-token', tokenFlag] });
  try {
    await setUpUsers(member.clientUrl);
    return await tokenTranscript(member.clientUrl);
  } finally {
    await member.destroy();
  }
}

describe('JWT auth tokens of every kind answer as in etcd 3.4', { skip }, () => {
  for (const signMethod of ['HS256', 'HS384', 'HS512', 'PS256', 'PS512', 'RS384', 'ES384', 'ES512']) {
    test(`${signMethod}: etcdctl --user, a raw token, a tampered and an unsigned token`, async () => {
      const tokenFlag = jwtTokenFlag(keysFor(signMethod), signMethod, '10m');
      const [etcd, ours] = await Promise.all([
        transcriptOn(etcdCommand(), tokenFlag),
        transcriptOn(sut.command!, tokenFlag),
      ]);
      assert.match(etcd.join('\n'), /alice gets a\/1: 0 v/);
      assert.match(etcd.join('\n'), /tampered: UNAUTHENTICATED etcdserver: invalid auth token/);
      assert.deepEqual(ours, etcd);
    });
  }

  test('--auth-token values etcd refuses stop both with the same error and exit code', async () => {
    const refusal = async (command: MemberCommand, tokenFlag: string): Promise<string> => {
      const flags = ['--logger', 'zap', '--auth-token', tokenFlag];
      const member = await Member.create({ command, extraFlags: flags });
      try {
        const { status, stderr } = member.runUntilExit(15_000);
        const fatal = stderr
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .find((line) => line.level === 'fatal');
        return `${String(status)} ${String(fatal?.error)}`;
      } finally {
        await member.destroy();
      }
    };
    const rsa = keysFor('RS256');
    const ec256 = keysFor('ES256');
    const ec384 = keysFor('ES384');
    const notPem = join(keyDir, 'not-pem.txt');
    writeFileSync(notPem, 'not a key\n');
    const missing = join(keyDir, 'absent.pem');
    // makeJwtKeys writes an EC key in SEC1 (EC PRIVATE KEY), which Go's RSA parsers name; in PKCS #8 they take it and refuse its type.
    const ec256Pkcs8 = join(keyDir, 'ec256-pkcs8.pem');
    execFileSync('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', ec256.privateKey, '-out', ec256Pkcs8]);
    const ecKeyForRsa = 'x509: failed to parse private key (use ParseECPrivateKey instead for this key format)';
    // Each case with the error etcd 3.4.23 stops with (checked here on etcd too).
    const cases: ReadonlyArray<[string, string]> = [
      [`jwt,pub-key=${rsa.privateKey},sign-method=HS256`, 'auth: missing key data'],
      ['bogus', 'auth: invalid auth options'],
      ['jwt,sign-method', 'auth: invalid auth options'],
      [`jwt,priv-key=${rsa.privateKey},sign-method=RS256,ttl=5 minutes`, 'auth: invalid auth options'],
      [`jwt,priv-key=${rsa.privateKey},sign-method=RS999`, 'auth: invalid auth options'],
      [`jwt,priv-key=${missing},sign-method=RS256`, 'auth: invalid auth options'],
      [`jwt,pub-key=${missing},priv-key=${rsa.privateKey},sign-method=none`, 'auth: invalid auth options'],
      [`jwt,priv-key=${rsa.privateKey},sign-method=none`, 'unsupported signing method: *jwt.signingMethodNone'],
      ['jwt,sign-method=PS384', 'auth: missing key data'],
      [`jwt,priv-key=${ec256.privateKey},sign-method=RS512`, ecKeyForRsa],
      [`jwt,priv-key=${ec256Pkcs8},sign-method=RS512`, 'key is not a valid RSA private key'],
      [`jwt,priv-key=${rsa.privateKey},sign-method=ES256`, 'key is not a valid ECDSA private key'],
      [`jwt,pub-key=${rsa.publicKey},sign-method=ES512`, 'key is not a valid ECDSA public key'],
      [`jwt,pub-key=${ec256.publicKey},sign-method=PS256`, 'key is not a valid RSA public key'],
      [`jwt,priv-key=${notPem},sign-method=RS256`, 'invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key'],
      [`jwt,pub-key=${ec256.privateKey},sign-method=ES256`, 'x509: malformed tbs certificate'],
      [
        `jwt,pub-key=${ec384.publicKey},priv-key=${ec256.privateKey},sign-method=ES256`,
        "auth: public and private keys don't match",
      ],
    ];
    for (const [tokenFlag, error] of cases) {
      const etcd = await refusal(etcdCommand(), tokenFlag);
      assert.equal(etcd, `1 ${error}`, `etcd with --auth-token ${tokenFlag}`);
      assert.equal(await refusal(sut.command!, tokenFlag), etcd, `--auth-token ${tokenFlag}`);
    }
  });

  test('an HS256 token from one member is taken by the others, and refused by all after its ttl', async () => {
    const tokenFlag = jwtTokenFlag(keysFor('HS256'), 'HS256', `${shortTtlSeconds}s`);
    const run = async (command: MemberCommand): Promise<string[]> => {
      const cluster = await Cluster.start({ command, extraFlags: [...fastBcrypt, '--auth-token', tokenFlag] });
      const clients = cluster.endpoints().map((endpoint) => new EtcdGrpc(endpoint));
      try {
        await setUpUsers(cluster.endpoints()[0]!);
        const range = { key: Buffer.from('a/1') };
        const login = await clients[0]!.unary('etcdserverpb.Auth/Authenticate', { name: 'alice', password: 'apw' });
        const token = String(login.response.token);
        const lines = [`authenticate on m1: ${describeAnswer(login)}`];
        for (const [index, client] of clients.entries())
          lines.push(
            `m${index + 1} range: ${describeAnswer(await client.unary('etcdserverpb.KV/Range', range, token))}`,
          );
        // Past the ttl every member refuses it; polled, since the clocks only bound when.
        const deadline = Date.now() + expiryWaitMs;
        for (const [index, client] of clients.entries()) {
          let answer = await client.unary('etcdserverpb.KV/Range', range, token);
          while (answer.code === 0 && Date.now() < deadline) {
            await sleep(250);
            answer = await client.unary('etcdserverpb.KV/Range', range, token);
          }
          lines.push(`m${index + 1} range after the ttl: ${describeAnswer(answer)}`);
        }
        return lines;
      } finally {
        for (const client of clients) client.close();
        await cluster.destroy();
      }
    };
    // Both clusters wait out the ttl at once: neither needs the other.
    const [etcd, ours] = await Promise.all([run(etcdCommand()), run(sut.command!)]);
    assert.match(etcd.join('\n'), /m3 range after the ttl: UNAUTHENTICATED etcdserver: invalid auth token/);
    assert.deepEqual(ours, etcd);
  });
});
