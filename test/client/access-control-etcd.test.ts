/**
 * --cors, --host-whitelist and --enable-grpc-gateway against real etcd 3.4: plain-HTTP requests
 * naming a host outside the whitelist get etcd's 421 text, allowed origins get the CORS headers
 * (every origin, as '*', by default), OPTIONS is answered at once, and with the gateway off its
 * /v3/ paths are not served. Status, the CORS header and the body must match etcd's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Member } from '../support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

const sut = sutCommand();
const skip = sut.skipReason === undefined ? {} : { skip: sut.skipReason };

interface Probe {
  method: string;
  path: string;
  host?: string;
  origin?: string;
  body?: string;
}

function request(member: Member, probe: Probe): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { host: probe.host ?? `127.0.0.1:${member.clientPort}` };
    if (probe.origin !== undefined) headers.origin = probe.origin;
    const outgoing = http.request(
      { host: '127.0.0.1', port: member.clientPort, method: probe.method, path: probe.path, headers },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () =>
          resolve(
            `${response.statusCode} origin=${String(response.headers['access-control-allow-origin'])} ${
              probe.path.startsWith('/v3/') && response.statusCode === 200 ? '<kv answer>' : body
            }`,
          ),
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end(probe.body);
  });
}

const probes: Probe[] = [
  { method: 'GET', path: '/version', host: 'evil.example:2379' },
  { method: 'GET', path: '/version', origin: 'http://allowed.example:8080' },
  { method: 'GET', path: '/version', origin: 'http://other.example' },
  { method: 'OPTIONS', path: '/v3/kv/range', origin: 'http://allowed.example:8080' },
  { method: 'POST', path: '/v3/kv/range', body: '{"key":"YQ=="}' },
];

async function answers(command: MemberCommand, flags: string[]): Promise<string[]> {
  const member = await Member.start({ command, extraFlags: flags });
  try {
    const results: string[] = [];
    for (const probe of probes) results.push(await request(member, probe));
    return results;
  } finally {
    await member.destroy();
  }
}

for (const flags of [
  [],
  ['--cors', 'http://allowed.example:8080', '--host-whitelist', 'localhost,127.0.0.1', '--enable-grpc-gateway=false'],
]) {
  test(
    `HTTP access control with ${flags.length === 0 ? 'default flags' : flags.join(' ')} answers as etcd`,
    skip,
    async () => {
      const expected = await answers(etcdCommand(), flags);
      assert.deepEqual(await answers(sut.command as MemberCommand, flags), expected);
      if (flags.length > 0) assert.match(expected[0] ?? '', /^421 /, 'etcd refused the unknown host');
    },
  );
}
