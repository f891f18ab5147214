/** Runs the real etcdctl (API v3) against a member and captures everything it says. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { etcdctlBinaryPath } from './sut.js';

/** A command that takes longer than this is killed; etcdctl's own timeout is 5 s. */
export const etcdctlTimeoutMsDefault = 15_000;

/**
 * For etcdctl (and tsetcdctl) with --user: clientv3 authenticates within its dial timeout, and a
 * password check on a busy machine, the first after a member starts above all, can take longer
 * than the 2 s default.
 */
export const authDialTimeoutFlag = '--dial-timeout=10s';

export interface CommandResult {
  readonly stdout: string;
  /** stdout as bytes, for binary answers such as `-w protobuf`. */
  readonly stdoutBytes?: Buffer;
  readonly stderr: string;
  /** Exit code, or null when the process was killed by a signal. */
  readonly code: number | null;
}

export interface EtcdctlOptions {
  readonly stdin?: string;
  readonly timeoutMs?: number;
  /** Working directory, for unix://name:port endpoints, which name a socket file relative to it. */
  readonly cwd?: string;
  /** Aborting it kills the command (SIGKILL), as the timeout does. */
  readonly signal?: AbortSignal;
}

/** Runs `etcdctl --endpoints=<endpoint> ...args` with ETCDCTL_API=3. */
export function runEtcdctl(
  endpoint: string,
  args: readonly string[],
  options: EtcdctlOptions = {},
): Promise<CommandResult> {
  return runCommand(etcdctlBinaryPath, [`--endpoints=${endpoint}`, ...args], { ...options, env: { ETCDCTL_API: '3' } });
}

/** Runs etcdctl against `member` and asserts it succeeded, naming the member and the command if not; its stdout. */
export async function etcdctlOk(
  member: { readonly clientUrl: string; readonly command: { readonly label: string } },
  args: readonly string[],
  stdin?: string,
): Promise<string> {
  const result = await runEtcdctl(member.clientUrl, args, stdin === undefined ? {} : { stdin });
  assert.equal(result.code, 0, `${member.command.label}: etcdctl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/** Runs any command, feeding `stdin` and capturing stdout, stderr and the exit code. */
export function runCommand(
  command: string,
  args: readonly string[],
  options: EtcdctlOptions & {
    /** Added to the test's own environment; a variable set to undefined is left out. */
    env?: Readonly<Record<string, string | undefined>>;
  } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(options.signal === undefined ? {} : { signal: options.signal, killSignal: 'SIGKILL' as const }),
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? etcdctlTimeoutMsDefault);
    child.once('error', (error) => {
      // An abort is reported as an error too; the command then ends like one killed at its timeout.
      if (error.name === 'AbortError') return;
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(stdout);
      const result = { stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'), code };
      // The bytes ride along unenumerated, so tests comparing a whole result with
      // { code, stdout, stderr } keep comparing only what etcdctl printed as text.
      resolve(Object.defineProperty(result, 'stdoutBytes', { value: stdoutBytes, enumerable: false }));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin ?? '');
  });
}

/**
 * The etcdctl commands that make the users most auth tests share and then enable auth: root (root
 * role) and alice (readwrite on the prefix a/), with `extra` commands run just before auth enable.
 */
export function authSetupCommands(extra: readonly string[][] = []): string[][] {
  return [
    ['user', 'add', 'root:rootpw'],
    ['user', 'grant-role', 'root', 'root'],
    ['user', 'add', 'alice:apw'],
    ['role', 'add', 'a-writer'],
    ['role', 'grant-permission', '--prefix', 'a-writer', 'readwrite', 'a/'],
    ['user', 'grant-role', 'alice', 'a-writer'],
    ...extra,
    ['auth', 'enable'],
  ];
}
