/**
 * The Go load generator (bench/go-load, built on etcd's own clientv3) behind the same interface
 * as bench/load.ts, so a comparison can check that it measures the servers and not a Node client
 * that shares the machine's cores with them. The Go tool is built offline in GOPATH mode from
 * Debian's golang-go and golang-etcd-server-dev, once, into .build/go-load/. Its compiled packages
 * go to Go's own build cache (shared by every clone on the machine, as npm's cache is for npm ci):
 * a fresh clone then links the tool in about 2 s instead of compiling grpc and clientv3 again.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/lib/paths.js';
import { loadOps, reportedPercentiles, runLoad, type LoadOptions, type LoadResult } from './load.js';

/** Where Debian's golang-etcd-server-dev puts etcd's Go source and its dependencies. */
export const debianGoPath = '/usr/share/gocode';
/** Longest a build may take; the first one compiles grpc and clientv3 (about 30 s on 2 cores). */
const goBuildMsMax = 600_000;
/** The Go tool's dial timeout; it dials its connections one after another. */
const goDialMsMax = 5_000;
/** Time the Go tool may need beyond its load and dialing: start-up, sorting latencies, exit. */
const goLoadSlackMs = 30_000;
/** Stderr kept for error messages. */
const stderrCharsMax = 4_000;

export type LoadClientName = 'go' | 'node';
export type LoadRunner = (options: LoadOptions) => Promise<LoadResult>;
export type GoLoadLookup =
  { readonly ok: true; readonly binary: string } | { readonly ok: false; readonly reason: string };

function sourceDir(): string {
  return join(packageRoot(), 'bench', 'go-load');
}

/** The built tool's path (gitignored). */
export function goLoadBinaryPath(): string {
  return join(packageRoot(), '.build', 'go-load', 'tsetcd-go-load');
}

function goVersion(): string | undefined {
  try {
    return execFileSync('go', ['version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** Whether the binary is missing or older than any Go source file it is built from. */
function isStale(binary: string): boolean {
  if (!existsSync(binary)) return true;
  const builtMs = statSync(binary).mtimeMs;
  const sources = readdirSync(sourceDir()).filter((name) => name.endsWith('.go') && !name.endsWith('_test.go'));
  return sources.some((name) => statSync(join(sourceDir(), name)).mtimeMs > builtMs);
}

/**
 * Go's build cache: the one set in GOCACHE, else Go's default under the user's cache directory,
 * else (no HOME, as under some service managers) one of the tool's own in `buildDir`.
 */
function goCacheDir(buildDir: string): string {
  const set = process.env.GOCACHE;
  if (set !== undefined && set !== '') return set;
  const cacheHome =
    process.env.XDG_CACHE_HOME ?? (process.env.HOME === undefined ? undefined : join(process.env.HOME, '.cache'));
  return cacheHome === undefined || cacheHome === '' ? join(buildDir, 'cache') : join(cacheHome, 'go-build');
}

function build(binary: string): GoLoadLookup {
  const buildDir = join(binary, '..');
  mkdirSync(buildDir, { recursive: true });
  // Building to a private name and renaming keeps a concurrent run from executing half a file.
  const partial = `${binary}.${process.pid}.partial`;
  const env = {
    ...process.env,
    GO111MODULE: 'off',
    GOPATH: debianGoPath,
    GOCACHE: goCacheDir(buildDir),
    GOPROXY: 'off',
    GOFLAGS: '',
  };
  try {
    execFileSync('go', ['build', '-o', partial, '.'], {
      cwd: sourceDir(),
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: goBuildMsMax,
    });
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? (error as Error).message).slice(0, stderrCharsMax);
    return { ok: false, reason: `building bench/go-load failed:\n${stderr}` };
  }
  renameSync(partial, binary);
  return { ok: true, binary };
}

/** The Go load tool, built first if Go is installed and the binary is missing or stale. */
export function goLoadAvailable(): GoLoadLookup {
  const binary = goLoadBinaryPath();
  if (goVersion() === undefined) {
    if (existsSync(binary)) return { ok: true, binary };
    return {
      ok: false,
      reason: 'the Go toolchain is not installed: apt-get install -y golang-go (Debian), then rerun',
    };
  }
  if (!existsSync(join(debianGoPath, 'src', 'go.etcd.io', 'etcd', 'clientv3'))) {
    return {
      ok: false,
      reason: `etcd's Go client source is missing under ${debianGoPath}: apt-get install -y golang-etcd-server-dev`,
    };
  }
  return isStale(binary) ? build(binary) : { ok: true, binary };
}

/** Command-line flags of the Go tool for `options`; durations in seconds. */
export function goLoadArgs(options: LoadOptions): string[] {
  const args = [
    '--endpoints',
    options.endpoints.join(','),
    '--conns',
    String(options.conns),
    '--clients',
    String(options.clients),
    '--op',
    options.op,
    '--consistency',
    options.consistency,
    '--txn-ops',
    String(options.txnOps),
    '--key-size',
    String(options.keySize),
    '--val-size',
    String(options.valSize),
    '--key-space',
    String(options.keySpace),
    '--duration',
    String(options.durationMs / 1000),
    '--warmup',
    String(options.warmupMs / 1000),
    '--deadline',
    String(options.deadlineMs / 1000),
    '--rate',
    String(options.ratePerSec),
  ];
  if (options.user !== undefined) args.push('--user', options.user);
  if (options.tls !== undefined)
    args.push('--cacert', options.tls.trustedCaFile, '--cert', options.tls.certFile, '--key', options.tls.keyFile);
  if (options.sequentialKeys) args.push('--sequential-keys');
  if (options.total !== undefined) args.push('--total', String(options.total));
  return args;
}

/** Runs one workload with the Go tool and returns the same summary bench/load.ts's runLoad does. */
export async function runGoLoad(options: LoadOptions, binary: string = requireGoLoad()): Promise<LoadResult> {
  const limitMs =
    options.warmupMs + options.durationMs + options.deadlineMs + options.conns * goDialMsMax + goLoadSlackMs;
  const child = spawn(binary, goLoadArgs(options), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-stderrCharsMax)));
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  }).finally(() => clearTimeout(timer));
  // Exit 1 with a report means no request succeeded; Node's runLoad returns such a report too.
  if (exitCode !== 0 && exitCode !== 1)
    throw new Error(`tsetcd-go-load exited with ${String(exitCode)}: ${stderr.trim()}`);
  try {
    return parseGoLoadResult(stdout);
  } catch (error) {
    throw new Error(`tsetcd-go-load (exit ${String(exitCode)}): ${(error as Error).message}; stderr: ${stderr.trim()}`);
  }
}

/** Checks the Go tool's JSON line and returns it as a LoadResult. */
export function parseGoLoadResult(stdout: string): LoadResult {
  const line = stdout.trim().split('\n').pop() ?? '';
  if (line === '') throw new Error('expected one JSON report on stdout, saw nothing');
  const raw = JSON.parse(line) as Record<string, unknown> & { latencyUs?: Record<string, unknown> };
  const numbers = [
    'txnOps',
    'conns',
    'clients',
    'requests',
    'errorCount',
    'elapsedMs',
    'throughputPerSec',
    'clientCpuMs',
    'lastRevision',
    'ratePerSec',
  ];
  for (const name of numbers)
    if (typeof raw[name] !== 'number')
      throw new Error(`expected a number in ${name}, saw ${JSON.stringify(raw[name])}`);
  for (const name of ['p50', 'p90', 'p99', 'p999', 'max', 'mean']) {
    if (typeof raw.latencyUs?.[name] !== 'number')
      throw new Error(`expected a number in latencyUs.${name}, saw ${JSON.stringify(raw.latencyUs?.[name])}`);
  }
  checkPercentiles(raw.latencyPercentilesUs);
  if (!(loadOps as readonly unknown[]).includes(raw.op))
    throw new Error(`expected op ${loadOps.join(', ')}, saw ${JSON.stringify(raw.op)}`);
  // Go encodes an empty map as {} but a nil one as null.
  const errors = (raw.errors ?? {}) as Record<string, number>;
  const { client: _client, ...result } = raw;
  return { ...result, errors } as unknown as LoadResult;
}

/** Throws unless `points` lists a latency at each of reportedPercentiles, in order, as bench/load.ts does. */
function checkPercentiles(points: unknown): void {
  const list = Array.isArray(points) ? (points as Array<{ percentile?: unknown; us?: unknown }>) : [];
  const matches =
    list.length === reportedPercentiles.length &&
    list.every((p, i) => p.percentile === reportedPercentiles[i] && typeof p.us === 'number');
  if (!matches)
    throw new Error(
      `expected latencyPercentilesUs at percentiles ${reportedPercentiles.join(', ')}, saw ${JSON.stringify(points)}`,
    );
}

/** The Go tool's path, or an error naming the Debian package to install. */
export function requireGoLoad(): string {
  const lookup = goLoadAvailable();
  if (!lookup.ok) throw new Error(`--client go is not available: ${lookup.reason}`);
  return lookup.binary;
}

/** Checks a --client flag value. */
export function parseLoadClientName(text: string | undefined): LoadClientName {
  const name = text ?? 'node';
  if (name !== 'go' && name !== 'node') throw new Error(`--client must be go or node, saw ${name}`);
  return name;
}

/** The load function for `client`; for go, builds the tool first or throws saying why it cannot. */
export function loadRunner(client: LoadClientName): LoadRunner {
  if (client === 'node') return runLoad;
  const binary = requireGoLoad();
  return (options) => runGoLoad(options, binary);
}

/** Human-readable name of a load client, for report headers. */
export function loadClientLabel(client: LoadClientName): string {
  return client === 'go' ? 'Go clientv3 (bench/go-load)' : 'Node @grpc/grpc-js (bench/load.ts)';
}
