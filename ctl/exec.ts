/** Commands that watch and lock run for the user, reporting failures in Go's os/exec words. */
import { spawn } from 'node:child_process';

/** Go's names for the signals a command is commonly ended by. */
const goSignalNames: Partial<Record<NodeJS.Signals, string>> = {
  SIGKILL: 'killed',
  SIGTERM: 'terminated',
  SIGINT: 'interrupt',
  SIGHUP: 'hangup',
  SIGSEGV: 'segmentation fault',
  SIGABRT: 'aborted',
  SIGPIPE: 'broken pipe',
};

/**
 * Runs `command` (name and arguments) with this process's stdout and stderr and no stdin, as Go's
 * exec.Command does; resolves with nothing on success or with the error text Go's Run gives.
 */
export function runToEnd(command: readonly string[], env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const [name = '', ...args] = command;
  return new Promise((resolve) => {
    const child = spawn(name, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (error: NodeJS.ErrnoException) =>
      resolve(
        error.code === 'ENOENT' && !name.includes('/')
          ? `exec: "${name}": executable file not found in $PATH`
          : `fork/exec ${name}: ${error.message.replace(/^spawn \S+ /, '')}`,
      ),
    );
    child.on('exit', (code, signal) => {
      if (signal !== null) resolve(`signal: ${goSignalNames[signal] ?? signal}`);
      else resolve(code === 0 ? undefined : `exit status ${code}`);
    });
  });
}
