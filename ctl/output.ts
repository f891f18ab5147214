/** Process output and exit codes for tsetcdctl, with etcdctl's exit code numbering. */

/** etcdctl's exit codes (tldp.org conventions as etcdctl uses them). */
export const ExitCode = {
  success: 0,
  error: 1,
  badConnection: 2,
  invalidInput: 3,
  badFeature: 4,
  interrupted: 5,
  io: 6,
  badArgs: 128,
} as const;

/** Thrown to end the command with an exit code once its output is written. */
export class CtlExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
    this.name = 'CtlExit';
  }
}

/** Where a command writes; tests and the real process both use process streams. */
export interface Output {
  out(data: string | Uint8Array): void;
  err(data: string | Uint8Array): void;
}

/** Writes straight to the process streams, keeping raw key and value bytes intact. */
export const processOutput: Output = {
  out: (data) => void process.stdout.write(data),
  err: (data) => void process.stderr.write(data),
};

/** etcdctl's ExitWithError: "Error: <message>" on stderr, then exit with `code`. */
export function exitWithError(output: Output, code: number, message: string): never {
  output.err(`Error: ${message}\n`);
  throw new CtlExit(code);
}

/** Go's runtime panic: message on stderr and exit status 2, as etcdctl does on some inputs. */
export function goPanic(output: Output, message: string): never {
  output.err(`panic: ${message}\n\ngoroutine 1 [running]:\n`);
  throw new CtlExit(2);
}

/** A capnslog line as etcdctl's packages log it: "<local time> <level> | <package>: <message>". */
export function capnsLog(output: Output, level: 'W' | 'C', packageName: string, message: string): void {
  output.err(`${goLogTime(new Date())} ${level} | ${packageName}: ${message}\n`);
}

/** capnslog's timestamp: local time as "2006-01-02 15:04:05.000000". */
function goLogTime(now: Date): string {
  const two = (value: number): string => String(value).padStart(2, '0');
  const date = `${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}`;
  const micros = String(now.getMilliseconds() * 1000).padStart(6, '0');
  return `${date} ${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}.${micros}`;
}

/** Resolves once everything written so far has left the process streams. */
export async function flushProcessOutput(): Promise<void> {
  await Promise.all(
    [process.stdout, process.stderr].map(
      (stream) =>
        new Promise<void>((resolve) => (stream.writableNeedDrain ? stream.once('drain', () => resolve()) : resolve())),
    ),
  );
}
