import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, FlagError, loadConfig } from '../../src/config/config.js';
import { parseGoDurationMs } from '../../src/config/parse.js';
import { serverFlags, type FlagKind } from '../../src/config/flags.js';

const load = (argv: string[], env: NodeJS.ProcessEnv = {}, files: Record<string, string> = {}) =>
  loadConfig({
    argv,
    env,
    readFile: (path) => {
      const text = files[path];
      if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
      return text;
    },
  });

test('no flags gives etcd defaults', () => {
  const { config } = load([]);
  assert.equal(config.name, 'default');
  assert.equal(config.dataDir, 'default.etcd');
  assert.deepEqual(config.listenClientUrls, ['http://localhost:2379']);
  assert.deepEqual(config.advertiseClientUrls, ['http://localhost:2379']);
  assert.deepEqual(config.listenPeerUrls, ['http://localhost:2380']);
  assert.deepEqual(config.initialCluster, [{ name: 'default', peerUrls: ['http://localhost:2380'] }]);
  assert.equal(config.initialClusterToken, 'etcd-cluster');
  assert.equal(config.snapshotCount, 100000);
  assert.equal(config.heartbeatIntervalMs, 100);
  assert.equal(config.electionTimeoutMs, 1000);
  assert.equal(config.maxRequestBytes, 1572864);
  assert.equal(config.maxTxnOps, 128);
  assert.equal(config.quotaBackendBytes, 2 * 1024 ** 3);
  assert.equal(config.backendBatchIntervalMs, 100);
  assert.equal(config.backendBatchLimit, 10000);
  assert.equal(config.preVote, false, "etcd 3.4's --pre-vote default");
  assert.equal(config.logLevel, 'info');
});

test("etcd 3.4's deprecated --log-output counts only when it names more outputs than --log-outputs", () => {
  assert.deepEqual(load(['--log-output', 'stderr']).config.logOutputs, ['default']);
  assert.deepEqual(load(['--log-output', 'stderr,stdout']).config.logOutputs, ['stderr', 'stdout']);
  assert.deepEqual(load(['--log-outputs', 'stderr,stdout']).config.logOutputs, ['stderr', 'stdout']);
});

test("etcd 3.4's deprecated --debug asks for debug-level logs", () => {
  assert.equal(load(['--debug']).config.logLevel, 'debug');
  assert.equal(load(['--debug', '--log-level', 'warn']).config.logLevel, 'debug');
});

test('the backend batch flags take durations and counts; 0 keeps etcd defaults', () => {
  const { config } = load(['--backend-batch-interval', '25ms', '--backend-batch-limit', '64']);
  assert.equal(config.backendBatchIntervalMs, 25);
  assert.equal(config.backendBatchLimit, 64);
  const zero = load(['--backend-batch-interval=0s', '--backend-batch-limit=0']).config;
  assert.equal(zero.backendBatchIntervalMs, 100);
  assert.equal(zero.backendBatchLimit, 10000);
  assert.throws(() => load(['--backend-batch-limit=-1']), ConfigError);
});

test('a renamed member defaults its data dir and initial cluster to its name', () => {
  const { config } = load(['--name', 'm1']);
  assert.equal(config.dataDir, 'm1.etcd');
  assert.deepEqual(config.initialCluster, [{ name: 'm1', peerUrls: ['http://localhost:2380'] }]);
});

test('flags take Go flag forms: single dash, double dash, equals sign, bare booleans', () => {
  const { config } = load(['-name=a', '--data-dir', '/tmp/a', '--pre-vote', '--unsafe-no-fsync', '-snapshot-count=5']);
  assert.equal(config.name, 'a');
  assert.equal(config.dataDir, '/tmp/a');
  assert.equal(config.preVote, true);
  assert.equal(config.unsafeNoFsync, true);
  assert.equal(config.snapshotCount, 5);
});

test('an unknown flag is a usage error with Go flag text', () => {
  assert.throws(
    () => load(['--foo']),
    (error: Error) => error instanceof FlagError && error.message === 'flag provided but not defined: -foo',
  );
});

test('a bad number is a usage error naming the flag and value', () => {
  assert.throws(
    () => load(['--snapshot-count', 'abc']),
    (error: Error) =>
      error instanceof FlagError && error.message === 'invalid value "abc" for flag -snapshot-count: parse error',
  );
});

test('a flag without its value is a usage error', () => {
  assert.throws(
    () => load(['--name']),
    (error: Error) => error instanceof FlagError && error.message === 'flag needs an argument: -name',
  );
});

test('ETCD_* environment variables set flags not given on the command line', () => {
  const { config } = load([], { ETCD_NAME: 'envname', ETCD_MAX_TXN_OPS: '7' });
  assert.equal(config.name, 'envname');
  assert.equal(config.maxTxnOps, 7);
});

test('an environment variable shadowed by a flag is an error, as in etcd', () => {
  assert.throws(
    () => load(['--name', 'x'], { ETCD_NAME: 'y' }),
    (error: Error) =>
      error instanceof ConfigError && /conflicting environment variable "ETCD_NAME"/.test(error.message),
  );
});

test('listen-client-urls without advertise-client-urls is refused with etcd message', () => {
  assert.throws(
    () => load(['--listen-client-urls', 'http://127.0.0.1:4001']),
    (error: Error) =>
      error.message === '--advertise-client-urls is required when --listen-client-urls is set explicitly',
  );
});

test('election timeout must be at least five heartbeats', () => {
  assert.throws(
    () => load(['--heartbeat-interval', '300', '--election-timeout', '1000']),
    (error: Error) =>
      error.message === '--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]',
  );
});

test('a malformed URL flag names the flag', () => {
  assert.throws(
    () => load(['--listen-peer-urls', 'ftp://x:1']),
    (error: Error) => error instanceof FlagError && /-listen-peer-urls/.test(error.message),
  );
});

test('the YAML config file replaces flags and environment', () => {
  const yaml =
    'name: filed\ndata-dir: /tmp/filed\nsnapshot-count: 42\nlisten-client-urls: http://127.0.0.1:5001\nadvertise-client-urls: http://127.0.0.1:5001\nclient-transport-security:\n  cert-file: /c.pem\n';
  const { config, warnings } = load(['--config-file', '/etc/x.yml'], { ETCD_MAX_TXN_OPS: '3' }, { '/etc/x.yml': yaml });
  assert.equal(config.name, 'filed');
  assert.equal(config.snapshotCount, 42);
  assert.equal(config.maxTxnOps, 128);
  assert.equal(config.clientTls.certFile, '/c.pem');
  assert.ok(warnings.some((warning) => warning.includes('other flags and environment variables are ignored')));
});

test('an unknown key in the config file is an error', () => {
  assert.throws(
    () => load(['--config-file', 'f'], {}, { f: 'bogus: 1\n' }),
    (error: Error) => error instanceof ConfigError && /unknown field "bogus"/.test(error.message),
  );
});

test('Go durations parse to milliseconds', () => {
  assert.equal(parseGoDurationMs('2h0m0s'), 7_200_000);
  assert.equal(parseGoDurationMs('100ms'), 100);
  assert.equal(parseGoDurationMs('1.5s'), 1500);
  assert.equal(parseGoDurationMs('5'), undefined);
  // The same reader as etcdctl's flags (Go's time.ParseDuration): a bare fraction and the Greek mu
  // are durations; a negative one is no setting a member can take.
  assert.equal(parseGoDurationMs('.5s'), 500);
  assert.equal(parseGoDurationMs('250μs'), 0.25);
  assert.equal(parseGoDurationMs('-1s'), undefined);
  assert.equal(parseGoDurationMs('1x'), undefined);
});

test("--max-concurrent-streams reads Go uint32 literals and refuses others with strconv's text", () => {
  const streams = (text: string) => load(['--max-concurrent-streams', text]).config.maxConcurrentStreams;
  assert.equal(load([]).config.maxConcurrentStreams, 4294967295);
  for (const [text, value] of [
    ['0', 0],
    ['100', 100],
    ['1_000', 1000],
    ['0x10', 16],
    ['0o17', 15],
    ['017', 15],
    ['0b101', 5],
    ['4294967295', 4294967295],
  ] as const) {
    assert.equal(streams(text), value, `for ${text}`);
  }
  for (const [text, reason] of [
    ['-1', 'invalid syntax'],
    ['abc', 'invalid syntax'],
    ['08', 'invalid syntax'],
    ['1__0', 'invalid syntax'],
    ['+5', 'invalid syntax'],
    ['4294967296', 'value out of range'],
    ['0x1_0000_0000', 'value out of range'],
  ] as const) {
    assert.throws(
      () => streams(text),
      (error: Error) =>
        error instanceof FlagError &&
        error.message ===
          `invalid value "${text}" for flag -max-concurrent-streams: strconv.ParseUint: parsing "${text}": ${reason}`,
      `for ${text}`,
    );
  }
});

test('flags for parts tsetcd lacks accept their defaults and refuse anything else, saying why', () => {
  const defaults = load([
    '--enable-v2=false',
    '--enable-pprof=false',
    '--discovery=',
    '--discovery-fallback',
    'proxy',
    '--logger',
    'zap',
  ]);
  assert.equal(defaults.config.name, 'default');
  for (const [argv, text] of [
    [['--enable-v2'], /^--enable-v2 is not supported: tsetcd serves the v3 API only$/],
    [['--enable-pprof'], /^--enable-pprof is not supported: /],
    [['--discovery', 'https://discovery.etcd.io/x'], /^--discovery is not supported: .*--initial-cluster$/],
    [['--discovery-srv', 'example.com'], /^--discovery-srv is not supported/],
    [['--discovery-fallback', 'exit'], /^--discovery-fallback is not supported/],
    [['--logger', 'capnslog'], /^--logger=capnslog is not supported/],
    [['--logger', 'foo'], /^unknown logger option "foo"$/],
  ] as const) {
    assert.throws(
      () => load([...argv]),
      (error: Error) => error instanceof ConfigError && text.test(error.message),
    );
  }
});

test('every flag tsetcd marks unsupported takes its default, spelled out, and refuses any other value with its reason', () => {
  const unsupported = serverFlags.filter((spec) => spec.unsupported !== undefined);
  assert.ok(
    unsupported.length >= 16,
    `expected the discovery, v2, proxy and profiler flags, saw ${unsupported.length}`,
  );
  for (const spec of unsupported) {
    const defaultValue = spec.defaultValue ?? '';
    assert.equal(load([`--${spec.name}=${defaultValue}`]).config.name, 'default', `--${spec.name}=${defaultValue}`);
    const other = otherValue(spec.kind, defaultValue, spec.choices);
    assert.throws(
      () => load([`--${spec.name}=${other}`]),
      (error: Error) =>
        error instanceof ConfigError && error.message === `--${spec.name} is not supported: ${spec.unsupported}`,
      `--${spec.name}=${other}`,
    );
  }
});

/** A value of a flag's kind that is not its default (one of its choices, for a selective flag). */
function otherValue(kind: FlagKind, defaultValue: string, choices: readonly string[] | undefined): string {
  if (choices !== undefined) return choices.find((choice) => choice !== defaultValue) as string;
  if (kind === 'bool') return defaultValue === 'true' ? 'false' : 'true';
  if (kind === 'uint') return String(Number(defaultValue) + 1);
  assert.equal(kind, 'string', 'the unsupported flags are strings, bools and uints');
  return defaultValue === '' ? 'x' : `${defaultValue}x`;
}

test('--auto-compaction-retention reads hours or a duration (periodic) and a count (revision), as etcd', () => {
  assert.equal(load([]).config.autoCompactionRetention, 0);
  assert.equal(load(['--auto-compaction-retention', '2']).config.autoCompactionRetention, 2 * 3_600_000);
  assert.equal(load(['--auto-compaction-retention', '90s']).config.autoCompactionRetention, 90_000);
  const revision = load(['--auto-compaction-mode', 'revision', '--auto-compaction-retention', '1000']).config;
  assert.deepEqual([revision.autoCompactionMode, revision.autoCompactionRetention], ['revision', 1000]);
  assert.throws(
    () => load(['--auto-compaction-retention', '-5']),
    (error: Error) => error.message === 'error parsing CompactionRetention: time: missing unit in duration "-5"',
  );
  assert.throws(
    () => load(['--auto-compaction-mode', 'daily', '--auto-compaction-retention', '1']),
    (error: Error) => error.message === 'unknown auto-compaction-mode "daily"',
  );
});

test('the experimental compaction and apply-warning flags are read, 0 batch limit keeping the default', () => {
  const { config } = load([
    '--experimental-compaction-batch-limit',
    '7',
    '--experimental-warning-apply-duration',
    '5ms',
  ]);
  assert.deepEqual([config.compactionBatchLimit, config.warningApplyMs], [7, 5]);
  const defaults = load(['--experimental-compaction-batch-limit', '0']).config;
  assert.deepEqual([defaults.compactionBatchLimit, defaults.warningApplyMs], [1000, 100]);
});
