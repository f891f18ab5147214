/**
 * `user ...`, `role ...` and `auth enable | disable`: etcdctl's argument checks, password
 * prompts, exit codes and messages, with the Auth calls clientv3 makes for them.
 */
import { errors } from '../src/api/errors.js';
import { AuthDisplay } from './auth-printers.js';
import { rpcErrorText, type Message } from './client.js';
import type { CommandContext } from './context.js';
import { prefixRangeEnd } from './kv-commands.js';
import { ExitCode, exitWithError } from './output.js';
import { enumValue } from './printers.js';
import { askPassword } from './security.js';

const rootRoleMissingText = errors.rootRoleNotExist().message;

function display(context: CommandContext): AuthDisplay {
  return new AuthDisplay(context.output, context.format());
}

/** One Auth call; etcdctl gives the user and role calls no deadline, auth enable and disable --command-timeout. */
async function authCall(
  context: CommandContext,
  method: string,
  request: Message,
  timeoutMs: number | undefined = undefined,
): Promise<Message> {
  const client = context.client();
  try {
    return await client.call('Auth', method, request, timeoutMs);
  } catch (error) {
    return exitWithError(context.output, ExitCode.error, rpcErrorText(error));
  }
}

function needArgs(context: CommandContext, count: number, message: string): void {
  if (context.args.length !== count) exitWithError(context.output, ExitCode.badArgs, message);
}

/** speakeasy's two prompts, as etcdctl's readPasswordInteractive asks them. */
async function readPasswordInteractive(context: CommandContext, name: string): Promise<string> {
  const first = await askPassword(context.output, context.stdin, `Password of ${name}: `);
  if (first === '') exitWithError(context.output, ExitCode.badArgs, 'empty password');
  const second = await askPassword(context.output, context.stdin, `Type password of ${name} again for confirmation: `);
  if (first !== second) exitWithError(context.output, ExitCode.badArgs, 'given passwords are different');
  return first;
}

/** fmt.Scanf("%s"): one word from stdin after leading spaces; nothing when a newline comes first. */
async function scanWord(context: CommandContext): Promise<string> {
  const text = (await context.stdin.readLine()) ?? '';
  return /^[ \t]*([^\s]*)/.exec(text)?.[1] ?? '';
}

/** `etcdctl user add <name or name:password>`. */
export async function runUserAdd(context: CommandContext): Promise<void> {
  needArgs(context, 1, 'user add command requires user name as its argument');
  const arg = context.args[0] ?? '';
  const fromFlag = context.flags.string('new-user-password');
  let user = arg;
  let password = '';
  const noPassword = context.flags.bool('no-password');
  if (!noPassword && fromFlag !== '') password = fromFlag;
  else if (!noPassword) {
    const colon = arg.indexOf(':');
    if (colon >= 0) {
      [user, password] = [arg.slice(0, colon), arg.slice(colon + 1)];
      if (user === '') exitWithError(context.output, ExitCode.badArgs, 'empty user name is not allowed');
    } else if (!context.flags.bool('interactive')) password = await scanWord(context);
    else password = await readPasswordInteractive(context, arg);
  }
  const request = { name: user, password, ...(noPassword ? { options: { no_password: true } } : {}) };
  const response = await authCall(context, 'UserAdd', request);
  display(context).response('AuthUserAddResponse', response, () => `User ${user} created\n`);
}

/** `etcdctl user delete <name>`. */
export async function runUserDelete(context: CommandContext): Promise<void> {
  needArgs(context, 1, 'user delete command requires user name as its argument');
  const name = context.args[0] ?? '';
  const response = await authCall(context, 'UserDelete', { name });
  display(context).response('AuthUserDeleteResponse', response, () => `User ${name} deleted\n`);
}

/** `etcdctl user get <name> [--detail]`. */
export async function runUserGet(context: CommandContext): Promise<void> {
  needArgs(context, 1, 'user get command requires user name as its argument');
  const name = context.args[0] ?? '';
  const response = await authCall(context, 'UserGet', { name });
  const printer = display(context);
  if (!context.flags.bool('detail')) return printer.userGet(name, response);
  context.output.out(`User: ${name}\n`);
  for (const role of response.roles as string[]) {
    context.output.out('\n');
    printer.roleGet(role, await authCall(context, 'RoleGet', { role }));
  }
}

/** `etcdctl user list`. */
export async function runUserList(context: CommandContext): Promise<void> {
  needArgs(context, 0, 'user list command requires no arguments');
  display(context).userList(await authCall(context, 'UserList', {}));
}

/** `etcdctl user passwd <name>`. */
export async function runUserPasswd(context: CommandContext): Promise<void> {
  needArgs(context, 1, 'user passwd command requires user name as its argument');
  const name = context.args[0] ?? '';
  const password = context.flags.bool('interactive')
    ? await readPasswordInteractive(context, name)
    : await scanWord(context);
  const response = await authCall(context, 'UserChangePassword', { name, password });
  display(context).response('AuthUserChangePasswordResponse', response, () => 'Password updated\n');
}

/** `etcdctl user grant-role <user> <role>`. */
export async function runUserGrantRole(context: CommandContext): Promise<void> {
  needArgs(context, 2, 'user grant command requires user name and role name as its argument');
  const [user = '', role = ''] = context.args;
  const response = await authCall(context, 'UserGrantRole', { user, role });
  display(context).response('AuthUserGrantRoleResponse', response, () => `Role ${role} is granted to user ${user}\n`);
}

/** `etcdctl user revoke-role <user> <role>`. */
export async function runUserRevokeRole(context: CommandContext): Promise<void> {
  needArgs(context, 2, 'user revoke-role requires user name and role name as its argument');
  const [name = '', role = ''] = context.args;
  const response = await authCall(context, 'UserRevokeRole', { name, role });
  display(context).response(
    'AuthUserRevokeRoleResponse',
    response,
    () => `Role ${role} is revoked from user ${name}\n`,
  );
}

/** `etcdctl role add <name>`. */
export async function runRoleAdd(context: CommandContext): Promise<void> {
  needArgs(context, 1, 'role add command requires role name as its argument');
  const name = context.args[0] ?? '';
  const response = await authCall(context, 'RoleAdd', { name });
  display(context).response('AuthRoleAddResponse', response, () => `Role ${name} created\n`);
}

/** `etcdctl role delete <name>`. */
export async function runRoleDelete(context: CommandContext): Promise<void> {
  needArgs(context, 1, 'role delete command requires role name as its argument');
  const role = context.args[0] ?? '';
  const response = await authCall(context, 'RoleDelete', { role });
  display(context).response('AuthRoleDeleteResponse', response, () => `Role ${role} deleted\n`);
}

/** `etcdctl role get <name>`. */
export async function runRoleGet(context: CommandContext): Promise<void> {
  needArgs(context, 1, 'role get command requires role name as its argument');
  const role = context.args[0] ?? '';
  display(context).roleGet(role, await authCall(context, 'RoleGet', { role }));
}

/** `etcdctl role list`. */
export async function runRoleList(context: CommandContext): Promise<void> {
  needArgs(context, 0, 'role list command requires no arguments');
  display(context).roleList(await authCall(context, 'RoleList', {}));
}

/** `etcdctl role grant-permission [--prefix|--from-key] <role> <read|write|readwrite> <key> [endkey]`. */
export async function runRoleGrantPermission(context: CommandContext): Promise<void> {
  const { args, output } = context;
  if (args.length < 3)
    exitWithError(
      output,
      ExitCode.badArgs,
      'role grant command requires role name, permission type, and key [endkey] as its argument',
    );
  // clientv3's StrToPermissionType: the enum's names, in any case.
  const permType = enumValue('authpb.Permission.Type', (args[1] ?? '').toUpperCase());
  if (permType === undefined) exitWithError(output, ExitCode.badArgs, `invalid permission type: ${args[1]}`);
  const { key, rangeEnd } = permRange(context, args.slice(2));
  const name = args[0] ?? '';
  const perm = { permType, key, range_end: rangeEnd };
  const response = await authCall(context, 'RoleGrantPermission', { name, perm });
  display(context).response('AuthRoleGrantPermissionResponse', response, () => `Role ${name} updated\n`);
}

/** `etcdctl role revoke-permission [--prefix|--from-key] <role> <key> [endkey]`. */
export async function runRoleRevokePermission(context: CommandContext): Promise<void> {
  const { args, output } = context;
  if (args.length < 2)
    exitWithError(
      output,
      ExitCode.badArgs,
      'role revoke-permission command requires role name and key [endkey] as its argument',
    );
  const { key, rangeEnd } = permRange(context, args.slice(1));
  const role = args[0] ?? '';
  const response = await authCall(context, 'RoleRevokePermission', { role, key, range_end: rangeEnd });
  const shown = Buffer.from(args[1] ?? '');
  const simple = (): Buffer => {
    const tail = Buffer.from(` is revoked from role ${role}\n`);
    if (rangeEnd.length === 0) return Buffer.concat([Buffer.from('Permission of key '), shown, tail]);
    if (rangeEnd.length === 1 && rangeEnd[0] === 0)
      return Buffer.concat([Buffer.from('Permission of range ['), shown, Buffer.from(', <open ended>'), tail]);
    return Buffer.concat([
      Buffer.from('Permission of range ['),
      shown,
      Buffer.from(', '),
      rangeEnd,
      Buffer.from(')'),
      tail,
    ]);
  };
  display(context).response('AuthRoleRevokePermissionResponse', response, simple);
}

/** etcdctl's permRange: the key and range end a permission covers, from the words and flags. */
function permRange(context: CommandContext, words: readonly string[]): { key: Buffer; rangeEnd: Buffer } {
  const prefix = context.flags.bool('prefix');
  const fromKey = context.flags.bool('from-key');
  const fail = (message: string): never => exitWithError(context.output, ExitCode.badArgs, message);
  const exclusive = '--from-key and --prefix flags are mutually exclusive';
  const key = Buffer.from(words[0] ?? '');
  if (key.length === 0) {
    if (prefix && fromKey) fail(exclusive);
    // An empty key means the whole key space, which etcd spells as "\0" up to "\0" (open ended).
    return { key: Buffer.from([0]), rangeEnd: prefix || fromKey ? Buffer.from([0]) : Buffer.alloc(0) };
  }
  if (words.length === 1) {
    if (prefix && fromKey) fail(exclusive);
    if (prefix) return { key, rangeEnd: prefixRangeEnd(key) };
    return { key, rangeEnd: fromKey ? Buffer.from([0]) : Buffer.alloc(0) };
  }
  if (prefix) fail('unexpected endkey argument with --prefix flag');
  if (fromKey) fail('unexpected endkey argument with --from-key flag');
  return { key, rangeEnd: Buffer.from(words[1] ?? '') };
}

/** `etcdctl auth enable`: creates the root role and grants it to root first when etcd asks for it. */
export async function runAuthEnable(context: CommandContext): Promise<void> {
  needArgs(context, 0, 'auth enable command does not accept any arguments');
  const client = context.client();
  const timeoutMs = context.commandTimeoutMs;
  // The root role is created at most once; a second refusal ends the command.
  for (let attempt = 0; ; attempt++) {
    try {
      await client.call('Auth', 'AuthEnable', {}, timeoutMs);
      break;
    } catch (error) {
      const text = rpcErrorText(error);
      if (text !== rootRoleMissingText || attempt > 0) exitWithError(context.output, ExitCode.error, text);
    }
    await authCall(context, 'RoleAdd', { name: 'root' }, timeoutMs);
    await authCall(context, 'UserGrantRole', { user: 'root', role: 'root' }, timeoutMs);
  }
  context.output.out('Authentication Enabled\n');
}

/** `etcdctl auth disable`. */
export async function runAuthDisable(context: CommandContext): Promise<void> {
  needArgs(context, 0, 'auth disable command does not accept any arguments');
  await authCall(context, 'AuthDisable', {}, context.commandTimeoutMs);
  context.output.out('Authentication Disabled\n');
}
