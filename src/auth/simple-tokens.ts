/**
 * etcd's simple tokens: `<16 random letters>.<raft index>`. The proposer of an Authenticate picks
 * the letters; every member assigns the token when it applies the entry, so a token issued by one
 * member is accepted by all. A token lives --auth-token-ttl after its last use on each member
 * (refreshed on use, as etcd's TTL keeper does); tokens are never persisted, so a restart drops them.
 * The clock is the caller's: every method that needs the time takes it.
 */
import type { AuthInfo } from './types.js';
import type { TokenHooks } from './auth-store.js';

const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
export const simpleTokenLetters = 16;

/** The random part of a simple token from `randomInts` (each in [0, 52)). */
export function simpleTokenPrefix(randomInts: readonly number[]): string {
  return randomInts.map((value) => letters[value]!).join('');
}

/** The raft index a simple token names, or undefined when it is not of the form. */
export function simpleTokenIndex(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 2 || !/^\d{1,15}$/.test(parts[1]!)) return undefined;
  return Number(parts[1]);
}

export class SimpleTokens implements TokenHooks {
  private readonly tokens = new Map<string, { username: string; expiresAtMs: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly nowMs: () => number,
  ) {}

  assign(username: string, token: string, index: number): string {
    const full = `${token}.${index}`;
    this.sweep();
    this.tokens.set(full, { username, expiresAtMs: this.nowMs() + this.ttlMs });
    return full;
  }

  /** Who `token` belongs to, refreshing its TTL; undefined when unknown or expired. */
  info(token: string, revision: number): AuthInfo | undefined {
    const entry = this.tokens.get(token);
    if (entry === undefined) return undefined;
    const now = this.nowMs();
    if (now > entry.expiresAtMs) {
      this.tokens.delete(token);
      return undefined;
    }
    entry.expiresAtMs = now + this.ttlMs;
    return { username: entry.username, revision };
  }

  invalidateUser(username: string): void {
    for (const [token, entry] of this.tokens) if (entry.username === username) this.tokens.delete(token);
  }

  /** Authentications only apply while auth is enabled, so there is nothing to start. */
  enable(): void {}

  disable(): void {
    this.tokens.clear();
  }

  /** Drops expired tokens. */
  sweep(): void {
    const now = this.nowMs();
    for (const [token, entry] of this.tokens) if (now > entry.expiresAtMs) this.tokens.delete(token);
  }

  get size(): number {
    return this.tokens.size;
  }
}
