/**
 * A network namespace with only its own loopback (IPv4 and IPv6) and its own resolv.conf, for
 * tests that run a DNS server, members and clients side by side without touching the machine's
 * network: `ip netns exec` bind-mounts /etc/netns/<name>/resolv.conf over /etc/resolv.conf for
 * every process it starts there. Needs root and `ip`; namespaceSupport() says why not.
 *
 * Names are `tsl<test pid in base 36>-<n>`, so parallel runs never collide and a later run removes
 * what a killed run left (namespaces whose pid is gone).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { processAlive } from '../../src/lib/process-alive.js';

/** Namespace names start with this, then the test process id in base 36. */
const namePrefix = 'tsl';
/** How long one `ip` command may take. */
const ipCommandTimeoutMs = 10_000;

/** '' when this process can make network namespaces, else why not (for a skip). */
export function namespaceSupport(): string {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const result = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: ipCommandTimeoutMs });
  if (result.error !== undefined || result.status !== 0)
    return `network namespaces need \`ip\` (${result.error?.message ?? result.stderr.trim()})`;
  return '';
}

function runIp(args: readonly string[], ignoreFailure = false): void {
  const result = spawnSync('ip', args, { encoding: 'utf8', timeout: ipCommandTimeoutMs });
  if (!ignoreFailure && (result.error !== undefined || result.status !== 0))
    throw new Error(`ip ${args.join(' ')} failed: ${result.error?.message ?? result.stderr.trim()}`);
}

/** Removes namespaces (and their resolv.conf) that runs no longer alive left behind. */
function removeStaleNamespaces(): void {
  const listed = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const match of listed.matchAll(new RegExp(`^(${namePrefix}([0-9a-z]+)-[0-9a-z]+)\\b`, 'gm'))) {
    const [, name = '', pidText = ''] = match;
    if (processAlive(Number.parseInt(pidText, 36))) continue;
    runIp(['netns', 'del', name], true);
    rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
  }
}

const liveNamespaces = new Set<LoopbackNamespace>();
process.once('exit', () => {
  for (const namespace of liveNamespaces) namespace.remove();
});
let namespacesMade = 0;

/** One namespace: loopback up, `nameserver` lines of its own resolv.conf. */
export class LoopbackNamespace {
  private removed = false;
  private readonly children = new Set<ChildProcess>();

  private constructor(readonly name: string) {}

  /** Makes the namespace; `nameservers` become its resolv.conf, followed by `resolvLines` (search, options). */
  static create(nameservers: readonly string[], resolvLines: readonly string[] = []): LoopbackNamespace {
    removeStaleNamespaces();
    namespacesMade += 1;
    const name = `${namePrefix}${process.pid.toString(36)}-${namespacesMade.toString(36)}`;
    const namespace = new LoopbackNamespace(name);
    liveNamespaces.add(namespace);
    try {
      runIp(['netns', 'add', name]);
      runIp(['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
      mkdirSync(`/etc/netns/${name}`, { recursive: true });
      namespace.writeResolvConf(nameservers, resolvLines);
    } catch (error) {
      namespace.remove();
      throw error;
    }
    return namespace;
  }

  /** Rewrites the namespace's resolv.conf; each process started after sees the new one. */
  writeResolvConf(nameservers: readonly string[], resolvLines: readonly string[] = []): void {
    const lines = [...nameservers.map((server) => `nameserver ${server}`), ...resolvLines];
    writeFileSync(`/etc/netns/${this.name}/resolv.conf`, lines.map((line) => `${line}\n`).join(''));
  }

  /** Runs `ip` inside the namespace (e.g. ['link', 'add', ...]). */
  ip(args: readonly string[]): void {
    runIp(['netns', 'exec', this.name, 'ip', ...args]);
  }

  /** The command line that runs `command args` inside the namespace. */
  wrap(command: string, args: readonly string[]): { command: string; args: string[] } {
    return { command: 'ip', args: ['netns', 'exec', this.name, command, ...args] };
  }

  /** Starts a long-running process inside the namespace; remove() kills it if still running. */
  spawn(command: string, args: readonly string[], logFd?: number): ChildProcess {
    const wrapped = this.wrap(command, args);
    const output = logFd ?? 'ignore';
    const child = spawn(wrapped.command, wrapped.args, {
      stdio: ['ignore', output === 'ignore' ? 'pipe' : output, output],
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Kills what it started, deletes the namespace and its resolv.conf. Safe to call twice. */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    for (const child of this.children) child.kill('SIGKILL');
    runIp(['netns', 'del', this.name], true);
    rmSync(`/etc/netns/${this.name}`, { recursive: true, force: true });
    liveNamespaces.delete(this);
  }
}
