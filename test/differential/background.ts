/**
 * An etcdctl command left running while the script goes on (watch, elect, lock without a
 * command); its output is collected until the script stops it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandResult } from '../support/etcdctl.js';
import { etcdctlBinaryPath } from '../support/sut.js';

/** How long `@wait` and `@stop` wait for the expected number of lines (`@stop` then interrupts anyway). */
export const backgroundLinesWaitMsMax = 10_000;
/** How long an interrupted command gets to exit (elect resigns first) before SIGKILL. */
const interruptGraceMs = 5_000;
/** A background command still running after this long is killed, so a broken script cannot hang. */
const backgroundLifetimeMsMax = 60_000;
const pollIntervalMs = 20;
/** Output still arriving this soon after the expected lines is kept, so duplicates show up. */
const trailingOutputMs = 300;

/** One etcdctl process running in the background. */
export class BackgroundCommand {
  private stdout = '';
  private stderr = '';
  private code: number | null | undefined;
  private readonly child: ChildProcess;
  private readonly closed: Promise<void>;
  private readonly lifetimeTimer: NodeJS.Timeout;

  /** Spawns `etcdctl --endpoints=<endpoint> ...args` with ETCDCTL_API=3. */
  constructor(endpoint: string, args: readonly string[]) {
    this.child = spawn(etcdctlBinaryPath, [`--endpoints=${endpoint}`, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (chunk: Buffer) => (this.stdout += chunk.toString('utf8')));
    this.child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
    this.closed = new Promise((resolve) => {
      this.child.once('close', (code) => {
        this.code = code;
        resolve();
      });
      this.child.once('error', () => resolve());
    });
    this.lifetimeTimer = setTimeout(() => this.signal('SIGKILL'), backgroundLifetimeMsMax);
    this.lifetimeTimer.unref();
  }

  /** Everything printed on stdout so far. */
  output(): string {
    return this.stdout;
  }

  /** Complete lines printed on stdout so far. */
  lineCount(): number {
    return this.stdout.split('\n').length - 1;
  }

  /** Waits (bounded) until at least `linesMin` lines are printed or the command exits by itself. */
  async waitForLines(linesMin: number): Promise<void> {
    const deadline = Date.now() + backgroundLinesWaitMsMax;
    while (this.code === undefined && this.lineCount() < linesMin && Date.now() < deadline) await sleep(pollIntervalMs);
  }

  /**
   * Waits (bounded) until at least `linesMin` lines are printed or the command exits by itself,
   * then interrupts it like Ctrl-C and returns everything it printed.
   */
  async stop(linesMin: number): Promise<CommandResult> {
    await this.waitForLines(linesMin);
    if (this.code === undefined) await sleep(trailingOutputMs);
    this.signal('SIGINT');
    const exited = await Promise.race([this.closed.then(() => true), sleep(interruptGraceMs).then(() => false)]);
    if (!exited) {
      this.signal('SIGKILL');
      await this.closed;
    }
    clearTimeout(this.lifetimeTimer);
    return { stdout: this.stdout, stderr: this.stderr, code: this.code ?? null };
  }

  /** Kills the process at once; for cleanup when a script ends with commands still running. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    clearTimeout(this.lifetimeTimer);
    await this.closed;
  }

  private signal(name: NodeJS.Signals): void {
    if (this.code === undefined && this.child.pid !== undefined && this.child.exitCode === null) {
      try {
        process.kill(this.child.pid, name);
      } catch {
        // The process exited between the check and the signal.
      }
    }
  }
}
