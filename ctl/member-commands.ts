/**
 * `member add | remove | update | list | promote` and `move-leader`: etcdctl's argument checks
 * and exit codes, the Cluster and Maintenance calls clientv3 makes, and etcdctl's display.
 */
import { AdminDisplay } from './admin-printers.js';
import { rpcErrorText, type EtcdConnection, type Message } from './client.js';
import type { CommandContext } from './context.js';
import { goParseUint16 } from './go-format.js';
import { ExitCode, exitWithError } from './output.js';

function display(context: CommandContext): AdminDisplay {
  return new AdminDisplay(context.output, context.format());
}

/** One Cluster call with the --command-timeout deadline; a failure ends the command with exit 1. */
async function clusterCall(context: CommandContext, method: string, request: Message): Promise<Message> {
  const client = context.client();
  try {
    return await client.call('Cluster', method, request, context.commandTimeoutMs);
  } catch (error) {
    return exitWithError(context.output, ExitCode.error, rpcErrorText(error));
  }
}

/** The member ID argument of remove, update and promote: one hexadecimal uint64. */
function memberIdArg(context: CommandContext): bigint {
  if (context.args.length !== 1) exitWithError(context.output, ExitCode.badArgs, 'member ID is not provided');
  const id = goParseUint16(context.args[0] ?? '');
  if (!id.ok) exitWithError(context.output, ExitCode.badArgs, `bad member ID arg (${id.error}), expecting ID in Hex`);
  return id.value;
}

/** `etcdctl member add <name> --peer-urls=... [--learner]`. */
export async function runMemberAdd(context: CommandContext): Promise<void> {
  const { args, output } = context;
  if (args.length < 1) exitWithError(output, ExitCode.badArgs, 'member name not provided');
  if (args.length > 1) {
    const hints = args
      .filter((arg) => arg.toLowerCase().startsWith('http'))
      .map((arg) => `, did you mean --peer-urls=${arg}`);
    exitWithError(output, ExitCode.badArgs, `too many arguments${hints.join('')}`);
  }
  const peerUrls = context.flags.string('peer-urls');
  if (peerUrls === '') exitWithError(output, ExitCode.badArgs, 'member peer urls not provided');
  const isLearner = context.flags.bool('learner');
  const request = { peerURLs: peerUrls.split(','), ...(isLearner ? { isLearner } : {}) };
  const response = await clusterCall(context, 'MemberAdd', request);
  display(context).memberAdd(response, args[0] ?? '', peerUrls);
}

/** `etcdctl member remove <memberID>`. */
export async function runMemberRemove(context: CommandContext): Promise<void> {
  const id = memberIdArg(context);
  const response = await clusterCall(context, 'MemberRemove', { ID: id.toString() });
  display(context).memberChange('removed from', id, 'MemberRemoveResponse', response);
}

/** `etcdctl member update <memberID> --peer-urls=...`. */
export async function runMemberUpdate(context: CommandContext): Promise<void> {
  const id = memberIdArg(context);
  const peerUrls = context.flags.string('peer-urls');
  if (peerUrls === '') exitWithError(context.output, ExitCode.badArgs, 'member peer urls not provided');
  const response = await clusterCall(context, 'MemberUpdate', { ID: id.toString(), peerURLs: peerUrls.split(',') });
  display(context).memberChange('updated in', id, 'MemberUpdateResponse', response);
}

/** `etcdctl member list`. */
export async function runMemberList(context: CommandContext): Promise<void> {
  const response = await clusterCall(context, 'MemberList', {});
  display(context).memberList(response);
}

/** `etcdctl member promote <memberID>`. */
export async function runMemberPromote(context: CommandContext): Promise<void> {
  const id = memberIdArg(context);
  const response = await clusterCall(context, 'MemberPromote', { ID: id.toString() });
  display(context).memberPromote(id, response);
}

/** `etcdctl move-leader <transferee-member-id>`: finds the leader among --endpoints and asks it. */
export async function runMoveLeader(context: CommandContext): Promise<void> {
  const { output } = context;
  if (context.args.length !== 1) exitWithError(output, ExitCode.badArgs, 'move-leader command needs 1 argument');
  const target = goParseUint16(context.args[0] ?? '');
  if (!target.ok) exitWithError(output, ExitCode.badArgs, target.error);
  const printer = display(context);
  const endpoints = context.resolveEndpoints();
  let leader: { connection: EtcdConnection; id: bigint } | undefined;
  for (const endpoint of endpoints) {
    const connection = context.open([endpoint]);
    let status: Message;
    try {
      status = await connection.call('Maintenance', 'Status', {}, context.commandTimeoutMs);
    } catch (error) {
      exitWithError(output, ExitCode.error, rpcErrorText(error));
    }
    if (status.header?.member_id === status.leader) {
      leader = { connection, id: BigInt(status.leader as string) };
      break;
    }
  }
  if (leader === undefined)
    exitWithError(output, ExitCode.badArgs, `no leader endpoint given at [${endpoints.join(' ')}]`);
  let response: Message;
  try {
    const request = { targetID: target.value.toString() };
    response = await leader.connection.call('Maintenance', 'MoveLeader', request, context.commandTimeoutMs);
  } catch (error) {
    exitWithError(output, ExitCode.error, rpcErrorText(error));
  }
  printer.moveLeader(leader.id, target.value, response);
}
