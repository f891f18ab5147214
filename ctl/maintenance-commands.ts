/**
 * `alarm disarm | list` and `defrag`: etcdctl's argument checks, exit codes and messages, with the
 * Maintenance calls clientv3 makes for them.
 */
import { openSync, readSync, closeSync } from 'node:fs';
import { memberDataPaths } from '../src/lib/paths.js';
import { boltMagic } from '../src/snap/bbolt/format.js';
import { AdminDisplay } from './admin-printers.js';
import { rpcErrorText, type Message } from './client.js';
import type { CommandContext } from './context.js';
import { targetEndpoints } from './endpoint-commands.js';
import { CtlExit, ExitCode, capnsLog, exitWithError, type Output } from './output.js';

/** Where bbolt keeps its magic number: after the 16-byte page header of the first meta page. */
const boltMagicOffset = 16;

async function alarmCall(context: CommandContext, request: Message): Promise<Message> {
  const client = context.client();
  try {
    return await client.call('Maintenance', 'Alarm', request, context.commandTimeoutMs);
  } catch (error) {
    return exitWithError(context.output, ExitCode.error, rpcErrorText(error));
  }
}

/** `etcdctl alarm list`. */
export async function runAlarmList(context: CommandContext): Promise<void> {
  if (context.args.length !== 0)
    exitWithError(context.output, ExitCode.badArgs, 'alarm list command accepts no arguments');
  const response = await alarmCall(context, {});
  new AdminDisplay(context.output, context.format()).alarm(response);
}

/**
 * `etcdctl alarm disarm`: clientv3 lists the alarms and deactivates each one, answering with
 * the alarms it deactivated and no header.
 */
export async function runAlarmDisarm(context: CommandContext): Promise<void> {
  if (context.args.length !== 0)
    exitWithError(context.output, ExitCode.badArgs, 'alarm disarm command accepts no arguments');
  const listed = await alarmCall(context, {});
  const alarms: Message[] = [];
  for (const alarm of listed.alarms as Message[]) {
    const request = { action: 2, memberID: alarm.memberID as string, alarm: alarm.alarm as number };
    alarms.push(...((await alarmCall(context, request)).alarms as Message[]));
  }
  new AdminDisplay(context.output, context.format()).alarm({ header: null, alarms });
}

/** `etcdctl defrag [--cluster] [--data-dir <dir>]`: each member in turn, a failure on stderr. */
export async function runDefrag(context: CommandContext): Promise<void> {
  const dataDir = context.flags.string('data-dir');
  if (dataDir !== '') return defragDataDir(context.output, dataDir);
  context.client();
  let failures = 0;
  for (const endpoint of await targetEndpoints(context)) {
    try {
      await context.open([endpoint]).call('Maintenance', 'Defragment', {}, context.commandTimeoutMs);
      context.output.out(`Finished defragmenting etcd member[${endpoint}]\n`);
    } catch (error) {
      failures += 1;
      context.output.err(`Failed to defragment etcd member[${endpoint}] (${rpcErrorText(error)})\n`);
    }
  }
  if (failures !== 0) throw new CtlExit(ExitCode.error);
}

/**
 * etcdctl's offline defragmentation opens <data-dir>/member/snap/db with bbolt. A tsetcd data
 * directory holds no bbolt file there, so what etcdctl would print is all that can be done: its
 * panic when the file cannot be opened as bbolt, else the failure line.
 */
function defragDataDir(output: Output, dataDir: string): never {
  const dbPath = memberDataPaths(dataDir, '').backendPath;
  const problem = boltProblem(dbPath);
  if (problem !== undefined) {
    const message = `cannot open database at ${dbPath} (${problem})`;
    capnsLog(output, 'C', 'mvcc/backend', message);
    output.err(`panic: ${message}\n\n`);
    output.err('goroutine 1 [running]:\n');
    throw new CtlExit(ExitCode.badConnection);
  }
  output.err(`Failed to defragment etcd data[${dataDir}] (defragmenting a bbolt file offline is not supported)\n`);
  throw new CtlExit(ExitCode.error);
}

/** Why bbolt would not open `path`, in Go's words; undefined for a bbolt file. */
function boltProblem(path: string): string | undefined {
  let descriptor: number;
  try {
    descriptor = openSync(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // etcdctl meets this when the directory is missing (bbolt would create a missing file).
    if (code === 'ENOENT') return `open ${path}: no such file or directory`;
    if (code === 'EISDIR') return `read ${path}: is a directory`;
    return `open ${path}: ${(error as Error).message}`;
  }
  try {
    const head = Buffer.alloc(boltMagicOffset + 4);
    const read = readSync(descriptor, head, 0, head.length, 0);
    return read === head.length && head.readUInt32LE(boltMagicOffset) === boltMagic ? undefined : 'invalid database';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'EISDIR' ? `read ${path}: is a directory` : `read ${path}: ${(error as Error).message}`;
  } finally {
    closeSync(descriptor);
  }
}
