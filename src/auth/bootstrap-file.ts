/**
 * The --auth-bootstrap-file: users, roles and key permissions, and whether auth is enabled, in
 * YAML or JSON (JSON is YAML), checked against schemas/auth-bootstrap.schema.json and etcd's own
 * rules (enabling auth needs a root user with the root role; a user's roles must exist), and
 * turned into the Auth requests that build it, in the order etcd's RPCs would: roles and their
 * permissions, users and their roles, then AuthEnable. Passwords stay plain here; the member
 * hashes them before proposing.
 */
import { parseYaml } from '../lib/yaml.js';
import { prefixRangeEnd } from '../concurrency/keys.js';
import { PermissionType, rootRole, rootUser, type Permission } from './types.js';

/** A file that cannot be applied; the message names the file and the offending path. */
export class AuthBootstrapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthBootstrapError';
  }
}

interface FilePermission {
  type: 'read' | 'write' | 'readwrite';
  key?: string;
  'range-end'?: string;
  prefix?: string;
  'from-key'?: string;
}

interface FileContent {
  enable?: boolean;
  roles?: { name: string; permissions?: FilePermission[] }[];
  users?: { name: string; password?: string; 'no-password'?: true; roles?: string[] }[];
}

/** One step of the bootstrap, proposed as the matching Auth RPC would be. */
export type BootstrapStep =
  | { kind: 'roleAdd'; name: string }
  | { kind: 'roleGrantPermission'; name: string; perm: Permission }
  | { kind: 'userAdd'; name: string; password: string; noPassword: boolean }
  | { kind: 'userGrantRole'; user: string; role: string }
  | { kind: 'authEnable' };

const permissionTypes: Record<FilePermission['type'], PermissionType> = {
  read: PermissionType.read,
  write: PermissionType.write,
  readwrite: PermissionType.readwrite,
};

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

function permissionOf(perm: FilePermission): Permission {
  const permType = permissionTypes[perm.type];
  if (perm.prefix !== undefined)
    return { permType, key: text(perm.prefix), rangeEnd: prefixRangeEnd(text(perm.prefix)) };
  if (perm['from-key'] !== undefined) return { permType, key: text(perm['from-key']), rangeEnd: new Uint8Array([0]) };
  return { permType, key: text(perm.key!), rangeEnd: text(perm['range-end'] ?? '') };
}

type Validator = (content: unknown) => boolean;

function parseText(path: string, source: string): unknown {
  try {
    return parseYaml(source);
  } catch (error) {
    throw new AuthBootstrapError(`auth bootstrap file ${path}: ${(error as Error).message.split('\n')[0]}`);
  }
}

/** etcd's rules the schema cannot say: known roles, unique names, root for enabling auth. */
function checkRules(path: string, content: FileContent): void {
  const roles = new Set<string>([rootRole]);
  for (const [index, role] of (content.roles ?? []).entries()) {
    if (roles.has(role.name) && role.name !== rootRole)
      throw new AuthBootstrapError(`auth bootstrap file ${path}: /roles/${index}/name: role "${role.name}" repeated`);
    roles.add(role.name);
  }
  const users = new Set<string>();
  for (const [index, user] of (content.users ?? []).entries()) {
    if (users.has(user.name))
      throw new AuthBootstrapError(`auth bootstrap file ${path}: /users/${index}/name: user "${user.name}" repeated`);
    users.add(user.name);
    for (const [roleIndex, role] of (user.roles ?? []).entries()) {
      if (!roles.has(role))
        throw new AuthBootstrapError(
          `auth bootstrap file ${path}: /users/${index}/roles/${roleIndex}: role "${role}" is not defined in the file`,
        );
    }
  }
  const root = content.users?.find((user) => user.name === rootUser);
  if (content.enable === true && !(root?.roles ?? []).includes(rootRole))
    throw new AuthBootstrapError(
      `auth bootstrap file ${path}: /enable: enabling auth needs a user "root" with the role "root" in the file`,
    );
}

/**
 * The steps a file asks for, or an AuthBootstrapError naming the first bad path (all of them for
 * schema errors). `validate` is compileBootstrapSchema's result.
 */
export function bootstrapSteps(
  path: string,
  source: string,
  validate: Validator & { errors?: unknown },
): BootstrapStep[] {
  const content = parseText(path, source) ?? {};
  if (!validate(content)) {
    const problems = ((validate.errors ?? []) as { instancePath: string; message?: string; keyword: string }[])
      .filter((error) => error.keyword !== 'oneOf' && error.keyword !== 'not' && error.keyword !== 'if')
      .map((error) => `${error.instancePath || '/'}: ${error.message ?? error.keyword}`);
    throw new AuthBootstrapError(`auth bootstrap file ${path}: ${[...new Set(problems)].join('; ')}`);
  }
  const file = content as FileContent;
  checkRules(path, file);
  const steps: BootstrapStep[] = [];
  for (const role of file.roles ?? []) {
    if (role.name !== rootRole) steps.push({ kind: 'roleAdd', name: role.name });
    for (const perm of role.permissions ?? [])
      steps.push({ kind: 'roleGrantPermission', name: role.name, perm: permissionOf(perm) });
  }
  const needsRootRole = (file.users ?? []).some((user) => (user.roles ?? []).includes(rootRole));
  const rootRoleListed = (file.roles ?? []).some((role) => role.name === rootRole);
  if (needsRootRole && !rootRoleListed) steps.unshift({ kind: 'roleAdd', name: rootRole });
  else if (rootRoleListed) steps.unshift({ kind: 'roleAdd', name: rootRole });
  for (const user of file.users ?? []) {
    const noPassword = user['no-password'] === true;
    steps.push({ kind: 'userAdd', name: user.name, password: user.password ?? '', noPassword });
    for (const role of user.roles ?? []) steps.push({ kind: 'userGrantRole', user: user.name, role });
  }
  if (file.enable === true) steps.push({ kind: 'authEnable' });
  return steps;
}
