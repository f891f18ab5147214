/**
 * The three-topology cluster benchmark (bench/cluster.ts): its flags, round order and ratio
 * medians on given rows, and a short real run of every topology it can start here. No timing is
 * asserted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import {
  clusterRatios,
  formatClusterReport,
  leaderFirst,
  parseClusterArgs,
  runClusterBench,
  securityLabel,
  singleHostEndpoints,
  systemOrder,
  type ClusterOp,
  type ClusterRow,
  type ClusterSystem,
} from '../../bench/cluster.js';
import { hasOpenssl } from '../support/certificates.js';
import { Cluster } from '../support/cluster.js';
import { etcdCommand, sutCommand } from '../support/sut.js';

test('cluster.js takes --rounds and --systems and refuses bad values', () => {
  const defaults = parseClusterArgs([]);
  assert.equal(defaults.rounds, 1);
  assert.deepEqual(defaults.systems, ['etcd', 'tsetcd', 'single-host']);
  const parsed = parseClusterArgs(['--rounds', '3', '--systems', 'tsetcd,etcd', '--clients', '1,8']);
  assert.equal(parsed.rounds, 3);
  assert.deepEqual(parsed.systems, ['tsetcd', 'etcd']);
  assert.deepEqual(parsed.clients, [1, 8]);
  assert.throws(() => parseClusterArgs(['--rounds', '0']), /--rounds must be 1\.\.20, saw 0/);
  assert.throws(
    () => parseClusterArgs(['--systems', 'etcd,zookeeper']),
    /--systems takes etcd, tsetcd, single-host; saw zookeeper/,
  );
  assert.throws(() => parseClusterArgs(['--clients', '1,x']), /--clients must list positive integers/);
  assert.throws(() => parseClusterArgs(['--systems', 'etcd,etcd']), /--systems names a system twice: etcd,etcd/);
  assert.deepEqual(defaults.ops, ['put']);
  assert.deepEqual(parseClusterArgs(['--ops', 'put,range-s,range-l']).ops, ['put', 'range-s', 'range-l']);
  assert.throws(
    () => parseClusterArgs(['--ops', 'put,delete']),
    /--ops takes put, range-l, range-s, authenticate; saw delete/,
  );
  assert.throws(() => parseClusterArgs(['--ops', 'put,put']), /--ops names a workload twice: put,put/);
  assert.throws(() => parseClusterArgs(['--duration', '0']), /--duration must be positive/);
  assert.throws(() => parseClusterArgs(['--bogus', '1']), /unknown flag --bogus/);
});

test('cluster.js takes --tls and --auth for etcd and tsetcd, not for single-host mode', () => {
  const defaults = parseClusterArgs([]);
  assert.deepEqual([defaults.tls, defaults.auth, securityLabel(defaults)], [false, false, 'plain']);
  const both = parseClusterArgs(['--tls', '--systems', 'etcd,tsetcd', '--auth', '--clients', '64']);
  assert.deepEqual([both.tls, both.auth, securityLabel(both), both.clients], [true, true, 'tls+auth', [64]]);
  assert.equal(securityLabel(parseClusterArgs(['--tls', '--systems', 'tsetcd'])), 'tls');
  assert.equal(securityLabel(parseClusterArgs(['--auth', '--systems', 'tsetcd'])), 'auth');
  assert.throws(
    () => parseClusterArgs(['--tls']),
    /--tls, --auth and --members apply to etcd and tsetcd; leave single-host out/,
  );
  assert.throws(
    () => parseClusterArgs(['--auth', '--systems', 'single-host']),
    /--tls, --auth and --members apply to etcd and tsetcd; leave single-host out/,
  );
});

test("cluster.js measures Authenticate with --auth, on 1 to 5 members, at a bcrypt cost in bcrypt's bounds", () => {
  const defaults = parseClusterArgs([]);
  assert.deepEqual([defaults.members, defaults.bcryptCost], [3, 10]);
  const parsed = parseClusterArgs([
    '--auth',
    '--ops',
    'authenticate',
    '--members',
    '1',
    '--bcrypt-cost',
    '4',
    '--systems',
    'etcd,tsetcd',
  ]);
  assert.deepEqual([parsed.ops, parsed.members, parsed.bcryptCost], [['authenticate'], 1, 4]);
  assert.throws(
    () => parseClusterArgs(['--ops', 'authenticate', '--systems', 'etcd']),
    /--ops authenticate needs --auth/,
  );
  assert.throws(
    () => parseClusterArgs(['--members', '6', '--systems', 'etcd']),
    /--members must be an integer in 1\.\.5, saw 6/,
  );
  assert.throws(() => parseClusterArgs(['--members', '1']), /leave single-host out of --systems/);
  assert.throws(
    () => parseClusterArgs(['--bcrypt-cost', '3', '--systems', 'etcd']),
    /--bcrypt-cost must be an integer in 4\.\.31, saw 3/,
  );
});

test('each round starts with a different system', () => {
  const systems: ClusterSystem[] = ['etcd', 'tsetcd', 'single-host'];
  assert.deepEqual(systemOrder(systems, 1), ['etcd', 'tsetcd', 'single-host']);
  assert.deepEqual(systemOrder(systems, 2), ['tsetcd', 'single-host', 'etcd']);
  assert.deepEqual(systemOrder(systems, 3), ['single-host', 'etcd', 'tsetcd']);
  assert.deepEqual(systemOrder(systems, 4), systemOrder(systems, 1));
});

function row(
  system: ClusterSystem,
  round: number,
  clients: number,
  throughputPerSec: number,
  p99Ms: number,
  op: ClusterOp = 'put',
): ClusterRow {
  return {
    system,
    round,
    op,
    clients,
    throughputPerSec,
    p50Ms: p99Ms / 4,
    p99Ms,
    maxMs: p99Ms * 2,
    errors: 0,
    serverCpuPerRequestUs: 1_000_000 / throughputPerSec,
    clientCpuPercent: 30,
    hostStealPercent: 1,
  };
}

test("ratios pair each workload with etcd's same workload and client count", () => {
  const rows = [
    row('etcd', 1, 64, 1000, 40),
    row('etcd', 1, 64, 4000, 10, 'range-l'),
    row('tsetcd', 1, 64, 2000, 20),
    row('tsetcd', 1, 64, 6000, 20, 'range-l'),
  ];
  assert.deepEqual(
    clusterRatios(rows).map((r) => [r.op, r.throughput, r.p99]),
    [
      ['put', 2, 0.5],
      ['range-l', 1.5, 2],
    ],
  );
});

test('ratios pair each round with etcd in the same round and take the median', () => {
  const rows = [
    row('etcd', 1, 64, 1000, 40),
    row('etcd', 2, 64, 2000, 40),
    row('etcd', 3, 64, 1000, 80),
    row('tsetcd', 1, 64, 1500, 20),
    row('tsetcd', 2, 64, 1000, 80),
    row('tsetcd', 3, 64, 3000, 40),
    // No etcd row for 256 clients: nothing to pair, so no ratio.
    row('tsetcd', 1, 256, 5000, 50),
  ];
  const ratios = clusterRatios(rows);
  assert.equal(ratios.length, 1);
  // Per round: throughput 1.5, 0.5, 3; p99 0.5, 2, 0.5; cpu per request is the throughput's inverse.
  assert.deepEqual(ratios[0], {
    system: 'tsetcd',
    op: 'put',
    clients: 64,
    throughput: 1.5,
    p50: 0.5,
    p99: 0.5,
    serverCpuPerRequest: 0.67,
  });
  const text = formatClusterReport({
    clientLabel: 'test client',
    security: 'plain',
    members: 3,
    rows,
    peakRssKb: { etcd: 2048, tsetcd: 4096 },
    ratios,
  });
  assert.match(text, /^tsetcd 3 processes\s+put\s+64\s+1\.5\s+0\.5\s+0\.5\s+0\.67$/m);
  assert.match(text, /etcd 3 processes 2\.0, tsetcd 3 processes 4\.0$/m);
});

/** Whether nothing listens on `port` of 127.0.0.1. */
async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

const sut = sutCommand();
test(
  'a short run measures every topology it can start here',
  sut.command === undefined ? { skip: sut.skipReason } : {},
  async (t) => {
    const ports = singleHostEndpoints.flatMap((endpoint) => {
      const client = Number(new URL(endpoint).port);
      return [client, client + 1];
    });
    const singleHostPortsFree = (await Promise.all(ports.map(portFree))).every(Boolean);
    if (!singleHostPortsFree) t.diagnostic(`single-host mode not run: one of ports ${ports.join(', ')} is in use`);
    const systems: ClusterSystem[] = singleHostPortsFree ? ['etcd', 'tsetcd', 'single-host'] : ['etcd', 'tsetcd'];
    const options = {
      ...parseClusterArgs(['--duration', '0.3', '--warmup', '0.2', '--clients', '2', '--ops', 'put,range-l']),
      systems,
    };
    const report = await runClusterBench(options, sut.command!);
    assert.deepEqual(
      report.rows.map((r) => `${r.system} ${r.op}`),
      systems.flatMap((system) => [`${system} put`, `${system} range-l`]),
    );
    for (const r of report.rows) {
      assert.ok(r.throughputPerSec > 0 && r.errors === 0, `expected puts without errors, saw ${JSON.stringify(r)}`);
      assert.ok(r.serverCpuPerRequestUs > 0, `expected the members' CPU to be counted, saw ${JSON.stringify(r)}`);
      assert.ok((report.peakRssKb[r.system] ?? 0) > 0, `expected a peak RSS for ${r.system}`);
    }
    assert.deepEqual(
      report.ratios.map((r) => `${r.system} ${r.op}`),
      systems.slice(1).flatMap((system) => [`${system} put`, `${system} range-l`]),
    );
  },
);

test(
  'with --tls and --auth, puts and Authenticate calls go through on etcd and tsetcd alike',
  sut.command === undefined ? { skip: sut.skipReason } : hasOpenssl() ? {} : { skip: 'openssl is not installed' },
  async () => {
    const options = parseClusterArgs(
      ['--tls', '--auth', '--systems', 'etcd,tsetcd', '--members', '1', '--bcrypt-cost', '4'].concat([
        '--ops',
        'put,authenticate',
        '--clients',
        '2',
        '--duration',
        '0.3',
        '--warmup',
        '0.2',
      ]),
    );
    const report = await runClusterBench(options, sut.command!);
    assert.equal(report.security, 'tls+auth');
    assert.deepEqual(
      report.rows.map((r) => `${r.system} ${r.op}`),
      ['etcd put', 'etcd authenticate', 'tsetcd put', 'tsetcd authenticate'],
    );
    for (const r of report.rows)
      assert.ok(r.throughputPerSec > 0 && r.errors === 0, `expected no errors, saw ${JSON.stringify(r)}`);
    assert.match(formatClusterReport(report), /members: tls\+auth;[\s\S]*^etcd 1 processes\s+put/m);
  },
);

test("the leader's endpoint goes first, the others keep their order", async () => {
  const cluster = await Cluster.start({ command: etcdCommand() });
  try {
    const leader = await cluster.leader();
    const followers = cluster.endpoints().filter((endpoint) => endpoint !== leader.clientUrl);
    // The leader last, so leaving the list as it is cannot pass.
    assert.deepEqual(await leaderFirst([...followers, leader.clientUrl]), [leader.clientUrl, ...followers]);
  } finally {
    await cluster.destroy();
  }
});
