/**
 * etcd's auth model (authpb): users with a bcrypt hash (or none) and sorted role names, roles with
 * key permissions sorted by key, and the management requests as they travel through Raft. A
 * password never travels: the proposing member hashes it first, as etcd 3.5 does.
 */

/** authpb.Permission.Type; the numbers are the wire values. */
export const enum PermissionType {
  read = 0,
  write = 1,
  readwrite = 2,
}

export interface Permission {
  permType: PermissionType;
  key: Uint8Array;
  /** Empty: the key alone; "\0": every key from key on; otherwise [key, rangeEnd). */
  rangeEnd: Uint8Array;
}

export interface User {
  name: string;
  /** The bcrypt hash; empty for a user added with no_password. */
  password: string;
  noPassword: boolean;
  /** Sorted. */
  roles: string[];
}

export interface Role {
  name: string;
  /** Sorted by key. */
  permissions: Permission[];
}

/** Who a request comes from, and the auth revision its permission check is valid for (etcd's AuthInfo). */
export interface AuthInfo {
  username: string;
  revision: number;
}

/**
 * What a call offers to say who makes it: a token (gRPC metadata `token`, or `authorization` as
 * the JSON gateway passes it on) and the common name of a verified TLS client certificate (never
 * for calls the JSON gateway makes, as etcd). Read only when auth is enabled.
 */
export interface CallerCredentials {
  readonly token: string | undefined;
  readonly commonName: string | undefined;
  /** Told who the call was found to come from, and how (the audit log records it). */
  noteCaller?(caller: AuthInfo, source: 'token' | 'certificate'): void;
}

export const rootUser = 'root';
export const rootRole = 'root';

/** The Auth service's requests as proposals carry them. */
export type AuthRequest =
  | { method: 'authEnable' }
  | { method: 'authDisable' }
  | { method: 'authStatus' }
  /** `token`: the simple token's random part, chosen by the proposer; empty for JWT. */
  | { method: 'authenticate'; name: string; token: string }
  | { method: 'userAdd'; name: string; hashedPassword: string; noPassword: boolean }
  | { method: 'userGet'; name: string }
  | { method: 'userList' }
  | { method: 'userDelete'; name: string }
  | { method: 'userChangePassword'; name: string; hashedPassword: string }
  | { method: 'userGrantRole'; user: string; role: string }
  | { method: 'userRevokeRole'; name: string; role: string }
  | { method: 'roleAdd'; name: string }
  | { method: 'roleGet'; role: string }
  | { method: 'roleList' }
  | { method: 'roleDelete'; role: string }
  | { method: 'roleGrantPermission'; name: string; perm: Permission }
  | { method: 'roleRevokePermission'; role: string; key: Uint8Array; rangeEnd: Uint8Array };

export type AuthMethod = AuthRequest['method'];

/** What an applied auth request answers (besides the header). */
export interface AuthResponse {
  roles?: string[];
  users?: string[];
  perm?: Permission[];
  /** Authenticate: the simple token now valid on every member; empty for JWT, which the member signs. */
  token?: string;
  /** Authenticate: the user name the token is for. */
  authenticated?: string;
  enabled?: boolean;
  authRevision?: number;
}
