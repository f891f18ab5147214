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

interface TokenEntry {
  username: string;
  expiresAtMs: number;
  /** The expiry the token had when it took its place in the map; a use since moved expiresAtMs on. */
  placedExpiryMs: number;
}

export class SimpleTokens implements TokenHooks {
  /**
   * Every live token in the order of its placed expiry (the TTL is the same for all), so a sweep
   * reads the front of the map only, not all of it (0.64 ms per assign, on every member, with 60k
   * live tokens). A use moves a token's expiry without moving it in the map, which would cost
   * ten times the lookup on every authenticated request; the sweep places it again at the end
   * when it reaches it.
   */
  private readonly tokens = new Map<string, TokenEntry>();
  /** Each user's live tokens, so dropping one user's tokens reads only theirs. */
  private readonly byUser = new Map<string, Set<string>>();

  constructor(
    private readonly ttlMs: number,
    private readonly nowMs: () => number,
  ) {}

  assign(username: string, token: string, index: number): string {
    const full = `${token}.${index}`;
    this.sweep();
    this.forget(full);
    const expiresAtMs = this.nowMs() + this.ttlMs;
    this.tokens.set(full, { username, expiresAtMs, placedExpiryMs: expiresAtMs });
    const owned = this.byUser.get(username);
    if (owned === undefined) this.byUser.set(username, new Set([full]));
    else owned.add(full);
    return full;
  }

  /** Who `token` belongs to, refreshing its TTL; undefined when unknown or expired. */
  info(token: string, revision: number): AuthInfo | undefined {
    const entry = this.tokens.get(token);
    if (entry === undefined) return undefined;
    const now = this.nowMs();
    if (now > entry.expiresAtMs) {
      this.forget(token);
      return undefined;
    }
    entry.expiresAtMs = now + this.ttlMs;
    return { username: entry.username, revision };
  }

  invalidateUser(username: string): void {
    const owned = this.byUser.get(username);
    if (owned === undefined) return;
    this.byUser.delete(username);
    for (const token of owned) this.tokens.delete(token);
  }

  /** Authentications only apply while auth is enabled, so there is nothing to start. */
  enable(): void {}

  disable(): void {
    this.tokens.clear();
    this.byUser.clear();
  }

  /**
   * Drops expired tokens, from the front of the map up to the first whose placed expiry is still
   * ahead; a token used since its placing goes to the end with its new expiry (a Map's iteration
   * reaches it again there, and stops at it). Such a token may land behind tokens assigned after
   * its use, as may any token when the wall clock steps back: it then goes at a later sweep, and
   * info() refuses it meanwhile.
   */
  sweep(): void {
    const now = this.nowMs();
    for (const [token, entry] of this.tokens) {
      if (now <= entry.placedExpiryMs) return;
      if (now > entry.expiresAtMs) {
        this.forget(token);
        continue;
      }
      this.tokens.delete(token);
      entry.placedExpiryMs = entry.expiresAtMs;
      this.tokens.set(token, entry);
    }
  }

  get size(): number {
    return this.tokens.size;
  }

  private forget(token: string): void {
    const entry = this.tokens.get(token);
    if (entry === undefined) return;
    this.tokens.delete(token);
    const owned = this.byUser.get(entry.username);
    owned?.delete(token);
    if (owned?.size === 0) this.byUser.delete(entry.username);
  }
}
