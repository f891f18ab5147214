/**
 * Member and cluster IDs derived as etcd derives them, so a member bootstrapped with the same
 * flags gets the same IDs as real etcd: member ID = first 8 bytes (big endian) of
 * SHA-1(sorted peer URLs concatenated + cluster token [+ decimal Unix seconds]); cluster ID =
 * first 8 bytes of SHA-1 over the sorted member IDs as 8-byte big-endian values.
 */
import { createHash } from 'node:crypto';

/**
 * etcd's member ID for a member with these peer URLs in the cluster named by `clusterToken`.
 * A member added at runtime also hashes the time of the request (etcd's MemberAdd passes an
 * empty token and the current Unix seconds), so re-adding the same URLs later gives a new ID.
 */
export function memberIdFor(peerUrls: readonly string[], clusterToken: string, unixSeconds?: number): bigint {
  const hash = createHash('sha1');
  for (const url of [...peerUrls].sort()) hash.update(url);
  hash.update(clusterToken);
  if (unixSeconds !== undefined) hash.update(String(Math.floor(unixSeconds)));
  return hash.digest().readBigUInt64BE(0);
}

/** etcd's cluster ID for a cluster with these member IDs. */
export function clusterIdFor(memberIds: readonly bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const bytes = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, position) => bytes.writeBigUInt64BE(id, 8 * position));
  return createHash('sha1').update(bytes).digest().readBigUInt64BE(0);
}

/** Formats an ID as etcd prints it: lowercase hex without padding. */
export function formatId(id: bigint): string {
  return id.toString(16);
}

/** Parses an ID as etcd prints it (hex, at most 16 digits); undefined when it is not one. */
export function parseHexId(text: string | undefined): bigint | undefined {
  if (text === undefined || !/^[0-9a-fA-F]{1,16}$/.test(text)) return undefined;
  return BigInt(`0x${text}`);
}
