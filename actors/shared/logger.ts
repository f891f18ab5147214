/**
 * Structured JSON logs in the shape of etcd's zap output ({"level","ts","caller","msg",...}),
 * written where --log-outputs says: stderr by default, stdout, or files (appended to), as etcd does.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { goOpenErrorText } from '../../src/lib/go-os-errors.js';

export type { Logger };

const pinoLevels: Record<string, string> = {
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
  dpanic: 'error',
  panic: 'fatal',
  fatal: 'fatal',
};

/** A --log-outputs file that cannot be opened, with etcd's words ("open sink ..."). */
export class LogOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogOutputError';
  }
}

/** Opens one --log-outputs target: 'default' and 'stderr' are stderr, 'stdout' stdout, anything else a file path. */
function destination(output: string): DestinationStream {
  if (output === 'default' || output === 'stderr') return pino.destination({ dest: 2, sync: true });
  if (output === 'stdout') return pino.destination({ dest: 1, sync: true });
  try {
    return pino.destination({ dest: output, sync: true, append: true });
  } catch (error) {
    throw new LogOutputError(
      `open sink ${JSON.stringify(output)}: ${goOpenErrorText(output, error as NodeJS.ErrnoException)}`,
    );
  }
}

/** Creates the process logger; `outputs` follows --log-outputs. Throws LogOutputError when a file cannot be opened. */
export function createLogger(
  level: string,
  outputs: readonly string[] = ['default'],
  bindings: Record<string, unknown> = {},
): Logger {
  const targets = [...new Set(outputs.length === 0 ? ['default'] : outputs)].map(destination);
  const stream =
    targets.length === 1
      ? (targets[0] as DestinationStream)
      : pino.multistream(targets.map((target) => ({ stream: target, level: 'trace' as const })));
  return pino(
    {
      level: pinoLevels[level] ?? 'info',
      base: bindings,
      messageKey: 'msg',
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}
