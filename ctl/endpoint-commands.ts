/**
 * `etcdctl endpoint health` and `endpoint status`: each endpoint is dialled on its own, so one
 * dead member shows up as its own line rather than failing the whole command.
 */
import { errors } from '../src/api/errors.js';
import { AdminDisplay, type EndpointHash } from './admin-printers.js';
import { CtlRpcError, rpcErrorText, type Message } from './client.js';
import type { CommandContext } from './context.js';
import { CtlExit, ExitCode, exitWithError } from './output.js';
import type { EndpointHealth, EndpointStatus } from './printers.js';

/** The error clientv3 reports for a denied read, which still proves the member commits. */
const permissionDeniedText = errors.permissionDenied().message;

/** --endpoints, or with --cluster every client URL from the member list. */
export async function targetEndpoints(context: CommandContext): Promise<string[]> {
  if (!context.flags.bool('cluster')) return context.flagEndpoints;
  const connection = context.open(context.resolveEndpoints());
  try {
    const response = await connection.call('Cluster', 'MemberList', {}, context.commandTimeoutMs);
    return (response.members as Message[]).flatMap((member) => member.clientURLs as string[]);
  } catch (error) {
    const text = error instanceof CtlRpcError ? error.message : String(error);
    exitWithError(context.output, ExitCode.error, `failed to fetch endpoints from etcd cluster member list: ${text}`);
  }
}

/** `etcdctl endpoint health`. */
export async function runEndpointHealth(context: CommandContext): Promise<void> {
  const printer = context.printer();
  const endpoints = await targetEndpoints(context);
  const results: EndpointHealth[] = [];
  await Promise.all(
    endpoints.map(async (endpoint) => {
      const connection = context.open([endpoint]);
      const started = process.hrtime.bigint();
      let error = '';
      try {
        await connection.call('KV', 'Range', { key: Buffer.from('health') }, context.commandTimeoutMs);
      } catch (caught) {
        error = caught instanceof CtlRpcError ? caught.message : String(caught);
      }
      const tookNs = Number(process.hrtime.bigint() - started);
      const health = error === '' || error === permissionDeniedText;
      // Results print in the order they arrive, as etcdctl collects them from a channel.
      results.push({ endpoint, health, tookNs, error: health ? '' : error });
    }),
  );
  printer.endpointHealth(results);
  if (results.some((result) => result.error !== '')) exitWithError(context.output, ExitCode.error, 'unhealthy cluster');
}

/** `etcdctl endpoint hashkv [--rev]`: each member's hash, failures on stderr and in the exit code. */
export async function runEndpointHashKv(context: CommandContext): Promise<void> {
  context.client();
  const printer = new AdminDisplay(context.output, context.format());
  const hashes: EndpointHash[] = [];
  let lastError: string | undefined;
  const revision = context.flags.int64('rev');
  for (const endpoint of await targetEndpoints(context)) {
    try {
      const request = revision === 0n ? {} : { revision: revision.toString() };
      const response = await context.open([endpoint]).call('Maintenance', 'HashKV', request, context.commandTimeoutMs);
      hashes.push({ endpoint, response });
    } catch (caught) {
      lastError = rpcErrorText(caught);
      context.output.err(`Failed to get the hash of endpoint ${endpoint} (${lastError})\n`);
    }
  }
  printer.hashKv(hashes);
  if (lastError !== undefined) exitWithError(context.output, ExitCode.error, lastError);
}

/** `etcdctl endpoint status`. */
export async function runEndpointStatus(context: CommandContext): Promise<void> {
  context.client();
  const printer = context.printer();
  const statuses: EndpointStatus[] = [];
  let failed = false;
  for (const endpoint of await targetEndpoints(context)) {
    try {
      const status = await context.open([endpoint]).call('Maintenance', 'Status', {}, context.commandTimeoutMs);
      statuses.push({ endpoint, status });
    } catch (caught) {
      failed = true;
      const text = caught instanceof CtlRpcError ? caught.message : String(caught);
      context.output.err(`Failed to get the status of endpoint ${endpoint} (${text})\n`);
    }
  }
  printer.endpointStatus(statuses);
  // etcdctl exits 1 here without an "Error:" line; the per-endpoint lines said it all.
  if (failed) throw new CtlExit(ExitCode.error);
}
