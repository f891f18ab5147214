/**
 * etcdctl's output for user and role commands in each -w format: JSON and protobuf print the
 * response message, fields the header (and a role's permissions), table refuses.
 */
import { prefixRangeEnd } from './kv-commands.js';
import type { Message } from './client.js';
import { goQuote } from './go-format.js';
import { ExitCode, exitWithError, type Output } from './output.js';
import { encodeMessage, enumName, fieldsHeaderText, messageJson, type OutputFormat } from './printers.js';

/** authpb.Permission.Type's numbers. */
const permissionRead = 0;
const permissionWrite = 1;
const permissionReadWrite = 2;

/** Prints one user or role response as etcdctl's display does for the chosen format. */
export class AuthDisplay {
  constructor(
    readonly output: Output,
    readonly format: OutputFormat,
  ) {}

  /**
   * The common shape: simple prints `simple`, fields the header only (or refuses when
   * `fields` is false), JSON and protobuf the message, table refuses.
   */
  response(typeName: string, response: Message, simple: () => string | Buffer, fields = true): void {
    switch (this.format) {
      case 'simple':
        return this.output.out(simple());
      case 'fields':
        if (!fields) this.unsupported();
        return this.output.out(fieldsHeaderText(response.header));
      case 'json':
        return this.output.out(`${messageJson(`etcdserverpb.${typeName}`, response)}\n`);
      case 'protobuf':
        return this.output.out(encodeMessage(`etcdserverpb.${typeName}`, response));
      case 'table':
        this.unsupported();
    }
  }

  userGet(name: string, response: Message): void {
    const roles = (response.roles as string[]).map((role) => ` ${role}`).join('');
    this.response('AuthUserGetResponse', response, () => `User: ${name}\nRoles:${roles}\n`, false);
  }

  userList(response: Message): void {
    const users = (response.users as string[]).map((user) => `${user}\n`).join('');
    this.response('AuthUserListResponse', response, () => users, false);
  }

  roleList(response: Message): void {
    const roles = response.roles as string[];
    if (this.format !== 'fields') {
      this.response('AuthRoleListResponse', response, () => roles.map((role) => `${role}\n`).join(''));
      return;
    }
    const quoted = roles.map((role) => ` ${goQuote(Buffer.from(role))}`).join('');
    this.output.out(`${fieldsHeaderText(response.header)}"Roles" :${quoted}\n`);
  }

  roleGet(name: string, response: Message): void {
    const perms = response.perm as Message[];
    if (this.format === 'fields') {
      this.output.out(fieldsHeaderText(response.header));
      for (const perm of perms) {
        const type = enumName('authpb.Permission.Type', perm.permType as number);
        this.output.out(
          `"PermType" :  ${type}\n"Key" : ${goQuote(perm.key as Buffer)}\n"RangeEnd" : ${goQuote(perm.range_end as Buffer)}\n`,
        );
      }
      return;
    }
    this.response('AuthRoleGetResponse', response, () => roleText(name, perms));
  }

  unsupported(): never {
    exitWithError(this.output, ExitCode.badFeature, `${this.format} not supported as output format`);
  }
}

/** The simple printer's role: its read and write permissions as keys, ranges and prefixes. */
function roleText(name: string, perms: readonly Message[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`Role ${name}\nKV Read:\n`)];
  const describe = (perm: Message): Buffer => {
    const key = perm.key as Buffer;
    const rangeEnd = perm.range_end as Buffer;
    if (rangeEnd.length === 0) return Buffer.concat([Buffer.from('\t'), key, Buffer.from('\n')]);
    const open = rangeEnd.length === 1 && rangeEnd[0] === 0;
    const range = open
      ? [Buffer.from('\t['), key, Buffer.from(', <open ended>')]
      : [Buffer.from('\t['), key, Buffer.from(', '), rangeEnd, Buffer.from(')')];
    const prefix = prefixRangeEnd(key).equals(rangeEnd) ? [Buffer.from(' (prefix '), key, Buffer.from(')')] : [];
    return Buffer.concat([...range, ...prefix, Buffer.from('\n')]);
  };
  for (const perm of perms) {
    if (perm.permType === permissionRead || perm.permType === permissionReadWrite) parts.push(describe(perm));
  }
  parts.push(Buffer.from('KV Write:\n'));
  for (const perm of perms) {
    if (perm.permType === permissionWrite || perm.permType === permissionReadWrite) parts.push(describe(perm));
  }
  return Buffer.concat(parts);
}
