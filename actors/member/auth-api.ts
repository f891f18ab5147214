/**
 * The Auth service as etcd's v3_server.go serves it, and who a call comes from. Every Auth
 * request is proposed through Raft and answered from its apply on this member (auth-store.ts);
 * passwords are hashed here before proposing, in the password pool, so the log never holds one.
 * Authenticate checks the password against this member's store after a linearizable read point,
 * then proposes the authentication so every member assigns the same simple token; it tries again
 * when the auth revision moved in between, as etcd does.
 *
 * callerOf() is etcd's AuthInfoFromCtx and AuthInfoFromTLS: the token a call carries, else (with
 * --client-cert-auth) the common name of its verified client certificate. It is only consulted
 * while auth is enabled, so calls made with auth disabled never read their metadata.
 */
import { errors } from '../../src/api/errors.js';
import type { MemberConfig } from '../../src/config/config.js';
import { simpleTokenIndex } from '../../src/auth/simple-tokens.js';
import type { AuthInfo, AuthRequest, AuthResponse, CallerCredentials } from '../../src/auth/types.js';
import type { KeySpace } from './key-space.js';
import type { PasswordPool } from './password-pool.js';
import type { RaftLoop } from './raft-loop.js';
import type { TokenProvider } from './auth-tokens.js';

/** Authenticate retries while the auth revision keeps moving under it; this many times at most. */
const authenticateAttemptsMax = 8;

export interface AuthFrontParts {
  config: Pick<MemberConfig, 'clientTls'>;
  keySpace: Pick<KeySpace, 'auth'>;
  loop: Pick<RaftLoop, 'propose'>;
  /** Resolves once everything committed before the call is applied (Raft ReadIndex). */
  readBarrier: () => Promise<void>;
  appliedIndex: () => number;
  tokens: TokenProvider;
  passwords: PasswordPool;
}

export class AuthFront {
  constructor(private readonly parts: AuthFrontParts) {}

  /** Whether auth is enabled on this member now. */
  get enabled(): boolean {
    return this.parts.keySpace.auth.enabled;
  }

  /**
   * Who makes a call: undefined when it names nobody (no token, no certificate). A token that
   * names nobody is refused with "invalid auth token". A simple token issued at an index this
   * member has not applied yet is looked up again once it has.
   */
  async callerOf(credentials: CallerCredentials | undefined): Promise<AuthInfo | undefined> {
    const { auth } = this.parts.keySpace;
    const token = credentials?.token;
    if (token !== undefined) {
      const { tokens } = this.parts;
      let info = await tokens.info(token, auth.revision);
      if (info === undefined && tokens.kind === 'simple') {
        const index = simpleTokenIndex(token);
        if (index !== undefined && index > this.parts.appliedIndex()) {
          await this.parts.readBarrier();
          info = await tokens.info(token, auth.revision);
        }
      }
      if (info === undefined) throw errors.invalidAuthToken();
      credentials?.noteCaller?.(info, 'token');
      return info;
    }
    if (!this.parts.config.clientTls.clientCertAuth) return undefined;
    const commonName = credentials?.commonName;
    if (commonName === undefined) return undefined;
    const fromCertificate = { username: commonName, revision: auth.revision };
    credentials?.noteCaller?.(fromCertificate, 'certificate');
    return fromCertificate;
  }

  /**
   * etcd's AuthInfoFromCtx while auth is disabled: a token the call carries is still looked up,
   * and one no member issued (every simple token is dropped when auth is disabled) is refused
   * with "invalid auth token". Callers test for a token first, so a call without one takes no await.
   */
  async refuseUnknownToken(credentials: CallerCredentials): Promise<undefined> {
    await this.callerOf(credentials);
    return undefined;
  }

  /** Throws unless auth is off or the caller holds the root role (etcd's IsAdminPermitted). */
  async checkAdmin(credentials: CallerCredentials | undefined): Promise<void> {
    if (!this.enabled) return;
    this.parts.keySpace.auth.checkAdmin(await this.callerOf(credentials));
  }

  /** Throws unless auth is off or the call names a user (etcd's requireAuthInfo). */
  async checkUser(credentials: CallerCredentials | undefined): Promise<void> {
    await this.requireUser(credentials);
  }

  /** The caller while auth is enabled, who must be someone (etcd's requireAuthInfo); undefined when auth is off. */
  async requireUser(credentials: CallerCredentials | undefined): Promise<AuthInfo | undefined> {
    if (!this.enabled) return undefined;
    const caller = await this.callerOf(credentials);
    if (caller === undefined || caller.username === '') throw errors.userEmpty();
    return caller;
  }

  /** Throws unless the caller may read [key, rangeEnd) (a watch's check). */
  async checkRead(credentials: CallerCredentials | undefined, key: Uint8Array, rangeEnd: Uint8Array): Promise<void> {
    const caller = await this.callerOf(credentials);
    this.parts.keySpace.auth.checkRange(caller, key, rangeEnd);
  }

  /** Any Auth request but Authenticate, through Raft; answered with what its apply said. */
  async request(request: AuthRequest, credentials: CallerCredentials | undefined): Promise<AuthResponse> {
    const caller = this.enabled || credentials?.token !== undefined ? await this.callerOf(credentials) : undefined;
    const { result } = await this.parts.loop.propose({ type: 'auth', auth: request }, caller);
    return (result as { auth: AuthResponse }).auth;
  }

  /** UserAdd: the password is hashed before it is proposed, unless the user has none. */
  async userAdd(
    name: string,
    password: string,
    noPassword: boolean,
    credentials: CallerCredentials | undefined,
  ): Promise<AuthResponse> {
    await this.checkAdmin(credentials);
    const hashedPassword = noPassword ? '' : await this.parts.passwords.hash(password);
    return this.request({ method: 'userAdd', name, hashedPassword, noPassword }, credentials);
  }

  async userChangePassword(
    name: string,
    password: string,
    credentials: CallerCredentials | undefined,
  ): Promise<AuthResponse> {
    await this.checkAdmin(credentials);
    const hashedPassword = await this.parts.passwords.hash(password);
    return this.request({ method: 'userChangePassword', name, hashedPassword }, credentials);
  }

  /**
   * etcd's Authenticate: resolves with the token for `name`. A token the call carries is looked
   * up once the password checked out, when the authentication is proposed, as in etcd.
   */
  async authenticate(name: string, password: string, credentials?: CallerCredentials): Promise<string> {
    const { auth } = this.parts.keySpace;
    const { tokens, passwords } = this.parts;
    await this.parts.readBarrier();
    for (let attempt = 0; attempt < authenticateAttemptsMax; attempt++) {
      const checked = auth.passwordHashOf(name);
      if (!(await passwords.verify(password, checked.hash))) throw errors.authFailed();
      if (credentials?.token !== undefined) await this.callerOf(credentials);
      const request: AuthRequest = { method: 'authenticate', name, token: tokens.newPrefix() };
      const { result } = await this.parts.loop.propose({ type: 'auth', auth: request });
      const response = (result as { auth: AuthResponse }).auth;
      if (checked.revision === auth.revision) {
        return tokens.issue(name, response.authRevision ?? auth.revision, response.token ?? '');
      }
    }
    throw errors.authOldRevision();
  }
}
