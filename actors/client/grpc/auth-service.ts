/**
 * The gRPC Auth service: etcd's 17 Auth methods on wire objects, answered by the member's
 * AuthFront (actors/member/auth-api.ts). Every answer carries the response header as etcd's does.
 */
import { headerToWire, type WireMessage } from '../../../src/api/proto-wire.js';
import type { ResponseHeader } from '../../../src/api/types.js';
import type { AuthFront } from '../../member/auth-api.js';
import type { AuthRequest, AuthResponse, Permission, PermissionType } from '../../../src/auth/types.js';
import type { GrpcHandlers, UnaryContext, UnaryHandler } from './router.js';

/** What the Auth service needs of a member. */
export interface AuthServiceHost {
  header(): ResponseHeader;
  auth: Pick<AuthFront, 'request' | 'userAdd' | 'userChangePassword' | 'authenticate'>;
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '');
const bytes = (value: unknown): Uint8Array => (value instanceof Uint8Array ? value : new Uint8Array(0));

function permissionFromWire(wire: unknown): Permission {
  const perm = (wire ?? {}) as { permType?: unknown; key?: unknown; rangeEnd?: unknown };
  return {
    permType: Number(perm.permType ?? 0) as PermissionType,
    key: bytes(perm.key),
    rangeEnd: bytes(perm.rangeEnd),
  };
}

function permissionToWire(perm: Permission): WireMessage {
  return { permType: perm.permType, key: Buffer.from(perm.key), rangeEnd: Buffer.from(perm.rangeEnd) };
}

/** The request each proposed method carries, from its wire form. */
const requestOf: Record<string, (wire: WireMessage) => AuthRequest> = {
  AuthEnable: () => ({ method: 'authEnable' }),
  AuthDisable: () => ({ method: 'authDisable' }),
  UserGet: (wire) => ({ method: 'userGet', name: text(wire.name) }),
  UserList: () => ({ method: 'userList' }),
  UserDelete: (wire) => ({ method: 'userDelete', name: text(wire.name) }),
  UserGrantRole: (wire) => ({ method: 'userGrantRole', user: text(wire.user), role: text(wire.role) }),
  UserRevokeRole: (wire) => ({ method: 'userRevokeRole', name: text(wire.name), role: text(wire.role) }),
  RoleAdd: (wire) => ({ method: 'roleAdd', name: text(wire.name) }),
  RoleGet: (wire) => ({ method: 'roleGet', role: text(wire.role) }),
  RoleList: () => ({ method: 'roleList' }),
  RoleDelete: (wire) => ({ method: 'roleDelete', role: text(wire.role) }),
  RoleGrantPermission: (wire) => ({
    method: 'roleGrantPermission',
    name: text(wire.name),
    perm: permissionFromWire(wire.perm),
  }),
  RoleRevokePermission: (wire) => ({
    method: 'roleRevokePermission',
    role: text(wire.role),
    key: bytes(wire.key),
    rangeEnd: bytes(wire.rangeEnd),
  }),
};

/** The fields of an answer besides the header. */
function responseToWire(response: AuthResponse): WireMessage {
  const wire: WireMessage = {};
  if (response.roles !== undefined) wire.roles = response.roles;
  if (response.users !== undefined) wire.users = response.users;
  if (response.perm !== undefined) wire.perm = response.perm.map(permissionToWire);
  if (response.enabled !== undefined) {
    wire.enabled = response.enabled;
    wire.authRevision = String(response.authRevision ?? 0);
  }
  return wire;
}

/** The Auth service's handlers for createGrpcServer. */
export function authHandlers(host: AuthServiceHost): GrpcHandlers {
  const header = () => headerToWire(host.header()) as unknown as WireMessage;
  const handlers: Record<string, UnaryHandler> = {};
  for (const [method, toRequest] of Object.entries(requestOf)) {
    handlers[`etcdserverpb.Auth/${method}`] = async (wire: WireMessage, context: UnaryContext) => {
      const response = await host.auth.request(toRequest(wire), context);
      return { header: header(), ...responseToWire(response) };
    };
  }
  handlers['etcdserverpb.Auth/Authenticate'] = async (wire, context) => ({
    header: header(),
    token: await host.auth.authenticate(text(wire.name), text(wire.password), context),
  });
  handlers['etcdserverpb.Auth/UserAdd'] = async (wire, context) => {
    const noPassword = (wire.options as { noPassword?: unknown } | null | undefined)?.noPassword === true;
    await host.auth.userAdd(text(wire.name), text(wire.password), noPassword, context);
    return { header: header() };
  };
  handlers['etcdserverpb.Auth/UserChangePassword'] = async (wire, context) => {
    await host.auth.userChangePassword(text(wire.name), text(wire.password), context);
    return { header: header() };
  };
  return handlers as GrpcHandlers;
}
