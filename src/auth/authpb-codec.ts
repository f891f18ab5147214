/**
 * etcd's authpb records as its auth buckets keep them: authpb.User {name = 1, password = 2 (the
 * bcrypt hash), roles = 3, options = 4 {no_password = 1}} under the user's name in "authUsers",
 * and authpb.Role {name = 1, keyPermission = 2 {permType = 1, key = 2, range_end = 3}} under the
 * role's name in "authRoles". Fields are written in order and zero values left out, as gogoproto
 * marshals them.
 */
import { protoReaderOf, pushVarint64 } from '../lib/protobuf.js';
import type { Permission, PermissionType, Role, User } from './types.js';

const tags = {
  name: 0x0a,
  password: 0x12,
  roles: 0x1a,
  options: 0x22,
  noPassword: 0x08,
  keyPermission: 0x12,
  permType: 0x08,
  key: 0x12,
  rangeEnd: 0x1a,
} as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function pushBytes(out: number[], tag: number, bytes: Uint8Array): void {
  if (bytes.length === 0) return;
  out.push(tag);
  pushVarint64(out, BigInt(bytes.length));
  for (const byte of bytes) out.push(byte);
}

/** authpb.User. */
export function encodeUser(user: User): Uint8Array {
  const out: number[] = [];
  pushBytes(out, tags.name, encoder.encode(user.name));
  pushBytes(out, tags.password, encoder.encode(user.password));
  for (const role of user.roles) pushBytes(out, tags.roles, encoder.encode(role));
  if (user.noPassword) pushBytes(out, tags.options, Uint8Array.of(tags.noPassword, 1));
  return Uint8Array.from(out);
}

/** The inverse of encodeUser; throws naming the field it does not know. */
export function decodeUser(bytes: Uint8Array): User {
  const user: User = { name: '', password: '', noPassword: false, roles: [] };
  const reader = protoReaderOf(bytes);
  while (!reader.done) {
    const key = reader.key();
    if (key === tags.name) user.name = decoder.decode(reader.bytesField());
    else if (key === tags.password) user.password = decoder.decode(reader.bytesField());
    else if (key === tags.roles) user.roles.push(decoder.decode(reader.bytesField()));
    else if (key === tags.options) {
      const options = reader.message();
      while (!options.done) {
        const optionKey = options.key();
        if (optionKey === tags.noPassword) user.noPassword = options.bool();
        else options.skip(optionKey);
      }
    } else throw new Error(`unexpected tag ${key} in an authpb.User record`);
  }
  user.roles.sort();
  return user;
}

function encodePermission(permission: Permission): Uint8Array {
  const out: number[] = [];
  if (permission.permType !== 0) {
    out.push(tags.permType);
    pushVarint64(out, BigInt(permission.permType));
  }
  pushBytes(out, tags.key, permission.key);
  pushBytes(out, tags.rangeEnd, permission.rangeEnd);
  return Uint8Array.from(out);
}

/** authpb.Role. */
export function encodeRole(role: Role): Uint8Array {
  const out: number[] = [];
  pushBytes(out, tags.name, encoder.encode(role.name));
  for (const permission of role.permissions) {
    const bytes = encodePermission(permission);
    out.push(tags.keyPermission);
    pushVarint64(out, BigInt(bytes.length));
    for (const byte of bytes) out.push(byte);
  }
  return Uint8Array.from(out);
}

/** The inverse of encodeRole; throws naming the field it does not know. */
export function decodeRole(bytes: Uint8Array): Role {
  const role: Role = { name: '', permissions: [] };
  const reader = protoReaderOf(bytes);
  while (!reader.done) {
    const key = reader.key();
    if (key === tags.name) role.name = decoder.decode(reader.bytesField());
    else if (key === tags.keyPermission) {
      const permission: Permission = { permType: 0, key: new Uint8Array(0), rangeEnd: new Uint8Array(0) };
      const fields = reader.message();
      while (!fields.done) {
        const fieldKey = fields.key();
        if (fieldKey === tags.permType) permission.permType = fields.int32() as PermissionType;
        else if (fieldKey === tags.key) permission.key = new Uint8Array(fields.bytesField());
        else if (fieldKey === tags.rangeEnd) permission.rangeEnd = new Uint8Array(fields.bytesField());
        else fields.skip(fieldKey);
      }
      role.permissions.push(permission);
    } else throw new Error(`unexpected tag ${key} in an authpb.Role record`);
  }
  return role;
}
