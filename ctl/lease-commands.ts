/**
 * `lease grant | revoke | timetolive | list | keep-alive`: etcdctl's argument checks and exit
 * codes, the Lease calls clientv3 makes for them, and etcdctl's display.
 */
import { errors } from '../src/api/errors.js';
import { AdminDisplay, leaseHex } from './admin-printers.js';
import { rpcErrorText, type Message } from './client.js';
import type { CommandContext } from './context.js';
import { goParseInt } from './go-format.js';
import { LeaseKeeper, firstAnswerWaitMs } from './lease-keeper.js';
import { ExitCode, exitWithError } from './output.js';

/** etcdctl's leaseFromArgs: a hexadecimal int64. */
function leaseFromArgs(context: CommandContext, arg: string): bigint {
  const id = goParseInt(arg, 16);
  if (!id.ok) exitWithError(context.output, ExitCode.badArgs, `bad lease ID arg (${id.error}), expecting ID in Hex`);
  return id.value;
}

function display(context: CommandContext): AdminDisplay {
  return new AdminDisplay(context.output, context.format());
}

/** `etcdctl lease grant <ttl>`. */
export async function runLeaseGrant(context: CommandContext): Promise<void> {
  if (context.args.length !== 1)
    exitWithError(context.output, ExitCode.badArgs, 'lease grant command needs TTL argument');
  const ttl = goParseInt(context.args[0] ?? '', 10);
  if (!ttl.ok) exitWithError(context.output, ExitCode.badArgs, `bad TTL (${ttl.error})`);
  const client = context.client();
  let response: Message;
  try {
    response = await client.call('Lease', 'LeaseGrant', { TTL: ttl.value.toString() }, context.commandTimeoutMs);
  } catch (error) {
    exitWithError(context.output, ExitCode.error, `failed to grant lease (${rpcErrorText(error)})`);
  }
  display(context).grant(response);
}

/** `etcdctl lease revoke <leaseID>`. */
export async function runLeaseRevoke(context: CommandContext): Promise<void> {
  if (context.args.length !== 1)
    exitWithError(context.output, ExitCode.badArgs, 'lease revoke command needs 1 argument');
  const id = leaseFromArgs(context, context.args[0] ?? '');
  const client = context.client();
  let response: Message;
  try {
    response = await client.call('Lease', 'LeaseRevoke', { ID: id.toString() }, context.commandTimeoutMs);
  } catch (error) {
    exitWithError(context.output, ExitCode.error, `failed to revoke lease (${rpcErrorText(error)})`);
  }
  display(context).revoke(id, response);
}

/** `etcdctl lease timetolive <leaseID> [--keys]`. */
export async function runLeaseTimeToLive(context: CommandContext): Promise<void> {
  if (context.args.length !== 1)
    exitWithError(context.output, ExitCode.badArgs, 'lease timetolive command needs lease ID as argument');
  const id = leaseFromArgs(context, context.args[0] ?? '');
  const keys = context.flags.bool('keys');
  const request = keys ? { ID: id.toString(), keys } : { ID: id.toString() };
  // etcdctl asks without a deadline and reports a failure as a bad connection.
  const response = await badConnectionOnError(context, () =>
    context.client().call('Lease', 'LeaseTimeToLive', request, undefined),
  );
  display(context).timeToLive(response, keys);
}

/** `etcdctl lease list`. */
export async function runLeaseList(context: CommandContext): Promise<void> {
  const response = await badConnectionOnError(context, () =>
    context.client().call('Lease', 'LeaseLeases', {}, undefined),
  );
  display(context).leases(response);
}

/** `etcdctl lease keep-alive [--once] <leaseID>`. */
export async function runLeaseKeepAlive(context: CommandContext): Promise<void> {
  if (context.args.length !== 1)
    exitWithError(context.output, ExitCode.badArgs, 'lease keep-alive command needs lease ID as argument');
  const id = leaseFromArgs(context, context.args[0] ?? '');
  const printer = display(context);
  if (context.flags.bool('once')) return printer.keepAlive(await keepAliveOnce(context, id));
  const client = context.client();
  const dialTimeoutMs = context.flags.durationNs('dial-timeout') / 1e6;
  const keeper = new LeaseKeeper(client, id.toString(), firstAnswerWaitMs(dialTimeoutMs), (answer) =>
    printer.keepAlive(answer),
  );
  await keeper.ended;
  if (printer.format === 'simple') context.output.out(`lease ${leaseHex(id)} expired or revoked.\n`);
}

/** clientv3's KeepAliveOnce: one renewal on a stream of its own; an expired or unknown lease is "lease not found". */
async function keepAliveOnce(context: CommandContext, id: bigint): Promise<Message> {
  const stream = await context.client().duplex('Lease', 'LeaseKeepAlive');
  try {
    stream.write({ ID: id.toString() });
    const answers = stream[Symbol.asyncIterator]() as AsyncIterator<Message>;
    let answer: IteratorResult<Message>;
    try {
      answer = await answers.next();
    } catch (error) {
      return exitWithError(context.output, ExitCode.badConnection, rpcErrorText(error));
    }
    if (answer.done === true || BigInt(answer.value.TTL as string) <= 0n)
      exitWithError(context.output, ExitCode.badConnection, errors.leaseNotFound().message);
    return answer.value;
  } finally {
    stream.cancel();
  }
}

async function badConnectionOnError(context: CommandContext, call: () => Promise<Message>): Promise<Message> {
  try {
    return await call();
  } catch (error) {
    return exitWithError(context.output, ExitCode.badConnection, rpcErrorText(error));
  }
}
