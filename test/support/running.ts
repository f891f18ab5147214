/** A command left running while a test drives it: its stdin, what it printed so far, and how it ended. */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';

/** One running etcdctl or tsetcdctl and what it has printed so far. */
export class Running {
  private stdout = '';
  private stderr = '';
  private readonly stdoutChunks: Buffer[] = [];
  private readonly waiters: Array<() => void> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    const seen = (): void => this.waiters.splice(0).forEach((wake) => wake());
    child.stdout.on('data', (chunk: Buffer) => {
      this.stdoutChunks.push(chunk);
      this.stdout += chunk.toString();
      seen();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
      seen();
    });
    this.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        resolve({ code, signal });
        // A wait for text that will never come fails now rather than hanging.
        seen();
      }),
    );
  }

  /**
   * Resolves once stdout and stderr together contain `text` `times` times; fails, showing what
   * was said, when the command exits first or `timeoutMs` (if given) passes.
   */
  async waitFor(text: string, times = 1, timeoutMs?: number): Promise<void> {
    const deadline = timeoutMs === undefined ? undefined : performance.now() + timeoutMs;
    while ((this.stdout + this.stderr).split(text).length - 1 < times) {
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        assert.fail(`expected "${text}" before exit, saw ${this.transcript()}`);
      const leftMs = deadline === undefined ? undefined : deadline - performance.now();
      if (leftMs !== undefined && leftMs <= 0) assert.fail(`expected "${text}" in time, saw ${this.transcript()}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        if (leftMs !== undefined) setTimeout(resolve, leftMs).unref();
      });
    }
  }

  write(line: string): void {
    this.child.stdin.write(line);
  }

  /**
   * Ends the command (a signal, or closing its stdin) and returns everything it said; fails,
   * showing what was said, when it has not exited `timeoutMs` (if given) later.
   */
  async end(how: NodeJS.Signals | 'eof' | 'by itself', timeoutMs?: number): Promise<string> {
    if (how === 'eof') this.child.stdin.end();
    else if (how !== 'by itself') this.child.kill(how);
    let timer: NodeJS.Timeout | undefined;
    const late =
      timeoutMs === undefined
        ? new Promise<never>(() => undefined)
        : new Promise<never>((_resolve, reject) => {
            timer = setTimeout(
              () => reject(new Error(`expected an exit within ${timeoutMs} ms of ${how}, saw ${this.transcript()}`)),
              timeoutMs,
            );
          });
    try {
      const { code, signal } = await Promise.race([this.exited, late]);
      return `${this.transcript()}exit ${code ?? signal}`;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Everything printed on stdout as bytes, for binary output (`-w protobuf`). */
  get stdoutBytes(): Buffer {
    return Buffer.concat(this.stdoutChunks);
  }

  transcript(): string {
    return `stdout:\n${this.stdout}stderr:\n${this.stderr}`;
  }
}
