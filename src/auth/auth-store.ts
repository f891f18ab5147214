/**
 * etcd's auth store: users, roles and their key permissions, whether auth is enabled, and the
 * auth revision, which every change bumps (starting at 1, as etcd's new store commits). Changes
 * arrive only through apply(), in log order on every member; the whole state is small and is
 * written to the backend as one record with the entry that changed it (encode()/decode()).
 * Permission checks read a per-user cache of merged intervals (range-permissions.ts), rebuilt on
 * every change, so a check on the request path is a binary search.
 */
import { Packr } from 'msgpackr';
import { errors } from '../api/errors.js';
import { compareBytes } from '../lib/bytes.js';
import { mergePermissions, permits, type RangePermissions } from './range-permissions.js';
import {
  rootRole,
  rootUser,
  type AuthInfo,
  type AuthRequest,
  type AuthResponse,
  type Permission,
  type Role,
  type User,
} from './types.js';

/** What the member's token provider learns from applied changes (etcd's TokenProvider hooks). */
export interface TokenHooks {
  /**
   * A user authenticated at `index`; `token` is the proposer's random part (simple tokens).
   * Returns the token now valid for the user (empty when the member makes it, as for JWT).
   */
  assign(username: string, token: string, index: number): string;
  invalidateUser(username: string): void;
  enable(): void;
  disable(): void;
}

/** The persisted form: the whole store, as encode() writes it and a backup carries it. */
export interface AuthState {
  enabled: boolean;
  /**
   * Whether auth was ever enabled: etcd writes its authEnabled key the first time and keeps it (as
   * 0) once auth is disabled. Absent in records written before it was kept; then it is `enabled`.
   */
  enabledRecorded?: boolean;
  revision: number;
  users: User[];
  roles: Role[];
}

const packr = new Packr({ useRecords: false });

/** The state a record written by encode() holds; a fresh store's (disabled, revision 1) when undefined. */
export function decodeAuthState(bytes: Uint8Array | undefined): AuthState {
  if (bytes === undefined) return { enabled: false, revision: 1, users: [], roles: [] };
  return packr.unpack(bytes) as AuthState;
}

/** The backend record of `state`, as encode() writes it. */
export function encodeAuthState(state: AuthState): Uint8Array {
  return new Uint8Array(packr.pack(state));
}

/** The methods only a root-role user may call when auth is enabled (etcd's needAdminPermission). */
const adminMethods: ReadonlySet<AuthRequest['method']> = new Set([
  'authEnable',
  'authDisable',
  'authStatus',
  'userAdd',
  'userDelete',
  'userChangePassword',
  'userGrantRole',
  'userRevokeRole',
  'roleAdd',
  'roleGrantPermission',
  'roleRevokePermission',
  'roleDelete',
  'userList',
  'roleList',
]);

function byName<T extends { name: string }>(a: T, b: T): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export class AuthStore {
  private enabledFlag = false;
  private enabledRecorded = false;
  private revisionNumber = 1;
  private readonly users = new Map<string, User>();
  private readonly roles = new Map<string, Role>();
  private permissionCache = new Map<string, RangePermissions>();

  /** The store as `bytes` (encode()) left it; a fresh store when undefined. */
  static decode(bytes: Uint8Array | undefined): AuthStore {
    const store = new AuthStore();
    if (bytes !== undefined) store.load(decodeAuthState(bytes));
    return store;
  }

  /** Replaces the whole state with the one `bytes` holds (a snapshot install). */
  restore(bytes: Uint8Array | undefined): void {
    this.users.clear();
    this.roles.clear();
    this.enabledFlag = false;
    this.enabledRecorded = false;
    this.revisionNumber = 1;
    if (bytes !== undefined) this.load(decodeAuthState(bytes));
    else this.refreshCache();
  }

  encode(): Uint8Array {
    const state: AuthState = {
      enabled: this.enabledFlag,
      enabledRecorded: this.enabledRecorded,
      revision: this.revisionNumber,
      users: [...this.users.values()],
      roles: [...this.roles.values()],
    };
    return encodeAuthState(state);
  }

  /** Whether auth is enabled; the one check the request path makes when it is not. */
  get enabled(): boolean {
    return this.enabledFlag;
  }

  get revision(): number {
    return this.revisionNumber;
  }

  /** The user's bcrypt hash for a password check (etcd's CheckPassword before the compare). */
  passwordHashOf(username: string): { hash: string; revision: number } {
    if (!this.enabledFlag) throw errors.authNotEnabled();
    const user = this.users.get(username);
    if (user === undefined) throw errors.authFailed();
    if (user.noPassword) throw errors.noPasswordUser();
    return { hash: user.password, revision: this.revisionNumber };
  }

  hasRole(username: string, role: string): boolean {
    return this.users.get(username)?.roles.includes(role) ?? false;
  }

  /** Throws unless `info` may read [key, rangeEnd) (etcd's IsRangePermitted). */
  checkRange(info: AuthInfo | undefined, key: Uint8Array, rangeEnd: Uint8Array): void {
    const permissions = this.userPermissions(info);
    if (permissions !== undefined && !permits(permissions.read, key, rangeEnd)) throw errors.permissionDenied();
  }

  /** Throws unless `info` may write [key, rangeEnd) (IsPutPermitted, IsDeleteRangePermitted). */
  checkWrite(info: AuthInfo | undefined, key: Uint8Array, rangeEnd: Uint8Array): void {
    const permissions = this.userPermissions(info);
    if (permissions !== undefined && !permits(permissions.write, key, rangeEnd)) throw errors.permissionDenied();
  }

  /** etcd's IsAdminPermitted: the user must hold the root role. */
  checkAdmin(info: AuthInfo | undefined): void {
    if (!this.enabledFlag) return;
    if (info === undefined || info.username === '') throw errors.userEmpty();
    const user = this.users.get(info.username);
    if (user === undefined) throw errors.userNotFound();
    if (!user.roles.includes(rootRole)) throw errors.permissionDenied();
  }

  /**
   * etcd's isOpPermitted up to the key check: undefined when anything goes (auth off, a root
   * user), otherwise the user's permissions; throws for a missing user or a stale revision.
   */
  private userPermissions(info: AuthInfo | undefined): RangePermissions | undefined {
    if (!this.enabledFlag) return undefined;
    if (info === undefined || info.revision === 0) throw errors.userEmpty();
    if (info.revision < this.revisionNumber) throw errors.authOldRevision();
    const user = this.users.get(info.username);
    if (user === undefined) throw errors.permissionDenied();
    if (user.roles.includes(rootRole)) return undefined;
    const permissions = this.permissionCache.get(info.username);
    if (permissions === undefined) throw errors.permissionDenied();
    return permissions;
  }

  /**
   * Applies one committed request from `caller` at Raft `index`; refusals throw EtcdErrors and
   * change nothing. Returns the answer and whether the state changed (and must be persisted).
   */
  apply(
    request: AuthRequest,
    caller: AuthInfo | undefined,
    index: number,
    tokens: TokenHooks,
  ): { response: AuthResponse; changed: boolean } {
    if (adminMethods.has(request.method)) this.checkAdmin(caller);
    const before = this.revisionNumber;
    const wasEnabled = this.enabledFlag;
    const response = this.applyRequest(request, caller, index, tokens);
    const changed = this.revisionNumber !== before || this.enabledFlag !== wasEnabled;
    if (changed) this.refreshCache();
    return { response, changed };
  }

  private applyRequest(
    request: AuthRequest,
    caller: AuthInfo | undefined,
    index: number,
    tokens: TokenHooks,
  ): AuthResponse {
    switch (request.method) {
      case 'authEnable':
        return this.enable(tokens);
      case 'authDisable':
        if (this.enabledFlag) {
          this.enabledFlag = false;
          this.revisionNumber++;
          tokens.disable();
        }
        return {};
      case 'authStatus':
        return { enabled: this.enabledFlag, authRevision: this.revisionNumber };
      case 'authenticate': {
        if (!this.enabledFlag) throw errors.authNotEnabled();
        const user = this.users.get(request.name);
        if (user === undefined || user.noPassword) throw errors.authFailed();
        const token = tokens.assign(request.name, request.token, index);
        return { token, authenticated: request.name, authRevision: this.revisionNumber };
      }
      case 'userGet':
        return { roles: [...this.userGet(request.name, caller).roles] };
      case 'userList':
        return { users: [...this.users.keys()].sort() };
      case 'roleGet':
        return { perm: this.roleGet(request.role, caller).permissions.map((perm) => ({ ...perm })) };
      case 'roleList':
        return { roles: [...this.roles.keys()].sort() };
      default:
        return this.applyUserChange(request, tokens) ?? this.applyRoleChange(request);
    }
  }

  private enable(tokens: TokenHooks): AuthResponse {
    if (this.enabledFlag) return {};
    const root = this.users.get(rootUser);
    if (root === undefined) throw errors.rootUserNotExist();
    if (!root.roles.includes(rootRole)) throw errors.rootRoleNotExist();
    // etcd's enable keeps the revision; the flag is persisted all the same (apply() sees it move).
    this.enabledFlag = true;
    this.enabledRecorded = true;
    tokens.enable();
    return {};
  }

  /** UserGet is open to the user itself as well as to admins. */
  private userGet(name: string, caller: AuthInfo | undefined): User {
    if (this.enabledFlag && caller?.username !== name) this.checkAdmin(caller);
    const user = this.users.get(name);
    if (user === undefined) throw errors.userNotFound();
    return user;
  }

  /** RoleGet is open to holders of the role as well as to admins. */
  private roleGet(name: string, caller: AuthInfo | undefined): Role {
    if (this.enabledFlag && !this.hasRole(caller?.username ?? '', name)) this.checkAdmin(caller);
    const role = this.roles.get(name);
    if (role === undefined) throw errors.roleNotFound();
    return role;
  }

  private applyUserChange(request: AuthRequest, tokens: TokenHooks): AuthResponse | undefined {
    switch (request.method) {
      case 'userAdd': {
        if (request.name === '') throw errors.userEmpty();
        if (this.users.has(request.name)) throw errors.userAlreadyExist();
        this.users.set(request.name, {
          name: request.name,
          password: request.noPassword ? '' : request.hashedPassword,
          noPassword: request.noPassword,
          roles: [],
        });
        break;
      }
      case 'userDelete':
        if (this.enabledFlag && request.name === rootUser) throw errors.invalidAuthMgmt();
        if (!this.users.delete(request.name)) throw errors.userNotFound();
        tokens.invalidateUser(request.name);
        break;
      case 'userChangePassword': {
        const user = this.users.get(request.name);
        if (user === undefined) throw errors.userNotFound();
        this.users.set(request.name, { ...user, password: request.hashedPassword });
        tokens.invalidateUser(request.name);
        break;
      }
      case 'userGrantRole': {
        const user = this.users.get(request.user);
        if (user === undefined) throw errors.userNotFound();
        if (request.role !== rootRole && !this.roles.has(request.role)) throw errors.roleNotFound();
        // Granting a role the user holds changes nothing, and keeps the revision.
        if (user.roles.includes(request.role)) return {};
        this.users.set(request.user, { ...user, roles: [...user.roles, request.role].sort() });
        break;
      }
      case 'userRevokeRole': {
        if (this.enabledFlag && request.name === rootUser && request.role === rootRole) throw errors.invalidAuthMgmt();
        const user = this.users.get(request.name);
        if (user === undefined) throw errors.userNotFound();
        if (!user.roles.includes(request.role)) throw errors.roleNotGranted();
        this.users.set(request.name, { ...user, roles: user.roles.filter((role) => role !== request.role) });
        break;
      }
      default:
        return undefined;
    }
    this.revisionNumber++;
    return {};
  }

  private applyRoleChange(request: AuthRequest): AuthResponse {
    switch (request.method) {
      case 'roleAdd':
        if (request.name === '') throw errors.roleEmpty();
        if (this.roles.has(request.name)) throw errors.roleAlreadyExist();
        this.roles.set(request.name, { name: request.name, permissions: [] });
        break;
      case 'roleDelete':
        if (this.enabledFlag && request.role === rootRole) throw errors.invalidAuthMgmt();
        if (!this.roles.delete(request.role)) throw errors.roleNotFound();
        for (const user of this.users.values()) {
          if (user.roles.includes(request.role))
            this.users.set(user.name, { ...user, roles: user.roles.filter((role) => role !== request.role) });
        }
        break;
      case 'roleGrantPermission': {
        const role = this.roles.get(request.name);
        if (role === undefined) throw errors.roleNotFound();
        this.roles.set(request.name, { name: role.name, permissions: grantPermission(role.permissions, request.perm) });
        break;
      }
      case 'roleRevokePermission': {
        const role = this.roles.get(request.role);
        if (role === undefined) throw errors.roleNotFound();
        const kept = role.permissions.filter(
          (perm) => compareBytes(perm.key, request.key) !== 0 || compareBytes(perm.rangeEnd, request.rangeEnd) !== 0,
        );
        if (kept.length === role.permissions.length) throw errors.permissionNotGranted();
        this.roles.set(request.role, { name: role.name, permissions: kept });
        break;
      }
      default:
        throw new Error(`auth request ${request.method} has no apply`);
    }
    this.revisionNumber++;
    return {};
  }

  private load(state: AuthState): void {
    this.enabledFlag = state.enabled;
    this.enabledRecorded = state.enabledRecorded ?? state.enabled;
    this.revisionNumber = state.revision;
    for (const user of state.users) this.users.set(user.name, user);
    for (const role of state.roles) {
      const permissions = role.permissions.map((perm) => ({
        permType: perm.permType,
        key: new Uint8Array(perm.key),
        rangeEnd: new Uint8Array(perm.rangeEnd),
      }));
      this.roles.set(role.name, { name: role.name, permissions });
    }
    this.refreshCache();
  }

  private refreshCache(): void {
    const cache = new Map<string, RangePermissions>();
    for (const user of this.users.values()) {
      const permissions: Permission[] = [];
      for (const name of user.roles) permissions.push(...(this.roles.get(name)?.permissions ?? []));
      cache.set(user.name, mergePermissions(permissions));
    }
    this.permissionCache = cache;
  }

  /** The users, sorted by name (for tests and debugging). */
  listUsers(): User[] {
    return [...this.users.values()].sort(byName);
  }
}

/** A role's permissions with `perm` added, or its type replaced where key and range end match. */
function grantPermission(permissions: readonly Permission[], perm: Permission): Permission[] {
  const copy = { permType: perm.permType, key: new Uint8Array(perm.key), rangeEnd: new Uint8Array(perm.rangeEnd) };
  const same = permissions.findIndex(
    (existing) => compareBytes(existing.key, perm.key) === 0 && compareBytes(existing.rangeEnd, perm.rangeEnd) === 0,
  );
  if (same !== -1) return permissions.map((existing, at) => (at === same ? copy : existing));
  return [...permissions, copy].sort((a, b) => compareBytes(a.key, b.key));
}
