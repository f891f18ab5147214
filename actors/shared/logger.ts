/**
 * Structured JSON logs in the shape of etcd's zap output ({"level","ts","caller","msg",...}),
 * written to stderr as etcd does by default.
 */
import { pino, type Logger } from 'pino';

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

/** Creates the process logger; `outputs` follows --log-outputs (default/stderr, stdout). */
export function createLogger(
  level: string,
  outputs: readonly string[] = ['default'],
  bindings: Record<string, unknown> = {},
): Logger {
  const toStdout = outputs.length === 1 && outputs[0] === 'stdout';
  return pino(
    {
      level: pinoLevels[level] ?? 'info',
      base: bindings,
      messageKey: 'msg',
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: toStdout ? 1 : 2, sync: true }),
  );
}
