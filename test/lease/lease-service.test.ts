import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { listenClient, type ClientListener } from '../../actors/client/listener.js';
import { createGrpcServer } from '../../actors/client/grpc/router.js';
import { leaseHandlers, type LeaseApi } from '../../actors/client/grpc/lease-service.js';
import { loadProtos, type WireMessage } from '../../src/api/proto-wire.js';
import { errors } from '../../src/api/errors.js';
import type { ResponseHeader } from '../../src/api/types.js';
import { LeaseIdGenerator } from '../../src/lease/lease-id.js';
import { Lessor, type LeaseTimeToLive } from '../../src/lease/lessor.js';
import { MemoryBackend } from '../../src/mvcc/backend.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { FakeKv } from '../api/fake-kv.js';

const clusterId = 0x1122334455667788n;
const memberId = 0x390d_0000_0000_0001n;
const raftTerm = 3;

/** A LeaseApi over a real Lessor on the wall clock, leading from the start: what a one-member cluster does. */
class LessorLeaseApi implements LeaseApi {
  revision = 1;
  readonly lessor = Lessor.open(new MemoryBackend(), { minTtlSeconds: 2 });
  private readonly ids = new LeaseIdGenerator(memberId, Date.now());
  /** Set to make renewals fail as on a member that lost its leader. */
  renewFailure: Error | undefined;

  constructor() {
    this.lessor.promote(Date.now(), 0);
  }

  header(): ResponseHeader {
    return { clusterId, memberId, revision: this.revision, raftTerm };
  }

  async grant(id: bigint, ttlSeconds: number): Promise<{ id: bigint; ttlSeconds: number }> {
    return this.lessor.applyGrant(id === 0n ? this.ids.next() : id, ttlSeconds, Date.now());
  }

  async revoke(id: bigint): Promise<void> {
    if (this.lessor.applyRevoke(id).length > 0) this.revision++;
  }

  async renew(id: bigint): Promise<number> {
    if (this.renewFailure !== undefined) throw this.renewFailure;
    return this.lessor.renew(id, Date.now());
  }

  async timeToLive(id: bigint, withKeys: boolean): Promise<LeaseTimeToLive> {
    return this.lessor.timeToLive(id, Date.now(), withKeys);
  }

  async leases(): Promise<bigint[]> {
    return this.lessor.leases();
  }
}

const api = new LessorLeaseApi();
let listener: ClientListener;
let endpoint: string;
let client: Etcd3;

type LeaseClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
let raw: LeaseClient;

function unary(method: string, request: WireMessage): Promise<WireMessage> {
  return new Promise((resolve, reject) => {
    raw[method]!(request, (error: grpc.ServiceError | null, response: WireMessage) =>
      error ? reject(error) : resolve(response),
    );
  });
}

function hex(id: bigint): string {
  return id.toString(16).padStart(16, '0');
}

const etcdctl = (args: string[]) => runEtcdctl(endpoint, ['--command-timeout=5s', ...args]);

/** etcdctl logs retries as JSON lines on stderr before its own "Error: ..." line. */
function lastLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  return lines[lines.length - 1] ?? '';
}

before(async () => {
  const grpcServer = createGrpcServer({
    kv: new FakeKv(),
    handlers: leaseHandlers(api),
    logger: pino({ level: 'silent' }),
  });
  listener = await listenClient({
    host: '127.0.0.1',
    port: 0,
    grpcServer,
    http: { health: () => ({ health: true, reason: '' }) },
  });
  endpoint = `127.0.0.1:${listener.port}`;
  client = new Etcd3({ hosts: `http://${endpoint}` });
  const loaded = grpc.loadPackageDefinition(loadProtos()) as unknown as {
    etcdserverpb: { Lease: grpc.ServiceClientConstructor };
  };
  raw = new loaded.etcdserverpb.Lease(endpoint, grpc.credentials.createInsecure()) as unknown as LeaseClient;
});

after(async () => {
  client.close();
  raw.close();
  await listener.close();
});

describe('Lease service on the wire', () => {
  test('a grant with a client-chosen ID answers that ID, the granted TTL and the header', async () => {
    const response = await unary('LeaseGrant', { ID: '4242', TTL: '1' });
    assert.deepEqual(response, {
      header: {
        clusterId: clusterId.toString(),
        memberId: memberId.toString(),
        revision: '1',
        raftTerm: String(raftTerm),
      },
      ID: '4242',
      TTL: '2',
      error: '',
    });
    await assert.rejects(unary('LeaseGrant', { ID: '4242', TTL: '10' }), {
      code: grpc.status.FAILED_PRECONDITION,
      details: 'etcdserver: lease already exists',
    });
    await assert.rejects(unary('LeaseGrant', { ID: '1', TTL: '9000000001' }), {
      code: grpc.status.OUT_OF_RANGE,
      details: 'etcdserver: too large lease TTL',
    });
  });

  test('time-to-live of a missing lease answers TTL -1 instead of an error, as etcd', async () => {
    const response = await unary('LeaseTimeToLive', { ID: '777', keys: true });
    assert.deepEqual([response.ID, response.TTL, response.grantedTTL, response.keys], ['777', '-1', '0', []]);
    assert.equal((response.header as { memberId: string }).memberId, memberId.toString());
  });

  test('the keepalive stream answers in order with TTL 0 for a missing lease', async () => {
    await unary('LeaseGrant', { ID: '5151', TTL: '30' });
    const call = (raw.LeaseKeepAlive as () => grpc.ClientDuplexStream<WireMessage, WireMessage>)();
    const answers: WireMessage[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (message: WireMessage) => answers.push(message));
      call.on('end', resolve);
      call.on('error', reject);
    });
    call.write({ ID: '5151' });
    call.write({ ID: '999' });
    call.write({ ID: '5151' });
    call.end();
    await done;
    assert.deepEqual(
      answers.map((answer) => [answer.ID, answer.TTL]),
      [
        ['5151', '30'],
        ['999', '0'],
        ['5151', '30'],
      ],
    );
    assert.equal((answers[0]!.header as { revision: string }).revision, '1');
  });

  test('the keepalive stream ends with the error of a renewal that failed otherwise', async () => {
    api.renewFailure = errors.noLeader();
    try {
      const call = (raw.LeaseKeepAlive as () => grpc.ClientDuplexStream<WireMessage, WireMessage>)();
      const failure = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
      call.on('data', () => undefined);
      call.write({ ID: '5151' });
      const error = await failure;
      assert.deepEqual([error.code, error.details], [grpc.status.UNAVAILABLE, 'etcdserver: no leader']);
    } finally {
      api.renewFailure = undefined;
    }
  });
});

describe('the etcd3 npm client', () => {
  test('grants a lease, keeps it alive and revokes it', async () => {
    const lease = client.lease(10, { autoKeepAlive: false });
    const id = BigInt(await lease.grant());
    assert.ok(id > 0n);
    assert.equal(api.lessor.grantedTtlSeconds(id), 10);
    const kept = await lease.keepaliveOnce();
    assert.deepEqual([kept.ID, kept.TTL], [id.toString(), '10']);
    await lease.revoke();
    assert.equal(api.lessor.exists(id), false);
    assert.equal(lease.revoked(), true);
  });

  test('reports a lease revoked behind its back as lost on the next keepalive', async () => {
    const lease = client.lease(10, { autoKeepAlive: false });
    const id = BigInt(await lease.grant());
    const lost = new Promise<Error>((resolve) => lease.on('lost', resolve));
    await api.revoke(id);
    await assert.rejects(lease.keepaliveOnce());
    assert.match((await lost).message, /lease/i);
  });
});

describe('etcdctl 3.4 lease commands', () => {
  test('grant raises a small TTL to the minimum and prints the ID in hex', async () => {
    const result = await etcdctl(['lease', 'grant', '1']);
    assert.equal(result.code, 0);
    const match = /^lease ([0-9a-f]{16}) granted with TTL\(2s\)\n$/.exec(result.stdout);
    assert.ok(match, result.stdout);
    assert.ok(api.lessor.exists(BigInt(`0x${match[1]}`)));
  });

  test('timetolive prints granted and remaining TTL and the attached keys', async () => {
    const { id } = await api.grant(0n, 100);
    api.lessor.attach(new TextEncoder().encode('zoo'), id);
    api.lessor.attach(new TextEncoder().encode('foo'), id);
    // Remaining is truncated to whole seconds, so it reads 99 unless etcdctl took over a second to start.
    assert.match(
      (await etcdctl(['lease', 'timetolive', hex(id)])).stdout,
      new RegExp(`^lease ${hex(id)} granted with TTL\\(100s\\), remaining\\(9[89]s\\)\n$`),
    );
    assert.match(
      (await etcdctl(['lease', 'timetolive', '--keys', hex(id)])).stdout,
      new RegExp(
        `^lease ${hex(id)} granted with TTL\\(100s\\), remaining\\(9[89]s\\), attached keys\\(\\[foo zoo\\]\\)\n$`,
      ),
    );
    assert.equal((await etcdctl(['lease', 'timetolive', '1234'])).stdout, 'lease 0000000000001234 already expired\n');
  });

  test('list prints every lease, and keep-alive --once the renewed TTL', async () => {
    const { id } = await api.grant(0n, 60);
    const listed = (await etcdctl(['lease', 'list'])).stdout.trimEnd().split('\n');
    assert.equal(listed[0], `found ${api.lessor.size} leases`);
    assert.ok(listed.includes(hex(id)));
    assert.deepEqual(await etcdctl(['lease', 'keep-alive', '--once', hex(id)]), {
      code: 0,
      stdout: `lease ${hex(id)} keepalived with TTL(60)\n`,
      stderr: '',
    });
    const missing = await etcdctl(['lease', 'keep-alive', '--once', '1234']);
    assert.deepEqual([missing.code, lastLine(missing.stderr)], [2, 'Error: etcdserver: requested lease not found']);
  });

  test("revoke prints revoked, and a second revoke fails with etcd's message", async () => {
    const { id } = await api.grant(0n, 60);
    assert.deepEqual(await etcdctl(['lease', 'revoke', hex(id)]), {
      code: 0,
      stdout: `lease ${hex(id)} revoked\n`,
      stderr: '',
    });
    const again = await etcdctl(['lease', 'revoke', hex(id)]);
    assert.deepEqual(
      [again.code, lastLine(again.stderr)],
      [1, 'Error: failed to revoke lease (etcdserver: requested lease not found)'],
    );
  });

  test('json output carries the header and etcd field names', async () => {
    const { id } = await api.grant(0n, 60);
    const ttl = (await etcdctl(['lease', 'timetolive', '-w', 'json', hex(id)])).stdout;
    assert.match(
      ttl,
      new RegExp(
        `"member_id":${memberId},"revision":1,"raft_term":3,"id":${id},"ttl":(59|60),"granted-ttl":60,"keys":null`,
      ),
    );
    const grant = (await etcdctl(['lease', 'grant', '-w', 'json', '30'])).stdout;
    assert.match(grant, /"ID":\d+,"TTL":30,"Error":""}/);
  });
});
