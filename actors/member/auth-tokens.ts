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

/** A token provider etcd would not create, with etcd's error text (auth.ErrMissingKey, jwt-go's key errors, ...). */
export class TokenProviderError extends Error {}

/** etcd's texts for keys its JWT provider refuses (auth/options.go over golang-jwt's PEM parsers). */
const keyErrors = {
  invalidOptions: 'auth: invalid auth options',
  missingKey: 'auth: missing key data',
  keyMismatch: "auth: public and private keys don't match",
  notPem: 'invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key',
  /** Go's x509.ParseCertificate on a PEM block that is neither a public key nor a certificate. */
  notPublicKey: 'x509: malformed tbs certificate',
  unsupportedNone: 'unsupported signing method: *jwt.signingMethodNone',
} as const;

/** A key file's bytes; a file etcd cannot read fails its option parsing, which it answers with ErrInvalidAuthOpts. */
function readKeyFile(path: string): Buffer | undefined {
  if (path === '') return undefined;
  try {
    return readFileSync(path);
  } catch {
    throw new TokenProviderError(keyErrors.invalidOptions);
  }
}

/** The label of the first PEM block in `pem`, or undefined when there is none (Go's pem.Decode). */
function pemLabel(pem: Buffer): string | undefined {
  return /-----BEGIN ([^-\r\n]+)-----/.exec(pem.toString('latin1'))?.[1];
}

/** RSA for RS* and PS*, EC for ES*: the key type golang-jwt's parsers insist on, in its words. */
function keyFamily(signMethod: string): { type: 'rsa' | 'ec'; name: 'RSA' | 'ECDSA' } {
  return signMethod.startsWith('ES') ? { type: 'ec', name: 'ECDSA' } : { type: 'rsa', name: 'RSA' };
}

/**
 * Go's x509 answer to a private key in the other family's own format (SEC1 for RS* and PS*, PKCS #1
 * for ES*): golang-jwt tries that family's format and PKCS #8 only.
 */
const foreignFormat: Readonly<Record<string, { family: 'rsa' | 'ec'; error: string }>> = {
  'EC PRIVATE KEY': {
    family: 'rsa',
    error: 'x509: failed to parse private key (use ParseECPrivateKey instead for this key format)',
  },
  'RSA PRIVATE KEY': {
    family: 'ec',
    error: 'x509: failed to parse private key (use ParsePKCS1PrivateKey instead for this key format)',
  },
};

function privateKeyOf(pem: Buffer, signMethod: string): KeyObject {
  const label = pemLabel(pem);
  if (label === undefined) throw new TokenProviderError(keyErrors.notPem);
  const foreign = foreignFormat[label];
  if (foreign !== undefined && foreign.family === keyFamily(signMethod).type)
    throw new TokenProviderError(foreign.error);
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new TokenProviderError((error as Error).message);
  }
  const family = keyFamily(signMethod);
  if (key.asymmetricKeyType !== family.type)
    throw new TokenProviderError(`key is not a valid ${family.name} private key`);
  return key;
}

function publicKeyOf(pem: Buffer, signMethod: string): KeyObject {
  const label = pemLabel(pem);
  if (label === undefined) throw new TokenProviderError(keyErrors.notPem);
  // golang-jwt takes a PKIX public key or a certificate; Node would also derive one from a private key.
  if (label !== 'PUBLIC KEY' && label !== 'CERTIFICATE') throw new TokenProviderError(keyErrors.notPublicKey);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new TokenProviderError(keyErrors.notPublicKey);
  }
  const family = keyFamily(signMethod);
  if (key.asymmetricKeyType !== family.type)
    throw new TokenProviderError(`key is not a valid ${family.name} public key`);
  return key;
}

/**
 * etcd's check that the two keys belong together, as written: it refuses only keys that differ
 * in every field it compares (exponent and modulus; curve and both coordinates).
 */
function keysMismatch(privateKey: KeyObject, publicKey: KeyObject): boolean {
  const ours = createPublicKey(privateKey).export({ format: 'jwk' });
  const theirs = publicKey.export({ format: 'jwk' });
  const fields = ours.kty === 'RSA' ? (['e', 'n'] as const) : (['crv', 'x', 'y'] as const);
  return fields.every((field) => ours[field] !== theirs[field]);
}

function jwtProvider(options: Extract<TokenOptions, { type: 'jwt' }>, clockMs: () => number): TokenProvider {
  const publicPem = readKeyFile(options.publicKeyPath);
  const privatePem = readKeyFile(options.privateKeyPath);
  if (options.signMethod === 'none') throw new TokenProviderError(keyErrors.unsupportedNone);
  if (options.signMethod.startsWith('HS')) {
    if (privatePem === undefined) throw new TokenProviderError(keyErrors.missingKey);
    const secret = createSecretKey(privatePem);
    return new JwtTokenProvider(options.signMethod, secret, secret, options.ttlMs, clockMs);
  }
  const signingKey = privatePem === undefined ? undefined : privateKeyOf(privatePem, options.signMethod);
  const publicKey = publicPem === undefined ? undefined : publicKeyOf(publicPem, options.signMethod);
  if (signingKey === undefined && publicKey === undefined) throw new TokenProviderError(keyErrors.missingKey);
  if (signingKey !== undefined && publicKey !== undefined && keysMismatch(signingKey, publicKey))
    throw new TokenProviderError(keyErrors.keyMismatch);
  // With a private key etcd signs and verifies with it alone; a public key only verifies.
  const verifyingKey = signingKey === undefined ? (publicKey as KeyObject) : createPublicKey(signingKey);
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
