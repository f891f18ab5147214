/**
 * /metrics against a real etcd's: the same small workload on both, then the metric families etcd's
 * dashboards and alerts use are compared by name, type, help text and label names (names tsetcd
 * lacks fail the test, listed), every other family both expose by type and label names (those only
 * one of them exposes are listed); a put moves the same counters by the same amounts on both;
 * --listen-metrics-urls serves the same families with /health and nothing else; and in a
 * 3-member cluster exactly one member reports itself leader while all see a leader.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from '../support/cluster.js';
import { runEtcdctl } from '../support/etcdctl.js';
import { Member } from '../support/member.js';
import { freePort, loopbackHost } from '../support/ports.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../support/sut.js';

/** One metric family of the text format: its HELP, TYPE and samples. */
interface Family {
  help: string;
  type: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

/** Parses Prometheus' text format (as etcd and prom-client write it) into families by name. */
function parseMetrics(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let found = families.get(name);
    if (found === undefined) families.set(name, (found = { help: '', type: '', samples: [] }));
    return found;
  };
  for (const line of text.split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta !== null) {
      if (meta[1] === 'HELP') family(meta[2]!).help = meta[3]!;
      else family(meta[2]!).type = meta[3]!;
      continue;
    }
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (sample === null) continue;
    const labels: Record<string, string> = {};
    for (const match of (sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[match[1]!] = match[2]!;
    const base = sample[1]!.replace(/_(bucket|sum|count)$/, '');
    const owner = families.has(sample[1]!) ? sample[1]! : base;
    family(owner).samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
  }
  return families;
}

/** Label names of a family's samples, `le` left out, sorted and joined. */
function labelNames(family: Family): string {
  const names = new Set<string>();
  for (const sample of family.samples)
    for (const name of Object.keys(sample.labels)) if (name !== 'le') names.add(name);
  return [...names].sort().join(',');
}

/** The value of the sample of `name` whose labels include `labels`; 0 when there is none. */
function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''));
  const sample = family?.samples.find(
    (candidate) =>
      candidate.name === name && Object.entries(labels).every(([key, value]) => candidate.labels[key] === value),
  );
  return sample?.value ?? 0;
}

async function scrape(url: string): Promise<Map<string, Family>> {
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200, `GET ${url}/metrics`);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseMetrics(await response.text());
}

/** The families the brief's dashboards and alerts read, which a single etcd member shows. */
const comparedNames = [
  'etcd_server_has_leader',
  'etcd_server_is_leader',
  'etcd_server_leader_changes_seen_total',
  'etcd_server_proposals_committed_total',
  'etcd_server_proposals_applied_total',
  'etcd_server_proposals_pending',
  'etcd_server_proposals_failed_total',
  'etcd_server_id',
  'etcd_server_version',
  'etcd_server_heartbeat_send_failures_total',
  'etcd_server_slow_apply_total',
  'etcd_disk_wal_fsync_duration_seconds',
  'etcd_disk_backend_commit_duration_seconds',
  'etcd_mvcc_db_total_size_in_bytes',
  'etcd_mvcc_db_total_size_in_use_in_bytes',
  'etcd_mvcc_put_total',
  'etcd_mvcc_delete_total',
  'etcd_mvcc_range_total',
  'etcd_mvcc_txn_total',
  'etcd_debugging_mvcc_keys_total',
  'etcd_network_client_grpc_sent_bytes_total',
  'etcd_network_client_grpc_received_bytes_total',
  'grpc_server_started_total',
  'grpc_server_handled_total',
  'grpc_server_msg_received_total',
  'grpc_server_msg_sent_total',
  'grpc_server_handling_seconds',
  'process_cpu_seconds_total',
  'process_open_fds',
  'process_max_fds',
  'process_resident_memory_bytes',
  'process_start_time_seconds',
  'etcd_server_health_success',
  'etcd_server_health_failures',
  'etcd_disk_backend_defrag_duration_seconds',
  'etcd_disk_defrag_inflight',
  'etcd_disk_backend_snapshot_duration_seconds',
  'etcd_mvcc_hash_duration_seconds',
  'etcd_mvcc_hash_rev_duration_seconds',
  'os_fd_used',
  'os_fd_limit',
  'etcd_disk_wal_write_bytes_total',
  'etcd_server_client_requests_total',
  'etcd_server_learner_promote_successes',
  'etcd_server_snapshot_apply_in_progress_total',
  'etcd_server_read_indexes_failed_total',
  'etcd_server_slow_read_indexes_total',
  'etcd_mvcc_db_open_read_transactions',
  'etcd_snap_fsync_duration_seconds',
  'etcd_snap_db_fsync_duration_seconds',
  'etcd_snap_db_save_total_duration_seconds',
  'process_virtual_memory_max_bytes',
  'promhttp_metric_handler_requests_in_flight',
  'promhttp_metric_handler_requests_total',
];

/**
 * The families etcd 3.4 exposes that tsetcd need not, each with why; any other family etcd shows
 * after the same workload and tsetcd lacks fails the first test, so a gap cannot open unseen.
 */
const notRequired: readonly { pattern: RegExp; reason: string }[] = [
  {
    pattern: /^etcd_debugging_/,
    reason:
      "etcd's debugging families, which it marks unstable (the v2 store's etcd_debugging_store_* among them: tsetcd serves no v2 API)",
  },
  {
    pattern: /^etcd_grpc_proxy_/,
    reason: "etcd grpc-proxy's, registered in every etcd process but never moved by a member",
  },
  { pattern: /^go_/, reason: "Go's runtime; tsetcd runs on Node.js, whose runtime shows as nodejs_*" },
  {
    pattern: /^etcd_server_go_version$/,
    reason: 'the Go release etcd was built with; tsetcd has no Go (nodejs_version_info names its runtime)',
  },
];

/** The families of `expected` that `actual` lacks and no entry of notRequired explains. */
function unexplainedMissing(expected: Map<string, Family>, actual: Map<string, Family>): string[] {
  return [...expected.keys()]
    .filter((name) => !actual.has(name) && !notRequired.some(({ pattern }) => pattern.test(name)))
    .sort();
}

/** Operations and the families etcd moves for each: the same deltas are expected of tsetcd. */
const operationCounts = {
  health: 'etcd_server_health_success',
  defrag: 'etcd_disk_backend_defrag_duration_seconds_count',
  hashkv: 'etcd_mvcc_hash_rev_duration_seconds_count',
  snapshot: 'etcd_disk_backend_snapshot_duration_seconds_count',
} as const;

/** What moved on etcd (first) is `expected`, and on tsetcd (second) the same. */
function assertMovedAsEtcd(moves: readonly Record<string, unknown>[], expected: Record<string, unknown>): void {
  const [etcd, tsetcd] = moves;
  assert.deepEqual(etcd, expected, 'what moved on etcd');
  assert.deepEqual(tsetcd, etcd, 'what moved on tsetcd, as on etcd');
}

/** etcdctl 3.4's calls, which name client API version 3.4 in their metadata. */
const unaryV34 = { type: 'unary', client_api_version: '3.4' };
const streamV34 = { type: 'stream', client_api_version: '3.4' };

const sut = sutCommand();
const skip = sut.command === undefined ? { skip: sut.skipReason } : {};

/** A member with a metrics URL and extensive metrics, after the same small workload. */
async function startWithWorkload(command: MemberCommand): Promise<{ member: Member; metricsUrl: string }> {
  const metricsUrl = `http://${loopbackHost}:${await freePort()}`;
  const member = await Member.start({
    command,
    extraFlags: ['--listen-metrics-urls', metricsUrl, '--metrics', 'extensive'],
  });
  const steps = [
    ['put', 'a', '1'],
    ['get', 'a'],
    ['del', 'a'],
    ['put', 'b', '2'],
    ['endpoint', 'status'],
  ];
  for (const args of steps) {
    const result = await runEtcdctl(member.clientUrl, args);
    assert.equal(result.code, 0, `etcdctl ${args.join(' ')}: ${result.stderr}`);
  }
  return { member, metricsUrl };
}

describe('/metrics as etcd exposes it', skip, () => {
  test("the dashboards' metric families match a real etcd's by type, help text and labels", async (t) => {
    const etcd = await startWithWorkload(etcdCommand());
    const tsetcd = await startWithWorkload(sut.command as MemberCommand);
    try {
      const expected = await scrape(etcd.member.clientUrl);
      const actual = await scrape(tsetcd.member.clientUrl);
      const missing = comparedNames.filter((name) => !actual.has(name));
      assert.deepEqual(missing, [], `metric families tsetcd lacks: ${missing.join(', ')}`);
      for (const name of comparedNames) {
        const reference = expected.get(name);
        assert.ok(reference !== undefined, `etcd shows ${name}`);
        const family = actual.get(name)!;
        assert.equal(family.type, reference.type, `type of ${name}`);
        if (!name.startsWith('process_')) assert.equal(family.help, reference.help, `help of ${name}`);
        assert.equal(labelNames(family), labelNames(reference), `label names of ${name}`);
      }
      for (const name of [
        'etcd_disk_wal_fsync_duration_seconds',
        'grpc_server_handling_seconds',
        'etcd_snap_fsync_duration_seconds',
        'etcd_snap_db_fsync_duration_seconds',
        'etcd_snap_db_save_total_duration_seconds',
      ]) {
        const bounds = (families: Map<string, Family>) =>
          [...new Set(families.get(name)!.samples.flatMap((sample) => sample.labels.le ?? []))].join(' ');
        assert.equal(bounds(actual), bounds(expected), `buckets of ${name}`);
      }
      // Every gRPC method tsetcd reports, etcd reports with the same type; those it lacks are named.
      const methods = (families: Map<string, Family>) =>
        new Set(
          families
            .get('grpc_server_started_total')!
            .samples.map((s) => `${s.labels.grpc_service}/${s.labels.grpc_method} ${s.labels.grpc_type}`),
        );
      const etcdMethods = methods(expected);
      const ours = methods(actual);
      // Known difference: AuthStatus came in etcd 3.5; tsetcd serves it, etcd 3.4 has no such method.
      const servedBeyondEtcd34 = new Set(['etcdserverpb.Auth/AuthStatus unary']);
      assert.deepEqual(
        [...ours].filter((method) => !etcdMethods.has(method) && !servedBeyondEtcd34.has(method)),
        [],
        'gRPC methods etcd does not report',
      );
      t.diagnostic(
        `gRPC methods etcd reports and tsetcd does not serve: ${[...etcdMethods].filter((m) => !ours.has(m)).join(', ')}`,
      );
      // Beyond the dashboards' families: every family both expose agrees in type and label names
      // (labels where both have samples), and those only etcd exposes are listed.
      const disagreeing = [...actual.keys()].filter((name) => {
        const reference = expected.get(name);
        if (reference === undefined) return false;
        const family = actual.get(name)!;
        const bothSampled = family.samples.length > 0 && reference.samples.length > 0;
        return family.type !== reference.type || (bothSampled && labelNames(family) !== labelNames(reference));
      });
      assert.deepEqual(disagreeing, [], 'families exposed by both with another type or other label names');
      assert.deepEqual(
        unexplainedMissing(expected, actual),
        [],
        'families etcd exposes, tsetcd lacks, and no documented exclusion explains',
      );
      const onlyEtcd = [...expected.keys()].filter((name) => !actual.has(name) && !name.startsWith('go_')).sort();
      t.diagnostic(`families etcd exposes and tsetcd need not (Go's runtime left out): ${onlyEtcd.join(', ')}`);
      const onlyOurs = [...actual.keys()].filter((name) => !expected.has(name)).sort();
      t.diagnostic(`families tsetcd exposes and etcd does not: ${onlyOurs.join(', ')}`);
      assert.equal(valueOf(actual, 'etcd_mvcc_put_total'), valueOf(expected, 'etcd_mvcc_put_total'));
      assert.equal(valueOf(actual, 'etcd_mvcc_delete_total'), valueOf(expected, 'etcd_mvcc_delete_total'));
      assert.equal(
        valueOf(actual, 'etcd_debugging_mvcc_keys_total'),
        valueOf(expected, 'etcd_debugging_mvcc_keys_total'),
      );
    } finally {
      await Promise.all([etcd.member.destroy(), tsetcd.member.destroy()]);
    }
  });

  test('a put moves the put and gRPC counters by the same amounts as on etcd', async () => {
    const deltas: Record<string, number>[] = [];
    for (const command of [etcdCommand(), sut.command as MemberCommand]) {
      const { member } = await startWithWorkload(command);
      try {
        const before = await scrape(member.clientUrl);
        const put = await runEtcdctl(member.clientUrl, ['put', 'moved', 'value']);
        assert.equal(put.code, 0, put.stderr);
        const after = await scrape(member.clientUrl);
        const kvPut = { grpc_service: 'etcdserverpb.KV', grpc_method: 'Put', grpc_type: 'unary' };
        const delta = (name: string, labels: Record<string, string> = {}) =>
          valueOf(after, name, labels) - valueOf(before, name, labels);
        deltas.push({
          put: delta('etcd_mvcc_put_total'),
          started: delta('grpc_server_started_total', kvPut),
          handledOk: delta('grpc_server_handled_total', { ...kvPut, grpc_code: 'OK' }),
          received: delta('grpc_server_msg_received_total', kvPut),
          sent: delta('grpc_server_msg_sent_total', kvPut),
          receivedBytes: delta('etcd_network_client_grpc_received_bytes_total'),
          handlingCount: delta('grpc_server_handling_seconds_count', kvPut),
          applied: delta('etcd_server_proposals_applied_total'),
          walWritten: Number(delta('etcd_disk_wal_write_bytes_total') > 0),
          unaryRequests: delta('etcd_server_client_requests_total', unaryV34),
          streamRequests: delta('etcd_server_client_requests_total', { type: 'stream' }),
          scrapesAnswered: delta('promhttp_metric_handler_requests_total', { code: '200' }),
          scrapesInFlight: valueOf(after, 'promhttp_metric_handler_requests_in_flight'),
        });
      } finally {
        await member.destroy();
      }
    }
    const [etcd, tsetcd] = deltas;
    const { receivedBytes, ...counts } = etcd!;
    assert.deepEqual(counts, {
      put: 1,
      started: 1,
      handledOk: 1,
      received: 1,
      sent: 1,
      handlingCount: 1,
      applied: 1,
      walWritten: 1,
      unaryRequests: 1,
      streamRequests: 0,
      scrapesAnswered: 1,
      scrapesInFlight: 1,
    });
    assert.ok(receivedBytes! > 0, `etcd counted ${receivedBytes} request bytes`);
    assert.deepEqual(tsetcd, etcd);
  });

  test('/health, defragment, HashKV and snapshot save move the same families by the same amounts as on etcd', async (t) => {
    const deltas: Record<string, number>[] = [];
    const dir = await mkdtemp(join(tmpdir(), 'tsetcd-metrics-'));
    try {
      for (const command of [etcdCommand(), sut.command as MemberCommand]) {
        const { member } = await startWithWorkload(command);
        try {
          const before = await scrape(member.clientUrl);
          assert.equal((await fetch(`${member.clientUrl}/health`)).status, 200);
          for (const args of [
            ['defrag'],
            ['endpoint', 'hashkv'],
            ['snapshot', 'save', join(dir, `${deltas.length}.db`)],
          ]) {
            const result = await runEtcdctl(member.clientUrl, args, { timeoutMs: 60_000 });
            assert.equal(result.code, 0, `etcdctl ${args.join(' ')}: ${result.stderr}`);
          }
          const after = await scrape(member.clientUrl);
          const moved: Record<string, number> = {};
          for (const [operation, name] of Object.entries(operationCounts))
            moved[operation] = valueOf(after, name) - valueOf(before, name);
          moved.unaryRequests =
            valueOf(after, 'etcd_server_client_requests_total', unaryV34) -
            valueOf(before, 'etcd_server_client_requests_total', unaryV34);
          moved.streamRequests =
            valueOf(after, 'etcd_server_client_requests_total', streamV34) -
            valueOf(before, 'etcd_server_client_requests_total', streamV34);
          moved.defragInflight = valueOf(after, 'etcd_disk_defrag_inflight');
          moved.fdsUsed = Number(valueOf(after, 'os_fd_used') > 0);
          moved.fdLimit = Number(valueOf(after, 'os_fd_limit') >= valueOf(after, 'os_fd_used'));
          // A few read transactions at most: etcd's backend keeps a shared one open and samples the
          // count at its last write transaction (a snapshot save's reader open then still shows:
          // 2 seen here), tsetcd counts LMDB's active readers at the scrape (0 or 1 seen here).
          const openReads = valueOf(after, 'etcd_mvcc_db_open_read_transactions');
          moved.openReadsFew = Number(Number.isInteger(openReads) && openReads >= 0 && openReads <= 2);
          t.diagnostic(`${command.label}: etcd_mvcc_db_open_read_transactions ${openReads}`);
          deltas.push(moved);
        } finally {
          await member.destroy();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // etcdctl's defrag and hashkv are one unary call each, snapshot save one server stream.
    assertMovedAsEtcd(deltas, {
      health: 1,
      defrag: 1,
      hashkv: 1,
      snapshot: 1,
      unaryRequests: 2,
      streamRequests: 1,
      defragInflight: 0,
      fdsUsed: 1,
      fdLimit: 1,
      openReadsFew: 1,
    });
  });

  test('snap files and a refused learner promotion move the same families as on etcd', async () => {
    const moves: Record<string, unknown>[] = [];
    for (const command of [etcdCommand(), sut.command as MemberCommand]) {
      // Five entries per snapshot: the puts below make the member write snap files.
      const member = await Member.start({ command, extraFlags: ['--snapshot-count', '5'] });
      try {
        const before = await scrape(member.clientUrl);
        for (let put = 0; put < 12; put++) {
          const result = await runEtcdctl(member.clientUrl, ['put', `snap${put}`, 'v']);
          assert.equal(result.code, 0, result.stderr);
        }
        // A learner that never starts is never in sync with the leader, so its promotion is refused.
        const peerUrl = `http://${loopbackHost}:${await freePort()}`;
        const added = await runEtcdctl(member.clientUrl, [
          'member',
          'add',
          'learner',
          '--learner',
          `--peer-urls=${peerUrl}`,
        ]);
        assert.equal(added.code, 0, added.stderr);
        // etcdctl prints the id with %16x: an id below 2^60 comes with a leading space.
        const learnerId = /Member +([0-9a-f]+) added/.exec(added.stdout)?.[1];
        assert.ok(learnerId !== undefined, `member add names the learner: ${added.stdout}`);
        const promoted = await runEtcdctl(member.clientUrl, ['member', 'promote', learnerId]);
        assert.notEqual(promoted.code, 0, 'promoting a learner that never started is refused');
        const after = await scrape(member.clientUrl);
        const count = (name: string) => valueOf(after, name) - valueOf(before, name);
        moves.push({
          snapFilesSynced: Number(count('etcd_snap_fsync_duration_seconds_count') > 0),
          receivedDatabases: count('etcd_snap_db_save_total_duration_seconds_count'),
          receivedDatabaseFsyncs: count('etcd_snap_db_fsync_duration_seconds_count'),
          applyingSnapshot: valueOf(after, 'etcd_server_snapshot_apply_in_progress_total'),
          promoted: count('etcd_server_learner_promote_successes'),
          promotionFailures: after
            .get('etcd_server_learner_promote_failures')
            ?.samples.map((sample) => `${sample.labels.Reason} ${sample.value}`),
        });
      } finally {
        await member.destroy();
      }
    }
    assertMovedAsEtcd(moves, {
      snapFilesSynced: 1,
      receivedDatabases: 0,
      receivedDatabaseFsyncs: 0,
      applyingSnapshot: 0,
      promoted: 0,
      promotionFailures: ['etcdserver: can only promote a learner member which is in sync with leader 1'],
    });
  });

  test('--listen-metrics-urls serves the same families and /health, and nothing else, as on etcd', async () => {
    const answers: string[][] = [];
    for (const command of [etcdCommand(), sut.command as MemberCommand]) {
      const { member, metricsUrl } = await startWithWorkload(command);
      try {
        const fromClient = await scrape(member.clientUrl);
        const fromMetrics = await scrape(metricsUrl);
        assert.deepEqual([...fromMetrics.keys()].sort(), [...fromClient.keys()].sort());
        const codes: string[] = [];
        for (const path of ['/health', '/version', '/v3/kv/range']) {
          codes.push(`${path} ${(await fetch(`${metricsUrl}${path}`, { method: 'GET' })).status}`);
        }
        answers.push(codes);
      } finally {
        await member.destroy();
      }
    }
    assert.deepEqual(answers[1], answers[0]);
    assert.deepEqual(answers[0], ['/health 200', '/version 404', '/v3/kv/range 404']);
  });

  test('in a 3-member cluster one member is leader, all have one, and peer bytes name the peers', async () => {
    const cluster = await Cluster.start({ command: sut.command as MemberCommand });
    try {
      await runEtcdctl(cluster.endpoints()[0]!, ['put', 'k', 'v']);
      const scraped = await Promise.all(cluster.members.map((member) => scrape(member.clientUrl)));
      const ids = scraped.map((families) => families.get('etcd_server_id')!.samples[0]!.labels.server_id!);
      assert.deepEqual(
        scraped.map((families) => valueOf(families, 'etcd_server_has_leader')),
        [1, 1, 1],
      );
      assert.equal(
        scraped.reduce((sum, families) => sum + valueOf(families, 'etcd_server_is_leader'), 0),
        1,
      );
      const leaderId = ids[scraped.findIndex((families) => valueOf(families, 'etcd_server_is_leader') === 1)]!;
      // The leader talks to every follower; a follower to the leader, and to the other follower only
      // if an election had more than one candidate (a slow start on a loaded machine does that).
      scraped.forEach((families, position) => {
        const others = ids.filter((id) => id !== ids[position]).sort();
        const named = (name: string, label: string) =>
          families
            .get(name)!
            .samples.map((sample) => sample.labels[label]!)
            .sort();
        for (const [name, label] of [
          ['etcd_network_peer_sent_bytes_total', 'To'],
          ['etcd_network_peer_received_bytes_total', 'From'],
        ] as const) {
          const peers = named(name, label);
          if (ids[position] === leaderId) assert.deepEqual(peers, others, `${name} on the leader`);
          else {
            assert.ok(peers.includes(leaderId), `${name} on a follower names the leader: ${peers.join(',')}`);
            assert.ok(
              peers.every((peer) => others.includes(peer)),
              `${name} on a follower names only members: ${peers.join(',')}`,
            );
          }
        }
        assert.equal(families.has('grpc_server_handling_seconds'), false, 'basic metrics leave out handling times');
      });
    } finally {
      await cluster.destroy();
    }
  });
});
