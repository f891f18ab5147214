/**
 * etcd's --auth-token: "simple", or "jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256,ttl=5m".
 * Parsed here to what the member builds its token provider from; the keys are read by the member.
 */
import { parseGoDurationMs } from '../config/parse.js';
import { jwtTokenTtlMsDefault } from '../lib/limits.js';

export type TokenOptions =
  | { type: 'simple' }
  | { type: 'jwt'; signMethod: string; publicKeyPath: string; privateKeyPath: string; ttlMs: number };

/** The JWT signing methods etcd's jwt-go knows. */
export const jwtSignMethods = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'HS256',
  'HS384',
  'HS512',
] as const;

/** auth.ErrInvalidAuthOpts and friends, in etcd's words, for the start-up failure. */
export class TokenOptionsError extends Error {}

/** Parses --auth-token as etcd's decomposeOpts and jwtOptions.Parse do. */
export function parseTokenOptions(text: string): TokenOptions {
  const [type = '', ...rest] = text.split(',');
  const options = new Map<string, string>();
  for (const item of rest) {
    const pair = item.split('=');
    if (pair.length !== 2 || options.has(pair[0]!)) throw new TokenOptionsError('auth: invalid auth options');
    options.set(pair[0]!, pair[1]!);
  }
  if (type === 'simple') return { type: 'simple' };
  if (type !== 'jwt') throw new TokenOptionsError('auth: invalid auth options');
  const ttlText = options.get('ttl') ?? '';
  const ttlMs = ttlText === '' ? jwtTokenTtlMsDefault : parseGoDurationMs(ttlText);
  // etcd logs why its JWT options did not parse and answers ErrInvalidAuthOpts for every reason.
  if (ttlMs === undefined) throw new TokenOptionsError('auth: invalid auth options');
  const signMethod = options.get('sign-method') ?? '';
  // jwt-go knows "none" too; etcd refuses it only once it reads the key files (the member does).
  if (!(jwtSignMethods as readonly string[]).includes(signMethod) && signMethod !== 'none')
    throw new TokenOptionsError('auth: invalid auth options');
  return {
    type: 'jwt',
    signMethod,
    publicKeyPath: options.get('pub-key') ?? '',
    privateKeyPath: options.get('priv-key') ?? '',
    ttlMs,
  };
}
