/**
 * etcd's leader election (v3election over clientv3/concurrency's Election). Each candidate puts
 * its value under the election's prefix with its lease; the oldest key (lowest create revision)
 * is the leader, and a candidate's Campaign returns once every older key is gone. A leader is
 * named by its LeaderKey: the key plus its create revision, so a re-created key is a new leader.
 */
import type { KeyValue, ResponseHeader } from '../api/types.js';
import { assert } from '../lib/assert.js';
import { recipeErrors } from '../api/errors.js';
import type { ConcurrencyHost } from './host.js';
import {
  createRevisionIs,
  deleteKey,
  getFirstCreated,
  getKey,
  leaseKey,
  prefixRangeEnd,
  putWithLease,
  rangeResponse,
  recipePrefix,
  requestOp,
} from './keys.js';
import { recipeTxn, sessionLease } from './session.js';
import { firstPut, waitDeletes, watchChanges } from './wait.js';

const emptyBytes = new Uint8Array(0);

export interface LeaderKey {
  name: Uint8Array;
  key: Uint8Array;
  /** The key's create revision when it was elected. */
  rev: number;
  lease: bigint;
}

export interface CampaignRequest {
  name: Uint8Array;
  /** 0 asks for a fresh lease with the session's default TTL. */
  lease: bigint;
  value: Uint8Array;
}

/** A leader as Leader and Observe report it: the leader's key-value and a header. */
export interface LeaderState {
  header: ResponseHeader;
  kv: KeyValue;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/**
 * Becomes a candidate and waits to lead. A lease already campaigning keeps its place and, when the
 * value differs, proclaims the new one. If the caller gives up (`signal` aborts) the candidacy is
 * withdrawn; other failures leave it for the lease to end, as etcd does.
 */
export async function campaign(
  host: ConcurrencyHost,
  request: CampaignRequest,
  signal: AbortSignal,
): Promise<{ header: ResponseHeader; leader: LeaderKey }> {
  const lease = await sessionLease(host, request.lease);
  const prefix = recipePrefix(request.name);
  const key = leaseKey(prefix, lease);
  const { header, result } = await recipeTxn(host, {
    compare: [createRevisionIs(key, 0)],
    success: [requestOp.put(putWithLease(key, request.value, lease))],
    failure: [requestOp.range(getKey(key))],
  });
  const leader: LeaderKey = { name: request.name, key, rev: header.revision, lease };
  if (!result.succeeded) await rejoin(host, leader, rangeResponse(result, 0).kvs[0], request.value);
  try {
    await waitDeletes(host, prefix, leader.rev - 1, signal);
  } catch (error) {
    if (signal.aborted) await resignAs(host, leader).catch(() => undefined);
    throw error;
  }
  // etcd answers with the header of the campaign's own txn, not of the wait.
  return { header, leader };
}

/** A lease campaigning again: take the existing key's revision and bring its value up to date. */
async function rejoin(
  host: ConcurrencyHost,
  leader: LeaderKey,
  existing: KeyValue | undefined,
  value: Uint8Array,
): Promise<void> {
  assert(existing !== undefined, 'a failed create-revision-is-0 compare should find the key');
  leader.rev = existing.createRevision;
  if (sameBytes(existing.value, value)) return;
  try {
    await proclaimAs(host, leader, leader.lease, value);
  } catch (error) {
    await resignAs(host, leader).catch(() => undefined);
    throw error;
  }
}

/** Replaces the leader's value, if `leader` still names the current key; fails with "not leader" otherwise. */
export async function proclaim(
  host: ConcurrencyHost,
  leader: LeaderKey | undefined,
  value: Uint8Array,
): Promise<{ header: ResponseHeader }> {
  if (leader === undefined) throw recipeErrors.missingLeaderKey();
  const lease = await sessionLease(host, leader.lease);
  return proclaimAs(host, leader, lease, value);
}

async function proclaimAs(
  host: ConcurrencyHost,
  leader: LeaderKey,
  lease: bigint,
  value: Uint8Array,
): Promise<{ header: ResponseHeader }> {
  const { header, result } = await recipeTxn(host, {
    compare: [createRevisionIs(leader.key, leader.rev)],
    success: [requestOp.put(putWithLease(leader.key, value, lease))],
    failure: [],
  });
  if (!result.succeeded) throw recipeErrors.notLeader();
  return { header };
}

/** Gives up leadership (or candidacy); a key that is gone or re-created is left alone without error. */
export async function resign(
  host: ConcurrencyHost,
  leader: LeaderKey | undefined,
): Promise<{ header: ResponseHeader }> {
  if (leader === undefined) throw recipeErrors.missingLeaderKey();
  // etcd opens a session even here, so lease 0 grants a lease that nothing uses.
  await sessionLease(host, leader.lease);
  return resignAs(host, leader);
}

async function resignAs(host: ConcurrencyHost, leader: LeaderKey): Promise<{ header: ResponseHeader }> {
  const { header } = await recipeTxn(host, {
    compare: [createRevisionIs(leader.key, leader.rev)],
    success: [requestOp.deleteRange(deleteKey(leader.key))],
    failure: [],
  });
  return { header };
}

/** The current leader's key-value; "election: no leader" when nobody campaigns. */
export async function currentLeader(host: ConcurrencyHost, name: Uint8Array): Promise<LeaderState> {
  const { header, result } = await host.kv.range(getFirstCreated(recipePrefix(name)));
  const kv = result.kvs[0];
  if (kv === undefined) throw recipeErrors.noLeader();
  return { header, kv };
}

/**
 * Every leader from now on and each value it proclaims, in order: the current leader (or, with
 * none, the first candidate to appear), then its value changes until its key is deleted, then the
 * next leader. Values of a leader replaced in between are not all seen, only the latest leader.
 */
export async function* observe(
  host: ConcurrencyHost,
  name: Uint8Array,
  signal: AbortSignal,
): AsyncGenerator<LeaderState, never, undefined> {
  const prefix = recipePrefix(name);
  for (;;) {
    const { header, result } = await host.kv.range(getFirstCreated(prefix));
    const found = result.kvs[0];
    const leader =
      found !== undefined
        ? { header, kv: found }
        : await firstPut(
            host,
            { key: prefix, rangeEnd: prefixRangeEnd(prefix), startRevision: header.revision },
            signal,
          );
    yield leader;
    yield* leaderChanges(host, leader, signal);
  }
}

/** The leader's later values, ending when its key is deleted. */
async function* leaderChanges(
  host: ConcurrencyHost,
  leader: LeaderState,
  signal: AbortSignal,
): AsyncGenerator<LeaderState, void, undefined> {
  const request = { key: leader.kv.key, rangeEnd: emptyBytes, startRevision: leader.header.revision + 1 };
  for await (const { header, event } of watchChanges(host, request, signal)) {
    if (event.type === 'delete') return;
    yield { header, kv: event.kv };
  }
}
