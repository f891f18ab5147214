/**
 * The member's token provider, from --auth-token: simple tokens (src/auth/simple-tokens.ts) on
 * the wall clock, or JWTs signed and verified with jose, whose claims are etcd's (username,
 * revision, exp). jose checks the signature only: the time claims follow etcd's rule
 * (src/auth/jwt-claims.ts), which takes a token whose exp is the current second, where jose's
 * own check refuses it. A JWT carries the auth revision it was issued at, so a change to users or
 * roles makes older JWTs stale ("revision of auth store is old"), as in etcd.
 */
import { randomInt } from 'node:crypto';
import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type * as Jose from 'jose';
import { EtcdError, GrpcCode } from '../../src/api/errors.js';
import type { MemberConfig } from '../../src/config/config.js';
import type { TokenHooks } from '../../src/auth/auth-store.js';
import { jwtTimeClaimsValid } from '../../src/auth/jwt-claims.js';
import { SimpleTokens, simpleTokenLetters, simpleTokenPrefix } from '../../src/auth/simple-tokens.js';
import type { TokenOptions } from '../../src/auth/token-options.js';
import type { AuthInfo } from '../../src/auth/types.js';

export interface TokenProvider extends TokenHooks {
  readonly kind: 'simple' | 'jwt';
  /** The random part an Authenticate proposal carries (empty when the token is made at issue()). */
  newPrefix(): string;
  /** Who `token` names, with the auth revision to check against; undefined when nobody. */
  info(token: string, currentRevision: number): Promise<AuthInfo | undefined>;
  /** The token to answer an applied Authenticate with (`applied`: what every member assigned). */
  issue(username: string, revision: number, applied: string): Promise<string>;
  close(): void;
}

class SimpleTokenProvider implements TokenProvider {
  readonly kind = 'simple';
  private readonly tokens: SimpleTokens;
  private readonly sweeper: NodeJS.Timeout;

  constructor(ttlSeconds: number) {
    this.tokens = new SimpleTokens(ttlSeconds * 1_000, () => Date.now());
    // etcd's TTL keeper looks once a second; a sweep bounds the map between uses.
    this.sweeper = setInterval(() => this.tokens.sweep(), 1_000).unref();
  }

  newPrefix(): string {
    return simpleTokenPrefix(Array.from({ length: simpleTokenLetters }, () => randomInt(52)));
  }

  info(token: string, currentRevision: number): Promise<AuthInfo | undefined> {
    return Promise.resolve(this.tokens.info(token, currentRevision));
  }

  issue(_username: string, _revision: number, applied: string): Promise<string> {
    return Promise.resolve(applied);
  }

  assign(username: string, token: string, index: number): string {
    return this.tokens.assign(username, token, index);
  }

  invalidateUser(username: string): void {
    this.tokens.invalidateUser(username);
  }

  enable(): void {}

  disable(): void {
    this.tokens.disable();
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}

/** jose, loaded on a JWT provider's first use: a member on simple tokens never needs it (it costs tens of ms at start). */
let jose: Promise<typeof Jose> | undefined;
const loadJose = (): Promise<typeof Jose> => (jose ??= import('jose'));

/** jwt-go's ErrVerifyOnly, which etcd has no gRPC mapping for. */
const verifyOnly = () => new EtcdError(GrpcCode.unknown, 'auth: token signing attempted with verify-only key');

class JwtTokenProvider implements TokenProvider {
  readonly kind = 'jwt';

  constructor(
    private readonly signMethod: string,
    private readonly signingKey: KeyObject | undefined,
    private readonly verifyingKey: KeyObject,
    private readonly ttlMs: number,
    private readonly clockMs: () => number,
  ) {}

  newPrefix(): string {
    return '';
  }

  async info(token: string): Promise<AuthInfo | undefined> {
    const { compactVerify } = await loadJose();
    let claims: unknown;
    try {
      const { payload } = await compactVerify(token, this.verifyingKey, { algorithms: [this.signMethod] });
      claims = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return undefined;
    }
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return undefined;
    const { username, revision } = claims as Record<string, unknown>;
    if (!jwtTimeClaimsValid(claims as Record<string, unknown>, Math.floor(this.clockMs() / 1_000))) return undefined;
    if (typeof username !== 'string' || typeof revision !== 'number') return undefined;
    return { username, revision };
  }

  async issue(username: string, revision: number): Promise<string> {
    if (this.signingKey === undefined) throw verifyOnly();
    const { SignJWT } = await loadJose();
    return new SignJWT({ username, revision })
      .setProtectedHeader({ alg: this.signMethod })
      .setExpirationTime(Math.floor((this.clockMs() + this.ttlMs) / 1_000))
      .sign(this.signingKey);
  }

  assign(): string {
    return '';
  }

  invalidateUser(): void {}
  enable(): void {}
  disable(): void {}
  close(): void {}
}

/** auth.ErrMissingKey: neither key file was given. */
export class TokenProviderError extends Error {}

function jwtProvider(options: Extract<TokenOptions, { type: 'jwt' }>, clockMs: () => number): TokenProvider {
  const privatePem = options.privateKeyPath === '' ? undefined : readFileSync(options.privateKeyPath);
  const publicPem = options.publicKeyPath === '' ? undefined : readFileSync(options.publicKeyPath);
  if (options.signMethod.startsWith('HS')) {
    if (privatePem === undefined) throw new TokenProviderError('auth: missing key data');
    const secret = createSecretKey(privatePem);
    return new JwtTokenProvider(options.signMethod, secret, secret, options.ttlMs, clockMs);
  }
  const signingKey = privatePem === undefined ? undefined : createPrivateKey(privatePem);
  const verifyingKey =
    publicPem !== undefined
      ? createPublicKey(publicPem)
      : signingKey !== undefined
        ? createPublicKey(signingKey)
        : undefined;
  if (verifyingKey === undefined) throw new TokenProviderError('auth: missing key data');
  return new JwtTokenProvider(options.signMethod, signingKey, verifyingKey, options.ttlMs, clockMs);
}

/** The provider --auth-token and --auth-token-ttl ask for; `clockMs` is the wall clock JWTs are issued and checked on. */
export function createTokenProvider(
  config: Pick<MemberConfig, 'authToken' | 'authTokenTtlSeconds'>,
  clockMs: () => number = Date.now,
): TokenProvider {
  return config.authToken.type === 'jwt'
    ? jwtProvider(config.authToken, clockMs)
    : new SimpleTokenProvider(config.authTokenTtlSeconds);
}
